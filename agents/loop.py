"""DUS in your own PyTorch loop, in one call: :func:`make_controller`.

    controller = make_controller(["audio", "video"], n_classes=6, total_iterations=10_000)
    sampler = DUSBatchSampler(controller, len(train_set), seed)
    for batch in DataLoader(train_set, batch_sampler=sampler):
        ...                                   # modality m trains on its first sizes[m] rows
        controller.observe({m: (logits[m].detach(), labels[: sizes[m]]) for m in modalities})

The policy is a name (``heuristic``: DUS-H at full resolution; ``uniform``; ``pretrained``: the
generalist shipped with the package, for any number of modalities up to its slots), a saved
artefact (``ppo:PATH``, ``reinforce:PATH``; read as data, never unpickled), ``sampled:SPEC`` (a
PPO policy replayed by sampling its actions with its own seeded generator), or any object with
SB3's ``predict``. The grid, the observation layout and the history length follow the policy;
your loop's modality names, class count and budget are yours.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dus_env.config import MonitorConfig, SamplerConfig
from dus_env.errors import ArtifactError, IncompatibleEnvError, check_integer, check_names
from dus_env.replay import SamplingController
from dus_env.slots import SlotLayout
from dus_env.spaces import ObservationLayout

DECISIONS_PER_RUN = 20
"""Decisions in a run when ``iters_per_step`` is not given (as the default preset makes)."""


def make_controller(modalities: Sequence[str], n_classes: int, total_iterations: int,
                    policy: Any = "heuristic", *, iters_per_step: int | None = None,
                    base_batch_size: int = 64, min_batch_size: int | None = None,
                    max_batch_size: int | None = None, seed: int = 0) -> SamplingController:
    """A :class:`~dus_env.replay.SamplingController` for your loop.

    Args:
        modalities: your modality names (2 or more; the order of every per-modality value).
        n_classes: your classifier's classes (checked against the logits you feed).
        total_iterations: your run's iteration budget.
        policy: a name (``heuristic``, ``heuristic-grid``, ``uniform``, ``random``,
            ``pretrained``), a ``ppo:PATH`` / ``reinforce:PATH`` artefact, ``sampled:SPEC``
            (``sampled:pretrained``, ``sampled:ppo:PATH``: a PPO policy whose actions are
            sampled with its own generator), or an object with ``predict``. Strings are read
            as :func:`dus_agents.registry.make_policy` reads them.
        iters_per_step: iterations between decisions (default: ``total_iterations / 20``).
        base_batch_size: every modality's batch size under uniform sampling.
        min_batch_size, max_batch_size: bounds of any modality's batch size (default: half
            and twice ``base_batch_size``).
        seed: seed of a ``random`` policy and of a ``sampled:`` policy's generator (no global
            random state is read).

    A policy file is loaded (and checked against its own header) before anything else is
    built; a header whose layout does not give the observation size it records is an
    :class:`~dus_env.errors.ArtifactError` naming the file, a loop the policy does not fit an
    :class:`~dus_env.errors.IncompatibleEnvError`, both raised before the first decision.
    """
    check_names("modalities", modalities)
    modalities = tuple(modalities)
    check_integer("total_iterations", total_iterations, 1)
    check_integer("base_batch_size", base_batch_size, 1)
    check_integer("seed", seed)
    for name, value in (("iters_per_step", iters_per_step), ("min_batch_size", min_batch_size),
                        ("max_batch_size", max_batch_size)):
        if value is not None:
            check_integer(name, value, 1)
    if iters_per_step is None:
        iters_per_step = max(1, total_iterations // DECISIONS_PER_RUN)
    loaded = _loaded_policy(policy, seed)  # None: a policy built here by name
    spec = dict(getattr(loaded, "env_spec", None) or {}) if loaded is not None else {}
    layout_kind = spec.get("layout", "v0")
    action = "multipliers" if policy == "heuristic" else "grid"
    multipliers = tuple(spec.get("multipliers", SamplerConfig().multipliers))
    if layout_kind == "v1" and len(modalities) > spec["max_modalities"]:
        raise ValueError(f"modalities={list(modalities)} are {len(modalities)}; the policy has "
                         f"{spec['max_modalities']} slots")
    if layout_kind == "v0" and "n_modalities" in spec and spec["n_modalities"] != len(modalities):
        raise ValueError(f"the policy was trained for {spec['n_modalities']} modalities, your "
                         f"loop has {len(modalities)}: {list(modalities)}")
    sampler = SamplerConfig(
        base_batch_size=base_batch_size, multipliers=multipliers, action=action,
        min_batch_size=min_batch_size if min_batch_size is not None else max(1, base_batch_size // 2),
        max_batch_size=max_batch_size if max_batch_size is not None else 2 * base_batch_size,
    )
    ema = spec.get("monitor_ema_beta")  # a policy trained on EMA-averaged scores
    monitor = MonitorConfig(history_length=spec.get("history_length", 8),
                            discrepancy=spec.get("discrepancy", "gap"),
                            **({"average": "ema", "ema_beta": ema} if ema is not None else {}))
    max_modalities = spec["max_modalities"] if layout_kind == "v1" else None
    if max_modalities is None:
        layout: Any = ObservationLayout.for_parts(len(modalities), monitor, sampler)
    else:
        layout = SlotLayout(max_modalities, monitor.history_length, monitor.discrepancy,
                            len(sampler.multipliers))
    _check_observation_size(policy, spec, layout, modalities)
    policy_object = loaded if loaded is not None else _policy_object(policy, layout, sampler,
                                                                     seed)
    return SamplingController(policy_object, modalities, sampler, monitor, n_classes,
                              total_iterations, iters_per_step, max_modalities)


def _loaded_policy(policy: Any, seed: int) -> Any:
    """``policy`` itself when it is an object, the saved policy a string names, loaded
    (``pretrained``, ``kind:PATH``, ``sampled:SPEC``: parsed as ``make_policy`` parses them), or
    None for the name of a policy built here."""
    if not isinstance(policy, str):
        return policy
    from dus_agents.registry import saved_policy

    return saved_policy(policy, seed=seed)


def _policy_file(policy: str) -> str:
    """The file a policy string names (``pretrained`` resolved to the shipped one)."""
    from dus_agents.registry import SAMPLED, pretrained_path

    spec = policy.removeprefix(SAMPLED)
    return str(pretrained_path()) if spec == "pretrained" else spec.split(":", 1)[1]


def _check_observation_size(policy: Any, spec: dict[str, Any], layout: Any,
                            modalities: tuple[str, ...]) -> None:
    """Refuse, before the first decision, a policy whose recorded observation size is not the
    size of the observation this loop will build from the policy's own spec."""
    expected = spec.get("observation_size")
    if expected is None or expected == layout.size:
        return
    built = (f"max_modalities={layout.max_modalities}" if isinstance(layout, SlotLayout)
             else f"{len(modalities)} modalities {list(modalities)}")
    built += (f", history_length={layout.history_length}, discrepancy={layout.discrepancy!r} "
              f"and {layout.n_actions} multipliers give {layout.size} observation values")
    complete = isinstance(layout, SlotLayout) or "n_modalities" in spec
    if isinstance(policy, str) and complete:  # the header disagrees with itself
        raise ArtifactError(f"policy file {_policy_file(policy)!r}: its recorded env spec says "
                            f"observation_size={expected}, but its {built}; the file is "
                            "damaged")
    name = repr(_policy_file(policy)) if isinstance(policy, str) else type(policy).__name__
    raise IncompatibleEnvError(f"policy {name} takes {expected} observation values (its env "
                               f"spec's observation_size); this loop's {built}")


def _policy_object(policy: str, layout: Any, sampler: SamplerConfig, seed: int) -> Any:
    """The hand-written policy ``policy`` names, on this loop's ``layout`` and grid."""
    from dus_agents.heuristic import HeuristicPolicy, RandomPolicy, UniformPolicy

    grid = tuple(sampler.multipliers)
    builders = {"heuristic": lambda: HeuristicPolicy(layout, grid),
                "heuristic-grid": lambda: HeuristicPolicy(layout, grid),
                "uniform": lambda: UniformPolicy(layout, grid),
                "random": lambda: RandomPolicy(layout, grid, seed=seed)}
    if policy not in builders:
        raise ValueError(f"policy={policy!r} is not valid; valid: {sorted(builders)} + "
                         "['pretrained'], 'ppo:PATH', 'reinforce:PATH', 'sampled:pretrained', "
                         "'sampled:ppo:PATH', or an object with predict()")
    return builders[policy]()
