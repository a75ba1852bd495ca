"""Sampling policies behind one interface (SB3's ``predict``), and RL glue.

This layer may import stable-baselines3; the library ``dus_env`` never does.
"""

from agents.base import GridPolicy, OnlinePolicy, Policy
from agents.heuristic import HeuristicPolicy, RandomPolicy, UniformPolicy
from agents.rollout import EpisodeResult, run_episode

__all__ = [
    "EpisodeResult",
    "GridPolicy",
    "HeuristicPolicy",
    "OnlinePolicy",
    "Policy",
    "RandomPolicy",
    "UniformPolicy",
    "run_episode",
]
