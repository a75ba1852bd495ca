"""Run a policy through DUS-v0 episodes and collect what evaluation needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dus_agents.base import OnlinePolicy, Policy


@dataclass
class EpisodeResult:
    """One episode: the return, its length, and every step's info (plain Python)."""

    episode_return: float
    length: int
    infos: list[dict[str, Any]] = field(default_factory=list)
    actions: list[list[int]] = field(default_factory=list)
    diverged: bool = False


def run_episode(env: Any, policy: Policy, seed: int | None = None,
                deterministic: bool = True, options: dict[str, Any] | None = None
                ) -> EpisodeResult:
    """Reset ``env`` with ``seed`` (and ``options``, e.g. DUS-v1's ``task`` and
    ``episode_seed``) and step ``policy`` until the episode ends.

    Online policies (:class:`OnlinePolicy`) are told each reward after each step.
    """
    obs, info = env.reset(seed=seed, options=options)
    infos, actions, total, state = [info], [], 0.0, None
    episode_start = np.ones((1,), dtype=bool)
    done = False
    while not done:
        action, state = policy.predict(obs, state=state, episode_start=episode_start,
                                       deterministic=deterministic)
        obs, reward, terminated, truncated, info = env.step(action)
        done = bool(terminated or truncated)
        if isinstance(policy, OnlinePolicy):
            policy.observe(float(reward), done)
        episode_start = np.zeros((1,), dtype=bool)
        total += float(reward)
        infos.append(info)
        actions.append(np.asarray(action).tolist())
    return EpisodeResult(episode_return=total, length=len(actions), infos=infos, actions=actions,
                         diverged=bool(infos[-1].get("diverged", False)))
