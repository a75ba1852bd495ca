"""Sampling policies behind one interface (SB3's ``predict``), and RL glue.

This layer may import stable-baselines3; the library ``dus_env`` never does.
"""

from agents.artifact import ArtifactError, IncompatibleEnvError
from agents.base import GridPolicy, OnlinePolicy, Policy
from agents.heuristic import HeuristicPolicy, RandomPolicy, UniformPolicy
from agents.ppo import PPOConfig, PPOPolicy
from agents.reinforce import ReinforceAgent, ReinforceConfig
from agents.rollout import EpisodeResult, run_episode

__all__ = [
    "ArtifactError",
    "EpisodeResult",
    "GridPolicy",
    "HeuristicPolicy",
    "IncompatibleEnvError",
    "OnlinePolicy",
    "PPOConfig",
    "PPOPolicy",
    "Policy",
    "RandomPolicy",
    "ReinforceAgent",
    "ReinforceConfig",
    "UniformPolicy",
    "run_episode",
]
