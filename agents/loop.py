"""DUS in your own PyTorch loop, in one call: :func:`make_controller`.

    controller = make_controller(["audio", "video"], n_classes=6, total_iterations=10_000)
    sampler = DUSBatchSampler(controller, len(train_set), seed)
    for batch in DataLoader(train_set, batch_sampler=sampler):
        ...                                   # modality m trains on its first sizes[m] rows
        controller.observe({m: (logits[m].detach(), labels[: sizes[m]]) for m in modalities})

The policy is a name (``heuristic``: DUS-H at full resolution; ``uniform``; ``pretrained``: the
generalist shipped with the package, for any number of modalities up to its slots), a saved
artefact (``ppo:PATH``, ``reinforce:PATH``; read as data, never unpickled), or any object with
SB3's ``predict``. The grid, the observation layout and the history length follow the policy;
your loop's modality names, class count and budget are yours.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dus_env.config import MonitorConfig, SamplerConfig
from dus_env.errors import check_integer, check_names
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
        policy: a name (``heuristic``, ``heuristic-grid``, ``uniform``, ``pretrained``), a
            ``ppo:PATH`` / ``reinforce:PATH`` artefact, or an object with ``predict``.
        iters_per_step: iterations between decisions (default: ``total_iterations / 20``).
        base_batch_size: every modality's batch size under uniform sampling.
        min_batch_size, max_batch_size: bounds of any modality's batch size (default: half
            and twice ``base_batch_size``).
        seed: seed of a ``random`` policy.
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
    spec = _policy_spec(policy)
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
    policy_object = _policy_object(policy, modalities, sampler, monitor, max_modalities, seed)
    return SamplingController(policy_object, modalities, sampler, monitor, n_classes,
                              total_iterations, iters_per_step, max_modalities)


def _policy_spec(policy: Any) -> dict[str, Any]:
    """The env spec a policy was trained on ({} for the hand-written ones)."""
    if not isinstance(policy, str):
        return dict(getattr(policy, "env_spec", None) or {})
    if policy == "pretrained" or ":" in policy:
        from dus_agents.artifact import read_header
        from dus_agents.registry import pretrained_path

        path = pretrained_path() if policy == "pretrained" else policy.split(":", 1)[1]
        return dict(read_header(path)["env_spec"])  # read_header checks max_modalities
    return {}


def _policy_object(policy: Any, modalities: tuple[str, ...], sampler: SamplerConfig,
                   monitor: MonitorConfig, max_modalities: int | None, seed: int) -> Any:
    if not isinstance(policy, str):
        return policy
    from dus_agents.heuristic import HeuristicPolicy, RandomPolicy, UniformPolicy
    from dus_agents.registry import load_policy, pretrained_path

    if policy == "pretrained":
        return load_policy("ppo", str(pretrained_path()))
    if ":" in policy:
        kind, path = policy.split(":", 1)
        return load_policy(kind, path)
    if max_modalities is None:
        layout = ObservationLayout.for_parts(len(modalities), monitor, sampler)
    else:
        layout = SlotLayout(max_modalities, monitor.history_length, monitor.discrepancy,
                            len(sampler.multipliers))
    grid = tuple(sampler.multipliers)
    builders = {"heuristic": lambda: HeuristicPolicy(layout, grid),
                "heuristic-grid": lambda: HeuristicPolicy(layout, grid),
                "uniform": lambda: UniformPolicy(layout, grid),
                "random": lambda: RandomPolicy(layout, grid, seed=seed)}
    if policy not in builders:
        raise ValueError(f"policy={policy!r} is not valid; valid: {sorted(builders)} + "
                         "['pretrained'], 'ppo:PATH', 'reinforce:PATH', or an object with "
                         "predict()")
    return builders[policy]()
