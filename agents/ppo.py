"""PPO (Stable-Baselines3) on DUS-v0, with settings for an expensive environment.

Every DUS-v0 step is a slice of a real training run, so samples are dear: the rollout holds a
few whole episodes (not SB3's default 2,048 steps), minibatches are small and epochs few.
:class:`PPOConfig` documents each choice; :func:`build_ppo` turns it into an SB3 ``PPO``;
:class:`PPOPolicy` is the trained policy behind the one ``predict`` interface, saved as one
artefact file (:mod:`dus_agents.artifact`) that records the env spec.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from dus_agents.artifact import (
    ArtifactError,
    check_compatible,
    env_spec_of,
    read_artifact,
    write_artifact,
)
from dus_env.errors import check_range

ARTIFACT_KIND = "ppo"


@dataclass(frozen=True)
class PPOConfig:
    """PPO settings for DUS-v0 (SB3 argument names where they exist)."""

    episodes_per_rollout: int = 4
    """Whole episodes each env collects per rollout: ``n_steps = episodes_per_rollout *
    episode_length`` (used when ``n_steps`` is None). Whole episodes keep GAE away from
    bootstrapping across unfinished training runs."""
    n_steps: int | None = None
    """Env steps per env per rollout (None: from ``episodes_per_rollout``). SB3's default 2,048
    would mean hundreds of training runs before the first update."""
    batch_size: int | None = None
    """Minibatch size (None: a quarter of the rollout, ``n_steps * n_envs // 4``, at least 1)."""
    n_epochs: int = 4
    """Passes over each rollout; few, as the rollout is small and re-used data goes stale."""
    learning_rate: float = 3e-4
    """Adam step size."""
    gamma: float = 0.99
    """Discount; episodes are short (tens of steps), so close to 1."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    clip_range: float = 0.2
    """PPO ratio clipping."""
    ent_coef: float = 0.01
    """Entropy bonus; keeps the per-modality categoricals exploring on few samples."""
    vf_coef: float = 0.5
    """Value-loss weight."""
    max_grad_norm: float = 0.5
    """Gradient clipping (global norm)."""
    net_arch: tuple[int, ...] = (64, 64)
    """Hidden layers of the policy and of the (separate) value network."""
    reward_scale: float = 0.01
    """Multiplier on the env reward seen by PPO (:class:`ScaleReward`). DUS-v0 rewards are in
    accuracy points (tens early in a run); 0.01 turns them into fractions so the value loss
    does not swamp the clipped policy gradient. Monitor logs keep the raw points."""
    device: str = "cpu"
    """Torch device of the networks (the MLP is small; CPU is fastest)."""

    def __post_init__(self) -> None:
        check_range("ppo.episodes_per_rollout", self.episodes_per_rollout, 1)
        if self.n_steps is not None:
            check_range("ppo.n_steps", self.n_steps, 1)
        if self.batch_size is not None:
            check_range("ppo.batch_size", self.batch_size, 1)
        check_range("ppo.n_epochs", self.n_epochs, 1)
        check_range("ppo.learning_rate", self.learning_rate, 0.0, low_inclusive=False)
        check_range("ppo.gamma", self.gamma, 0.0, 1.0)
        check_range("ppo.gae_lambda", self.gae_lambda, 0.0, 1.0)
        check_range("ppo.clip_range", self.clip_range, 0.0, low_inclusive=False)
        check_range("ppo.ent_coef", self.ent_coef, 0.0)
        check_range("ppo.vf_coef", self.vf_coef, 0.0)
        check_range("ppo.max_grad_norm", self.max_grad_norm, 0.0, low_inclusive=False)
        check_range("ppo.reward_scale", self.reward_scale, 0.0, low_inclusive=False)
        for h in self.net_arch:
            check_range("ppo.net_arch", h, 1)

    def rollout_steps(self, episode_length: int) -> int:
        """``n_steps`` per env for episodes of ``episode_length`` env steps."""
        if self.n_steps is not None:
            return self.n_steps
        return self.episodes_per_rollout * episode_length

    def sb3_kwargs(self, episode_length: int, n_envs: int) -> dict[str, Any]:
        """Keyword arguments for ``stable_baselines3.PPO``."""
        n_steps = self.rollout_steps(episode_length)
        batch_size = self.batch_size or max(1, n_steps * n_envs // 4)
        return {
            "n_steps": n_steps,
            "batch_size": batch_size,
            "n_epochs": self.n_epochs,
            "learning_rate": self.learning_rate,
            "gamma": self.gamma,
            "gae_lambda": self.gae_lambda,
            "clip_range": self.clip_range,
            "ent_coef": self.ent_coef,
            "vf_coef": self.vf_coef,
            "max_grad_norm": self.max_grad_norm,
            "policy_kwargs": {"net_arch": list(self.net_arch)},
            "device": self.device,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ScaleReward(gym.RewardWrapper):
    """Multiply every reward by ``scale`` (place it outside ``Monitor`` so logs keep raw
    rewards). From rl-zoo3 yaml: ``env_wrapper: [{dus_agents.ppo.ScaleReward: {scale: 0.01}}]``."""

    def __init__(self, env: gym.Env, scale: float = 0.01) -> None:
        super().__init__(env)
        check_range("scale", scale, 0.0, low_inclusive=False)
        self.scale = float(scale)

    def reward(self, reward: float) -> float:
        return float(reward) * self.scale


def make_env_fn(
    preset: str,
    overrides: Mapping[str, Any] | None = None,
    monitor_file: str | None = None,
    reward_scale: float | None = None,
) -> Callable[[], gym.Env]:
    """A picklable factory of one DUS-v0 env: ``Monitor`` (raw rewards, optional CSV), then
    :class:`ScaleReward` when ``reward_scale`` is set. Sets torch to one thread in the process
    that builds the env (SubprocVecEnv workers), as training runs are many small matmuls."""
    overrides = dict(overrides or {})

    def _make() -> gym.Env:
        import torch
        from stable_baselines3.common.monitor import Monitor

        import dus_env  # noqa: F401  (registers the env id in a fresh worker)

        torch.set_num_threads(1)
        env = gym.make(dus_env.ENV_ID, preset=preset, config=overrides or None)
        env = Monitor(env, filename=monitor_file, override_existing=False)
        if reward_scale is not None and reward_scale != 1.0:
            env = ScaleReward(env, reward_scale)
        return env

    return _make


def make_vec_env(
    preset: str,
    n_envs: int = 1,
    overrides: Mapping[str, Any] | None = None,
    monitor_dir: str | Path | None = None,
    reward_scale: float | None = None,
):
    """A ``DummyVecEnv`` (n_envs == 1) or ``SubprocVecEnv`` (n_envs > 1) of DUS-v0 envs."""
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    check_range("n_envs", n_envs, 1)
    fns = []
    for rank in range(n_envs):
        monitor_file = None
        if monitor_dir is not None:
            Path(monitor_dir).mkdir(parents=True, exist_ok=True)
            monitor_file = str(Path(monitor_dir) / f"{rank}")
        fns.append(make_env_fn(preset, overrides, monitor_file, reward_scale))
    if n_envs == 1:
        return DummyVecEnv(fns)
    return SubprocVecEnv(fns)


def build_ppo(vec_env: Any, config: PPOConfig, seed: int, episode_length: int, verbose: int = 0):
    """A fresh SB3 ``PPO`` (``MlpPolicy``) on ``vec_env`` with ``config``."""
    from stable_baselines3 import PPO

    kwargs = config.sb3_kwargs(episode_length, vec_env.num_envs)
    return PPO("MlpPolicy", vec_env, seed=seed, verbose=verbose, **kwargs)


class PPOPolicy:
    """A trained SB3 PPO model behind the one ``predict`` interface, with the env spec it was
    trained on.

    Args:
        model: a ``stable_baselines3.PPO``.
        env_spec: ``env.unwrapped.spec_dict()`` of the training env.
    """

    def __init__(self, model: Any, env_spec: Mapping[str, Any]) -> None:
        self.model = model
        self.env_spec = dict(env_spec)

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        return self.model.predict(observation, state=state, episode_start=episode_start,
                                  deterministic=deterministic)

    def save(self, path: str | Path, metadata: Mapping[str, Any] | None = None) -> Path:
        """Write one artefact file: the SB3 zip plus ``dus_artifact.json``."""
        buffer = io.BytesIO()
        self.model.save(buffer)
        return write_artifact(path, ARTIFACT_KIND, self.env_spec, {}, metadata,
                              base_zip=buffer.getvalue())

    @classmethod
    def from_sb3(cls, path: str | Path, env: Any) -> PPOPolicy:
        """Adopt a plain SB3 PPO zip (an rl-zoo3 or CheckpointCallback output) for ``env``,
        checking its spaces against the env's; ``save()`` then writes an artefact."""
        from stable_baselines3 import PPO

        if not Path(path).exists():
            raise FileNotFoundError(f"model file {str(path)!r} does not exist")
        try:
            model = PPO.load(str(path), device="cpu")
        except Exception as exc:
            raise ArtifactError(
                f"model file {str(path)!r} is not a readable SB3 PPO zip ({type(exc).__name__}: "
                f"{exc})"
            ) from exc
        spec = env_spec_of(env)
        base = env.unwrapped
        if model.observation_space.shape != base.observation_space.shape:
            raise ArtifactError(
                f"model {str(path)!r} takes observations of shape {model.observation_space.shape}, "
                f"this env gives {base.observation_space.shape}"
            )
        if list(getattr(model.action_space, "nvec", [])) != list(base.action_space.nvec):
            raise ArtifactError(
                f"model {str(path)!r} has action space {model.action_space}, this env has "
                f"{base.action_space}"
            )
        return cls(model, spec)

    @classmethod
    def load(cls, path: str | Path, env: Any | None = None) -> PPOPolicy:
        """Load an artefact; with ``env``, fail unless it matches the recorded env spec."""
        from stable_baselines3 import PPO

        artifact = read_artifact(path, ARTIFACT_KIND)
        path = artifact.path  # a run directory resolves to its policy file
        if env is not None:
            check_compatible(artifact.env_spec, env_spec_of(env), path)
        try:
            model = PPO.load(str(path), device="cpu")
        except Exception as exc:  # SB3 raises many kinds on a damaged payload
            raise ArtifactError(
                f"policy file {str(path)!r} has a damaged PPO model ({type(exc).__name__}: {exc})"
            ) from exc
        obs_size = int(np.prod(model.observation_space.shape))
        if obs_size != artifact.env_spec.get("observation_size"):
            raise ArtifactError(
                f"policy file {str(path)!r}: its model takes {obs_size} observation values but "
                f"its recorded env spec says {artifact.env_spec.get('observation_size')}"
            )
        return cls(model, artifact.env_spec)
