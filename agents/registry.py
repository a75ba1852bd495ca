"""Build a policy from a name or a ``kind:PATH`` spec, for a given env."""

from __future__ import annotations

from typing import Any, Callable

from agents.base import Policy
from agents.heuristic import HeuristicPolicy, RandomPolicy, UniformPolicy
from dus_env.errors import check_choice

POLICY_NAMES: tuple[str, ...] = ("uniform", "random", "heuristic", "reinforce")
"""Policies built fresh by name (``reinforce`` is a new online agent that learns in the run)."""
ARTIFACT_KINDS: tuple[str, ...] = ("ppo", "reinforce")
"""Saved policies, written ``kind:PATH``."""


def _fresh(name: str) -> Callable[[Any, int], Policy]:
    if name == "uniform":
        return lambda env, seed: UniformPolicy.for_env(env)
    if name == "random":
        return lambda env, seed: RandomPolicy.for_env(env, seed=seed)
    if name == "heuristic":
        return lambda env, seed: HeuristicPolicy.for_env(env)
    raise NotImplementedError(f"policy {name!r} is not available yet")


def make_policy(spec: str, env: Any, seed: int = 0) -> Policy:
    """The policy ``spec`` names, for ``env``.

    ``spec`` is one of :data:`POLICY_NAMES`, or ``ppo:PATH`` / ``reinforce:PATH`` for a saved
    artefact (checked against the env's spec; an incompatible env fails naming what differs).
    """
    if ":" in spec:
        kind, path = spec.split(":", 1)
        check_choice("policy kind", kind, ARTIFACT_KINDS)
        raise NotImplementedError(f"loading {kind!r} artefacts is not available yet ({path})")
    check_choice("policy", spec, POLICY_NAMES)
    return _fresh(spec)(env, seed)
