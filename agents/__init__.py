"""Sampling policies behind one interface (SB3's ``predict``), and RL glue.

This layer may import stable-baselines3; the library ``dus_env`` never does.
"""

from dus_agents.artifact import ArtifactError, IncompatibleEnvError
from dus_agents.base import GridPolicy, OnlinePolicy, Policy
from dus_agents.heuristic import HeuristicPolicy, RandomPolicy, SchedulePolicy, UniformPolicy
from dus_agents.loop import make_controller
from dus_agents.ppo import PPOConfig, PPOPolicy
from dus_agents.reinforce import ReinforceAgent, ReinforceConfig
from dus_agents.rollout import EpisodeResult, run_episode

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
    "SchedulePolicy",
    "UniformPolicy",
    "make_controller",
    "run_episode",
]
