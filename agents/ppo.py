"""PPO (Stable-Baselines3) on DUS-v0, with settings for an expensive environment.

Every DUS-v0 step is a slice of a real training run, so samples are dear: the rollout holds a
few whole episodes (not SB3's default 2,048 steps), minibatches are small and epochs few.
:class:`PPOConfig` documents each choice; :func:`build_ppo` turns it into an SB3 ``PPO``;
:class:`PPOPolicy` is the trained policy behind the one ``predict`` interface.

Files are data, never code. A PPO artefact (:mod:`dus_agents.artifact`, format 2) holds the
policy network's tensors (``policy.pt``, read with ``torch.load(weights_only=True)``) and its
layout, spaces and settings as JSON (``policy.json``); loading rebuilds the network from the
JSON and never unpickles. It checks the sizes the JSON declares against the file's tensors
before allocating anything, refuses NaN/inf weights, refuses a header whose env spec does not
describe the network (:func:`check_spec_fits_network`), and draws no global random numbers (the
DeepSets network is built on torch's ``meta`` device, the MLP inside ``fork_rng``, and the first
import of stable_baselines3 leaves Python's ``random`` as it was: :func:`import_sb3`).
Training checkpoints are the same artefact plus the optimiser's tensors and the training
counters (:func:`save_checkpoint` / :func:`load_checkpoint`). Plain SB3 model zips (rl-zoo3
outputs) are adopted with :meth:`PPOPolicy.from_sb3`, which reads them through
:mod:`dus_agents.sb3_files` without executing their pickled entries.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from dus_agents.artifact import (
    ARTIFACT_ENTRY,
    ArtifactError,
    check_compatible,
    check_state_shapes,
    env_spec_of,
    global_random_kept,
    nonfinite_tensor,
    read_artifact,
    state_dict_from_bytes,
    tensor_bytes,
    tensors_from_bytes,
    write_artifact,
)
from dus_env.config.io import value_of
from dus_env.errors import check_range, did_you_mean

ARTIFACT_KIND = "ppo"
POLICY_ENTRY, WEIGHTS_ENTRY = "policy.json", "policy.pt"
OPTIMIZER_ENTRY, TRAINING_ENTRY = "optimizer.pt", "training.json"


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
    """Minibatch size (None: a quarter of the rollout, ``n_steps * n_envs // 4``, at least 2:
    SB3 normalises advantages per minibatch, so it refuses minibatches of one)."""
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
            check_range("ppo.batch_size", self.batch_size, 2)
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

    @classmethod
    def for_suite(cls) -> PPOConfig:
        """The settings ``dus-train --suite`` uses: the paired reward's returns are a few
        points, so they are scaled to tenths (not hundredths) of a point."""
        return cls(reward_scale=0.1)

    def with_overrides(self, pairs: Sequence[str], flag: str = "--ppo") -> PPOConfig:
        """These settings with ``KEY=VALUE`` overrides (``learning_rate=1e-3``,
        ``episodes_per_rollout=2``, ``net_arch=[32,32]``; values read as JSON). Raises
        ``ValueError`` naming the flag, the key or value and the valid keys or type."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        changes: dict[str, Any] = {}
        for pair in pairs:
            key, sep, text = pair.partition("=")
            if not sep or not key:
                raise ValueError(f"{flag}={pair!r}: expected KEY=VALUE, e.g. {flag} "
                                 f"learning_rate=1e-3")
            if key not in fields:
                raise ValueError(f"{flag}={pair!r}: {key!r} is not a PPO setting; valid keys: "
                                 f"{sorted(fields)}.{did_you_mean(key, fields)}")
            changes[key] = _setting(flag, key, value_of(text), fields[key])
        try:
            return dataclasses.replace(self, **changes)
        except ValueError as exc:
            raise ValueError(f"{flag}: {exc}") from None

    def rollout_steps(self, episode_length: int) -> int:
        """``n_steps`` per env for episodes of ``episode_length`` env steps."""
        if self.n_steps is not None:
            return self.n_steps
        return self.episodes_per_rollout * episode_length

    def sb3_kwargs(self, episode_length: int, n_envs: int) -> dict[str, Any]:
        """Keyword arguments for ``stable_baselines3.PPO``."""
        n_steps = self.rollout_steps(episode_length)
        if n_steps * n_envs < 2:
            raise ValueError(f"ppo.n_steps={n_steps} with {n_envs} env gives a rollout of "
                             f"{n_steps * n_envs} step; PPO needs at least 2 (raise "
                             "ppo.n_steps or the env count)")
        batch_size = self.batch_size or max(2, n_steps * n_envs // 4)
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


def _setting(flag: str, key: str, value: Any, default: Any) -> Any:
    """``value`` checked against the type of the setting whose default is ``default``."""
    def is_int(x: Any) -> bool:
        return isinstance(x, int) and not isinstance(x, bool)

    if key in ("n_steps", "batch_size"):
        ok, want = value is None or is_int(value), "an integer or null"
    elif key == "net_arch":
        ok, want = (isinstance(value, list) and bool(value) and all(map(is_int, value)),
                    "a non-empty JSON list of integers, e.g. [64,64]")
        value = tuple(value) if ok else value
    elif isinstance(default, str):
        ok, want = isinstance(value, str), "a string"
    elif is_int(default):
        ok, want = is_int(value), "an integer"
    else:
        ok, want = is_int(value) or isinstance(value, float), "a number"
        value = float(value) if ok else value
    if not ok:
        raise ValueError(f"{flag} {key}={value!r} has type {type(value).__name__}; expected {want}")
    return value


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
    suite: str | None = None,
) -> Callable[[], gym.Env]:
    """A picklable factory of one DUS-v0 env (or, with ``suite``, one DUS-v1 env over that
    suite's training tasks, ``overrides`` applied to every task): ``Monitor`` (raw rewards,
    optional CSV), then :class:`ScaleReward` when ``reward_scale`` is set. Sets torch to one
    thread in the process that builds the env (SubprocVecEnv workers), as training runs are
    many small matmuls."""
    overrides = dict(overrides or {})

    def _make() -> gym.Env:
        import torch
        from stable_baselines3.common.monitor import Monitor

        import dus_env  # noqa: F401  (registers the env id in a fresh worker)

        torch.set_num_threads(1)
        from dus_agents.base import make_dus_env

        if suite is not None:
            env = make_dus_env(dus_env.ENV_V1_ID, suite=suite, config=overrides or None)
        else:
            env = make_dus_env(dus_env.ENV_ID, preset=preset, config=overrides or None)
        # a new file gets SB3's header; a resumed run appends to the one it has
        fresh = monitor_file is None or not Path(f"{monitor_file}.{Monitor.EXT}").exists()
        env = Monitor(env, filename=monitor_file, override_existing=fresh)
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
    suite: str | None = None,
):
    """A ``DummyVecEnv`` (n_envs == 1) or ``SubprocVecEnv`` (n_envs > 1) of DUS envs (DUS-v1
    over ``suite`` when given)."""
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    check_range("n_envs", n_envs, 1)
    fns = []
    for rank in range(n_envs):
        monitor_file = None
        if monitor_dir is not None:
            Path(monitor_dir).mkdir(parents=True, exist_ok=True)
            monitor_file = str(Path(monitor_dir) / f"{rank}")
        fns.append(make_env_fn(preset, overrides, monitor_file, reward_scale, suite))
    if n_envs == 1:
        return DummyVecEnv(fns)
    return SubprocVecEnv(fns)


POLICIES: tuple[str, ...] = ("mlp", "deepsets")
"""PPO networks: SB3's MlpPolicy (DUS-v0) or the permutation-equivariant DeepSets policy
(DUS-v1, :mod:`dus_agents.deepsets`)."""


def build_ppo(vec_env: Any, config: PPOConfig, seed: int, episode_length: int, verbose: int = 0,
              policy: str = "mlp", deepsets: dict[str, Any] | None = None):
    """A fresh SB3 ``PPO`` on ``vec_env`` with ``config``: ``MlpPolicy``, or ``deepsets``
    (``deepsets``: extra :func:`dus_agents.deepsets.deepsets_kwargs`, e.g. the anchor)."""
    from stable_baselines3 import PPO

    kwargs = config.sb3_kwargs(episode_length, vec_env.num_envs)
    if policy == "mlp":
        model = PPO("MlpPolicy", vec_env, seed=seed, verbose=verbose, **kwargs)
    elif policy == "deepsets":
        from dus_agents.deepsets import DeepSetsPolicy, deepsets_kwargs

        net_arch = kwargs.pop("policy_kwargs")["net_arch"]
        policy_kwargs = deepsets_kwargs(vec_env, hidden=tuple(net_arch),
                                        head=tuple(net_arch[-1:]), **(deepsets or {}))
        model = PPO(DeepSetsPolicy, vec_env, seed=seed, verbose=verbose,
                    policy_kwargs=policy_kwargs, **kwargs)
    else:
        raise ValueError(f"policy={policy!r} is not valid; valid choices: {list(POLICIES)}")
    model.set_logger(quiet_logger(verbose))
    return model


def quiet_logger(verbose: int = 0):
    """An SB3 logger that writes only to stdout when ``verbose``, and creates no folder.

    SB3's own default makes an empty ``$TMPDIR/SB3-<time>`` folder on every ``learn()``;
    callers that want files (``dus-train``) replace this with their own logger.
    """
    from stable_baselines3.common.logger import HumanOutputFormat, Logger

    return Logger(folder=None, output_formats=[HumanOutputFormat(sys.stdout)] if verbose else [])


def _space_json(observation_space: gym.spaces.Box, action_space: gym.Space) -> dict[str, Any]:
    if not isinstance(action_space, gym.spaces.MultiDiscrete):
        raise ArtifactError(f"only MultiDiscrete actions are saved; got {action_space}")
    return {
        "observation_space": {"shape": list(observation_space.shape),
                              "low": observation_space.low.ravel().tolist(),
                              "high": observation_space.high.ravel().tolist(),
                              "dtype": str(observation_space.dtype)},
        "action_space": {"nvec": [int(n) for n in action_space.nvec]},
    }


def _spaces_from_json(spec: Mapping[str, Any], where: str) -> tuple[gym.spaces.Box,
                                                                     gym.spaces.MultiDiscrete]:
    try:
        obs, act = spec["observation_space"], spec["action_space"]
        shape = tuple(int(n) for n in obs["shape"])
        low = np.asarray(obs["low"], dtype=np.float32).reshape(shape)
        high = np.asarray(obs["high"], dtype=np.float32).reshape(shape)
        return (gym.spaces.Box(low=low, high=high, dtype=np.float32),
                gym.spaces.MultiDiscrete(np.asarray(act["nvec"], dtype=np.int64)))
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"policy file {where!r} has malformed spaces in {POLICY_ENTRY!r} "
                            f"({type(exc).__name__}: {exc})") from None


def policy_layout(policy: Any) -> dict[str, Any]:
    """The JSON that rebuilds ``policy`` (an SB3 ``ActorCriticPolicy`` MLP, or a policy with a
    ``dus_layout()`` method, such as the DeepSets policy)."""
    from stable_baselines3.common.policies import ActorCriticPolicy
    from stable_baselines3.common.torch_layers import FlattenExtractor

    from dus_agents.sb3_files import ACTIVATIONS

    if hasattr(policy, "dus_layout"):
        layout = dict(policy.dus_layout())
    else:
        if type(policy) is not ActorCriticPolicy or not isinstance(
                policy.features_extractor, FlattenExtractor):
            raise ArtifactError(f"{type(policy).__name__} cannot be saved as weights + JSON; "
                                "only SB3's MlpPolicy and the package's own policies can")
        names = {cls: name for name, cls in ACTIVATIONS.items()}
        if policy.activation_fn not in names:
            raise ArtifactError(f"activation {policy.activation_fn.__name__} cannot be saved; "
                                f"valid: {list(ACTIVATIONS)}")
        net_arch = policy.net_arch
        if isinstance(net_arch, list):
            net_arch = {"pi": list(net_arch), "vf": list(net_arch)}
        layout = {"policy": "mlp", "settings": {
            "net_arch": {"pi": list(net_arch["pi"]), "vf": list(net_arch["vf"])},
            "activation_fn": names[policy.activation_fn],
            "ortho_init": bool(policy.ortho_init),
            "share_features_extractor": bool(policy.share_features_extractor),
            "normalize_images": bool(policy.normalize_images),
            "observation_shape": list(policy.observation_space.shape),
            "action_nvec": [int(n) for n in policy.action_space.nvec],
            "action_source": "action_space",
        }}
    layout.update(_space_json(policy.observation_space, policy.action_space))
    return layout


def import_sb3() -> None:
    """Import stable_baselines3's policies leaving Python's global ``random`` state as it was:
    its first import loads rich, whose import draws from that generator, and loading a policy
    draws no global random numbers."""
    with global_random_kept():
        importlib.import_module("stable_baselines3.common.policies")


def build_policy(layout: Mapping[str, Any], where: str,
                 state: Mapping[str, Any] | None = None) -> Any:
    """The policy network ``layout`` (:func:`policy_layout`) describes; with ``state`` (checked
    by :func:`dus_agents.artifact.check_state_dict`), holding those weights.

    Building it never touches torch's, numpy's or Python's global random state (the first
    import of stable_baselines3 is made by :func:`import_sb3`). With ``state``, the sizes the
    layout declares are checked against the tensors in ``state`` before anything is
    allocated: the DeepSets network is built on torch's ``meta`` device and then given the
    file's tensors, the MLP's shapes are computed from its settings first."""
    import torch

    from dus_agents.sb3_files import build_actor_critic, mlp_state_shapes

    if not isinstance(layout, Mapping):
        raise ArtifactError(f"policy file {where!r}: {POLICY_ENTRY!r} holds a JSON "
                            f"{type(layout).__name__}, expected an object")
    observation_space, action_space = _spaces_from_json(layout, where)
    kind = layout.get("policy")
    if kind not in POLICIES:
        raise ArtifactError(f"policy file {where!r}: {POLICY_ENTRY!r} policy={kind!r} is not a "
                            f"known network; valid choices: {list(POLICIES)}")
    settings = layout.get("settings")
    if not isinstance(settings, Mapping):
        raise ArtifactError(f"policy file {where!r}: {POLICY_ENTRY!r} settings={settings!r} is "
                            "not valid; expected a JSON object")
    import_sb3()
    try:
        if kind == "mlp":
            if state is not None:
                check_state_shapes(mlp_state_shapes(observation_space, action_space,
                                                    dict(settings)), state, where, WEIGHTS_ENTRY)
            policy = build_actor_critic(observation_space, action_space, dict(settings))
        else:
            from dus_agents.deepsets import DeepSetsPolicy

            if state is None:
                with torch.random.fork_rng(devices=[]):
                    return DeepSetsPolicy.from_layout(observation_space, action_space, layout)
            with torch.device("meta"):  # no storage, no random draws
                policy = DeepSetsPolicy.from_layout(observation_space, action_space, layout)
            check_state_shapes({name: tuple(t.shape) for name, t in policy.state_dict().items()},
                               state, where, WEIGHTS_ENTRY)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        if isinstance(exc, ArtifactError):
            raise
        raise ArtifactError(f"policy file {where!r}: {POLICY_ENTRY!r} does not describe a "
                            f"buildable policy ({type(exc).__name__}: {exc})") from None
    if state is not None:
        load_weights(policy, state, where)
    return policy


def load_weights(policy: Any, state: Mapping[str, Any], where: str,
                 member: str = WEIGHTS_ENTRY) -> None:
    """Load a state dict strictly, naming the file, the member and the first key that does not
    fit (or is not a finite floating-point tensor)."""
    from dus_agents.sb3_files import load_policy_state

    load_policy_state(policy, state, where, member)


class SampledPolicy:
    """A PPO policy replayed by *sampling* its actions from its action distribution, with a
    private seeded generator, instead of taking the most likely action: ``predict`` samples
    whatever ``deterministic`` says (that is this wrapper's purpose). Written ``sampled:SPEC``
    (e.g. ``sampled:pretrained``, ``sampled:ppo:PATH``) wherever a policy spec goes. The
    actions depend on the seed and on the order of the calls; no global random state is read.

    Args:
        inner: a :class:`PPOPolicy`.
        seed: seed of the generator.
    """

    def __init__(self, inner: PPOPolicy, seed: int = 0) -> None:
        if not isinstance(inner, PPOPolicy):
            raise ValueError(f"sampled: needs a PPO policy (pretrained or ppo:PATH), got "
                             f"{type(inner).__name__}")
        import torch

        self.inner, self.env_spec = inner, inner.env_spec
        self.generator = torch.Generator().manual_seed(int(seed))

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        import torch

        obs = np.asarray(observation, dtype=np.float32)
        single = obs.ndim == 1
        batch = torch.as_tensor(obs[None] if single else obs)
        with torch.no_grad():
            dist = self.inner.policy.get_distribution(batch).distribution
            parts = dist if isinstance(dist, list) else [dist]
            actions = torch.stack([torch.multinomial(d.probs, 1, generator=self.generator)[:, 0]
                                   for d in parts], dim=1).numpy().astype(np.int64)
        return (actions[0] if single else actions), state


class PPOPolicy:
    """A trained PPO policy network behind the one ``predict`` interface, with the env spec it
    was trained on.

    Args:
        policy: an SB3 ``ActorCriticPolicy`` (``model.policy`` of a trained ``PPO``).
        env_spec: ``env.unwrapped.spec_dict()`` of the training env.
    """

    def __init__(self, policy: Any, env_spec: Mapping[str, Any]) -> None:
        if hasattr(policy, "policy") and hasattr(policy, "learn"):  # a whole PPO model
            policy = policy.policy
        self.policy = policy
        self.env_spec = dict(env_spec)

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        return self.policy.predict(observation, state=state, episode_start=episode_start,
                                   deterministic=deterministic)

    def entries(self) -> dict[str, bytes]:
        """The artefact payload: the network's layout as JSON and its tensors."""
        return {
            POLICY_ENTRY: json.dumps(policy_layout(self.policy), indent=1).encode("utf-8"),
            WEIGHTS_ENTRY: tensor_bytes(self.policy.state_dict()),
        }

    def save(self, path: str | Path, metadata: Mapping[str, Any] | None = None) -> Path:
        """Write one artefact file: ``policy.json`` + ``policy.pt`` + ``dus_artifact.json``."""
        return write_artifact(path, ARTIFACT_KIND, self.env_spec, self.entries(), metadata)

    @classmethod
    def from_sb3(cls, path: str | Path, env: Any) -> PPOPolicy:
        """Adopt a plain SB3 PPO zip (an rl-zoo3 or CheckpointCallback output) for ``env``,
        checking its spaces against the env's; ``save()`` then writes an artefact. The zip is
        read as data (:mod:`dus_agents.sb3_files`): its pickled entries are never executed."""
        from dus_agents.sb3_files import build_actor_critic, policy_settings, read_sb3_zip

        if not Path(path).exists():
            raise FileNotFoundError(f"model file {str(path)!r} does not exist")
        sb3 = read_sb3_zip(path)
        settings = policy_settings(sb3)
        spec = env_spec_of(env)
        base = env.unwrapped
        if tuple(settings["observation_shape"]) != tuple(base.observation_space.shape):
            raise ArtifactError(
                f"model {str(path)!r} takes observations of shape "
                f"{tuple(settings['observation_shape'])}, this env gives "
                f"{base.observation_space.shape}"
            )
        nvec = list(base.action_space.nvec)
        if settings["action_nvec"] != nvec and sum(settings["action_nvec"]) != sum(nvec):
            raise ArtifactError(
                f"model {str(path)!r} has actions {settings['action_nvec']}, this env has "
                f"{base.action_space}"
            )
        policy = build_actor_critic(base.observation_space, base.action_space, settings)
        load_weights(policy, sb3.policy_state or {}, str(path), "policy.pth")
        return cls(policy, spec)

    @classmethod
    def load(cls, path: str | Path, env: Any | None = None) -> PPOPolicy:
        """Load an artefact; with ``env``, fail unless it matches the recorded env spec."""
        artifact = read_artifact(path, ARTIFACT_KIND, members=(POLICY_ENTRY, WEIGHTS_ENTRY))
        where = str(artifact.path)
        if artifact.format_version < 2:
            raise ArtifactError(
                f"policy file {where!r} is a format-1 PPO artefact (a Stable-Baselines3 model "
                "zip), which only unpickling could load: refused. Convert it once, reading it as "
                "data: PPOPolicy.from_sb3(path, env).save(new_path)"
            )
        if env is not None:
            check_compatible(artifact.env_spec, env_spec_of(env), where)
        try:
            layout = json.loads(artifact.entries[POLICY_ENTRY].decode("utf-8"))
        except (KeyError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise ArtifactError(f"policy file {where!r} has a damaged PPO payload "
                                f"({type(exc).__name__}: {exc})") from None
        state = state_dict_from_bytes(artifact.entries[WEIGHTS_ENTRY], where, WEIGHTS_ENTRY)
        policy = build_policy(layout, where, state)
        obs_size = int(np.prod(policy.observation_space.shape))
        if obs_size != artifact.env_spec.get("observation_size"):
            raise ArtifactError(
                f"policy file {where!r}: its network takes {obs_size} observation values but "
                f"its recorded env spec says {artifact.env_spec.get('observation_size')}"
            )
        check_spec_fits_network(artifact.env_spec, policy, where)
        policy.set_training_mode(False)
        return cls(policy, artifact.env_spec)


def check_spec_fits_network(spec: Mapping[str, Any], policy: Any, where: str) -> None:
    """Refuse, naming the file and the field, a header whose env spec does not describe the
    network it sits next to: a plain loop (:func:`dus_agents.loop.make_controller`) builds its
    observation and grid from the header's ``layout``, ``max_modalities`` / ``n_modalities``,
    ``history_length`` and ``multipliers``, so each must fit the network's own input and output
    sizes (``observation_size`` is checked against the network by the caller)."""
    from dus_env.config import MonitorConfig, SamplerConfig
    from dus_env.slots import SlotLayout
    from dus_env.spaces import ObservationLayout

    nvec = getattr(policy.action_space, "nvec", None)  # None: multipliers (a Box)
    if nvec is None:
        return
    nvec = [int(n) for n in nvec]
    slots, obs_size = len(nvec), int(np.prod(policy.observation_space.shape))
    v1 = spec.get("layout") == "v1"

    def refuse(name: str, why: str) -> None:
        shown = repr(spec[name]) if name in spec else "(absent)"
        raise ArtifactError(f"policy file {where!r}: {ARTIFACT_ENTRY!r} env_spec.{name}={shown} "
                            f"does not fit its network: {why}")

    if v1 and spec["max_modalities"] != slots:
        raise ArtifactError(
            f"policy file {where!r}: its network has {slots} modality slots but its "
            f"recorded env spec says max_modalities={spec['max_modalities']}"
        )
    if not v1 and "n_modalities" in spec and spec["n_modalities"] != slots:
        refuse("n_modalities", f"it acts on {slots} modalities")
    grid = spec.get("multipliers")
    if isinstance(grid, list) and any(n != len(grid) for n in nvec):
        raise ArtifactError(
            f"policy file {where!r}: its network picks among {sorted(set(nvec))}"
            f" grid values but its recorded env spec has multipliers={grid} "
            f"({len(grid)} values)"
        )
    if grid is None and any(n != len(SamplerConfig().multipliers) for n in nvec):
        refuse("multipliers", f"its network picks among {sorted(set(nvec))} grid values and a "
                              f"plain loop would use the default grid of "
                              f"{len(SamplerConfig().multipliers)}")
    history = spec.get("history_length", MonitorConfig().history_length)

    def size(slotted: bool) -> int | None:
        """The observation size of the layout the header describes (``slotted``: DUS-v1)."""
        try:
            return (SlotLayout(slots, history, "gap", nvec[0]) if slotted else
                    ObservationLayout(slots, history, "gap", nvec[0])).size
        except ValueError:
            return None

    def described(slotted: bool) -> str:
        return (f"a DUS-v1 (layout='v1') observation of {slots} slots" if slotted else
                f"a DUS-v0 observation of {slots} modalities") + \
            f" with history_length={history}"

    if size(v1) != obs_size:
        if size(not v1) == obs_size:
            refuse("layout", f"it takes {obs_size} observation values, the size of "
                             f"{described(not v1)}, but the header describes {described(v1)}, "
                             f"{size(v1)} values")
        refuse("history_length", f"it takes {obs_size} observation values, but the header "
                                 f"describes {described(v1)}, {size(v1)} values")


# --------------------------------------------------------------------------- checkpoints
def save_checkpoint(model: Any, path: str | Path, env_spec: Mapping[str, Any],
                    training: Mapping[str, Any] | None = None) -> Path:
    """A training checkpoint: the policy artefact plus the optimiser's tensors and the
    counters resuming needs (``num_timesteps``, ``n_updates`` and ``training``)."""
    policy = PPOPolicy(model.policy, env_spec)
    counters = {"num_timesteps": int(model.num_timesteps), "n_updates": int(model._n_updates),
                **dict(training or {})}
    entries = {**policy.entries(),
               OPTIMIZER_ENTRY: tensor_bytes(model.policy.optimizer.state_dict()),
               TRAINING_ENTRY: json.dumps(counters, indent=1).encode("utf-8")}
    return write_artifact(path, ARTIFACT_KIND, env_spec, entries,
                          {"checkpoint": True, "num_timesteps": counters["num_timesteps"]})


@dataclass
class Checkpoint:
    """A checkpoint read (and checked) from disk, ready to be put into a fresh model."""

    path: Path
    policy: PPOPolicy
    optimizer: dict[str, Any]
    counters: dict[str, Any]


def rng_states(vec_env: Any) -> dict[str, Any]:
    """The random state a resumed run needs to go on exactly as an uninterrupted one (JSON):
    torch's, numpy's and Python's global generators (action sampling, minibatch order) and each
    env's ``np_random`` at the start of its current episode (``envs``: None where an env does
    not record it). Taken between rollouts, where every env of a fixed-length task has just
    begun an episode."""
    import random

    import torch

    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    try:
        envs = vec_env.env_method("episode_rng_state")
    except AttributeError:
        envs = None
    return {"torch": torch.get_rng_state().tolist(),
            "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
            "python": [version, list(internal), gauss_next], "envs": envs}


def _check_rng_states(rng: Any, where: str) -> None:
    """A checkpoint's ``rng`` entry is what :func:`rng_states` writes: each part is put into a
    fresh generator of its kind (never the global ones), so a resume cannot fail half-way
    through restoring it. Raises :class:`ArtifactError` naming the file and the part."""
    import random

    from dus_env.env import BIT_GENERATORS

    def refuse(part: str, why: str) -> None:
        raise ArtifactError(f"checkpoint {where!r} has a damaged random state ('rng'), "
                            f"part {part!r}: {why}; refused")

    if not isinstance(rng, dict):
        refuse("rng", f"expected a JSON object, got {type(rng).__name__}")
    for part, check in (("torch", _torch_state_check), ("numpy", _numpy_state_check),
                        ("python", lambda v: random.Random().setstate(
                            (v[0], tuple(v[1]), v[2])))):
        value = rng.get(part)
        if not isinstance(value, list):
            refuse(part, f"expected a list, got {type(value).__name__}")
        try:
            check(value)
        except (TypeError, ValueError, IndexError, KeyError, OverflowError, RuntimeError) as exc:
            refuse(part, f"{type(exc).__name__}: {exc}")
    envs = rng.get("envs")
    if envs is None:
        return
    if not isinstance(envs, list):
        refuse("envs", f"expected a list or null, got {type(envs).__name__}")
    for i, state in enumerate(envs):
        if state is None:
            continue
        name = state.get("bit_generator") if isinstance(state, dict) else None
        if name not in BIT_GENERATORS:
            refuse(f"envs[{i}]", f"not a numpy bit-generator state of {list(BIT_GENERATORS)}")
        try:
            getattr(np.random, name)().state = dict(state)
        except (TypeError, ValueError, KeyError, OverflowError) as exc:
            refuse(f"envs[{i}]", f"not a valid {name} state ({type(exc).__name__}: {exc})")


def _torch_state_check(value: list) -> None:
    import torch

    if not all(isinstance(v, int) and 0 <= v < 256 for v in value):
        raise ValueError("expected bytes (integers 0-255)")
    torch.Generator().set_state(torch.tensor(value, dtype=torch.uint8))


def _numpy_state_check(value: list) -> None:
    if len(value) != 5 or value[0] != "MT19937":
        raise ValueError("expected ['MT19937', keys, pos, has_gauss, cached_gaussian]")
    keys = value[1]
    if not (isinstance(keys, list) and len(keys) == 624
            and all(isinstance(k, int) and 0 <= k < 2**32 for k in keys)):
        raise ValueError("expected 624 unsigned 32-bit keys")
    if not (isinstance(value[2], int) and 0 <= value[2] <= 624):
        raise ValueError(f"position {value[2]!r} is not an integer in [0, 624]")
    np.random.RandomState().set_state((value[0], np.asarray(keys, dtype=np.uint32), *value[2:]))


def restore_rng_states(rng: Mapping[str, Any], vec_env: Any) -> bool:
    """Put :func:`rng_states` back: the global generators, and each env's episode state, so
    its next reset redraws the episode it was in. False (nothing changed) when the envs' states
    were not recorded or their count differs (another ``--n-envs``)."""
    import random

    import torch

    envs = rng.get("envs")
    if not isinstance(envs, list) or len(envs) != vec_env.num_envs or None in envs:
        return False
    for i, state in enumerate(envs):
        vec_env.env_method("redo_episode", state, indices=[i])
    vec_env._reset_seeds()  # the seeds SB3 set at build would reseed the next reset
    numpy = rng["numpy"]
    np.random.set_state((numpy[0], np.asarray(numpy[1], dtype=np.uint32), *numpy[2:]))
    python = rng["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    torch.set_rng_state(torch.tensor(rng["torch"], dtype=torch.uint8))
    return True


def read_checkpoint(path: str | Path, env: Any | None = None) -> Checkpoint:
    """Read a checkpoint of :func:`save_checkpoint` as data (nothing is unpickled); with
    ``env``, its spec must match. Raises :class:`ArtifactError` naming the file."""
    policy = PPOPolicy.load(path, env)
    where = str(path)
    artifact = read_artifact(path, ARTIFACT_KIND, members=(OPTIMIZER_ENTRY, TRAINING_ENTRY))
    try:
        counters = json.loads(artifact.entries[TRAINING_ENTRY].decode("utf-8"))
        int(counters["num_timesteps"]), int(counters["n_updates"])
    except (KeyError, TypeError, ValueError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"checkpoint {where!r} has damaged training counters "
                            f"({type(exc).__name__}: {exc})") from None
    if "rng" in counters:  # checkpoints from before it was recorded have none
        _check_rng_states(counters["rng"], where)
    optimizer = tensors_from_bytes(artifact.entries[OPTIMIZER_ENTRY], where, OPTIMIZER_ENTRY)
    bad = nonfinite_tensor(optimizer)
    if bad is not None:
        raise ArtifactError(f"checkpoint {where!r}: member {OPTIMIZER_ENTRY!r} has NaN or inf "
                            f"values in {bad!r}; refused")
    return Checkpoint(Path(path), policy, optimizer, counters)


def restore_checkpoint(model: Any, checkpoint: Checkpoint) -> None:
    """Put a checkpoint's weights, optimiser state and counters into a freshly built PPO
    ``model`` of the same settings."""
    where = str(checkpoint.path)
    load_weights(model.policy, checkpoint.policy.policy.state_dict(), where)
    try:
        model.policy.optimizer.load_state_dict(checkpoint.optimizer)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ArtifactError(f"checkpoint {where!r}: its optimiser state does not fit this "
                            f"model ({type(exc).__name__}: {exc})") from None
    model.num_timesteps = int(checkpoint.counters["num_timesteps"])
    model._n_updates = int(checkpoint.counters["n_updates"])
