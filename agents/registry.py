"""Build a policy from a name or a ``kind:PATH`` spec, for a given env."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from dus_agents.artifact import KINDS
from dus_agents.base import Policy
from dus_agents.heuristic import HeuristicPolicy, RandomPolicy, UniformPolicy
from dus_env.errors import check_choice

POLICY_NAMES: tuple[str, ...] = ("uniform", "random", "heuristic", "heuristic-grid",
                                  "reinforce", "pretrained")
"""Policies by name: built fresh (``heuristic`` is DUS-H at full resolution, in an env whose
actions are requested multipliers; ``heuristic-grid`` the same rule snapped to the action grid;
``reinforce`` a new online agent that learns in the run), or ``pretrained``, the generalist
shipped with the package (a DUS-v1 policy: :func:`pretrained_path`)."""
PRETRAINED_FILE = "generalist.zip"
ARTIFACT_KINDS: tuple[str, ...] = KINDS
"""Saved policies, written ``kind:PATH``."""
SAMPLED = "sampled:"
"""Prefix of a PPO policy replayed by sampling its actions (``sampled:SPEC``)."""


def _fresh(name: str) -> Callable[[Any, int], Policy]:
    if name == "uniform":
        return lambda env, seed: UniformPolicy.for_env(env)
    if name == "random":
        return lambda env, seed: RandomPolicy.for_env(env, seed=seed)
    if name in ("heuristic", "heuristic-grid"):
        return lambda env, seed: HeuristicPolicy.for_env(env)
    if name == "reinforce":
        from dus_agents.reinforce import ReinforceAgent

        return lambda env, seed: ReinforceAgent.for_env(env, seed=seed)
    raise NotImplementedError(f"policy {name!r} is not available yet")


def pretrained_path() -> Path:
    """The generalist sampling policy shipped inside the package (docs/PRETRAINED.md says how
    it was trained and how it does on held-out tasks)."""
    path = Path(__file__).resolve().parent / "pretrained" / PRETRAINED_FILE
    if not path.is_file():
        raise FileNotFoundError(f"the pretrained policy {str(path)!r} is missing from this "
                                "installation; reinstall dus-env")
    return path


def env_layout(spec: str) -> str:
    """Which env a policy spec acts in: ``v1`` (DUS-v1: slots, any modality count) for the
    pretrained policy and artefacts recorded on DUS-v1, ``full`` (DUS-v0 with requested
    multipliers as actions) for the full-resolution heuristic, else ``v0``."""
    spec = spec.removeprefix(SAMPLED)
    if spec == "pretrained":
        return "v1"
    if spec == "heuristic":
        return "full"
    if ":" in spec:
        from dus_agents.artifact import read_header

        header = read_header(spec.split(":", 1)[1])
        return "v1" if header["env_spec"].get("layout") == "v1" else "v0"
    return "v0"


def load_policy(kind: str, path: str, env: Any | None = None) -> Policy:
    """A saved policy of ``kind`` (ppo, reinforce) from ``path``, checked against ``env``'s
    spec when given. Saved REINFORCE agents load frozen (replay: deterministic = argmax)."""
    check_choice("policy kind", kind, ARTIFACT_KINDS)
    if kind == "ppo":
        from dus_agents.ppo import PPOPolicy

        return PPOPolicy.load(path, env)
    from dus_agents.reinforce import ReinforceAgent

    return ReinforceAgent.load(path, env, frozen=True)


def saved_policy(spec: str, env: Any | None = None, seed: int = 0) -> Policy | None:
    """The saved policy ``spec`` names, loaded (and checked against ``env``'s spec when
    given): ``pretrained``, ``ppo:PATH`` / ``reinforce:PATH``, or ``sampled:SPEC`` of a PPO one
    (:class:`dus_agents.ppo.SampledPolicy`, its own generator seeded with ``seed``). None when
    ``spec`` is the name of a policy built fresh (``uniform``, ``heuristic``, ...). One parser
    for :func:`make_policy` and :func:`dus_agents.loop.make_controller`."""
    if spec.startswith(SAMPLED):
        from dus_agents.ppo import SampledPolicy

        inner = saved_policy(spec.removeprefix(SAMPLED), env, seed)
        if inner is None:
            raise ValueError(f"policy spec {spec!r}: sampled: needs a PPO policy; valid forms: "
                             "'sampled:pretrained', 'sampled:ppo:PATH'")
        return SampledPolicy(inner, seed)
    if spec == "pretrained":
        return load_policy("ppo", str(pretrained_path()), env)
    if ":" in spec:
        kind, path = spec.split(":", 1)
        if not path:
            raise ValueError(f"policy spec {spec!r} has no path after {kind + ':'!r}; write "
                             f"{kind}:PATH")
        return load_policy(kind, path, env)
    return None


def make_policy(spec: str, env: Any, seed: int = 0) -> Policy:
    """The policy ``spec`` names, for ``env``.

    ``spec`` is one of :data:`POLICY_NAMES`, or ``ppo:PATH`` / ``reinforce:PATH`` for a saved
    artefact (checked against the env's spec; an incompatible env fails naming what differs),
    or ``sampled:SPEC`` for a PPO policy replayed by sampling its actions
    (:class:`dus_agents.ppo.SampledPolicy`, seeded with ``seed``).
    A missing file raises ``FileNotFoundError``, a corrupt one ``dus_agents.artifact.ArtifactError``,
    an incompatible one ``dus_agents.artifact.IncompatibleEnvError``, each naming the path.
    """
    saved = saved_policy(spec, env, seed)
    if saved is not None:
        return saved
    check_choice("policy", spec, POLICY_NAMES)
    return _fresh(spec)(env, seed)
