"""DUS-RL as the paper's framework figure draws it: a policy that learns inside one run.

:class:`ReinforceAgent` maps the DUS-v0 observation to one categorical distribution per
modality over the batch-size multiplier grid. While it learns (``frozen=False``) it samples
its actions, and every ``update_every`` env steps (and at the end of each episode) it takes
one REINFORCE step on the (observation, action, reward) of those steps, with a running-mean
baseline. So a single env episode (one multimodal training run) is enough for it to adapt;
across episodes it keeps what it learned.

Randomness comes only from the agent's own seed: the network is initialised inside
``torch.random.fork_rng`` and actions are drawn with its own ``torch.Generator``, so the
global torch/numpy RNGs are never touched.

Saved as one artefact file (:mod:`dus_agents.artifact`) holding the weights, the optimiser,
the sampling generator and the baseline, so it can either be replayed frozen (deterministic
= argmax of each categorical) or continue learning.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from dus_agents.artifact import (
    ArtifactError,
    check_compatible,
    check_state_dict,
    check_state_shapes,
    env_spec_of,
    nonfinite_tensor,
    read_artifact,
    tensor_bytes,
    tensors_from_bytes,
    write_artifact,
)
from dus_env.errors import check_choice, check_range
from dus_env.spaces import ObservationLayout

ARTIFACT_KIND = "reinforce"


@dataclass(frozen=True)
class ReinforceConfig:
    """Settings of the online REINFORCE agent."""

    hidden_sizes: tuple[int, ...] = (64,)
    """Hidden layer widths of the policy network (tanh activations)."""
    learning_rate: float = 3e-3
    """Adam step size."""
    update_every: int = 4
    """K: env steps collected per policy update (an update also happens at episode end)."""
    gamma: float = 0.0
    """Discount of rewards inside an update window. 0 (default) credits each action with the
    reward of its own step (the validation change it produced), a contextual bandit; >0 adds
    later rewards of the same window."""
    baseline: Literal["ema", "batch_mean", "none"] = "ema"
    """Baseline subtracted from returns: running (exponential) mean of past returns, the mean
    of the current window, or none."""
    baseline_decay: float = 0.9
    """Decay of the running-mean baseline (higher = slower)."""
    normalize_advantages: bool = False
    """Divide advantages by their std within the window (when it has >1 step)."""
    reward_scale: float = 1.0
    """Multiplier on rewards before computing advantages."""
    entropy_coef: float = 0.01
    """Entropy bonus per modality (keeps exploring)."""
    max_grad_norm: float = 1.0
    """Gradient clipping (global norm)."""

    def __post_init__(self) -> None:
        for h in self.hidden_sizes:
            check_range("reinforce.hidden_sizes", h, 1)
        check_range("reinforce.learning_rate", self.learning_rate, 0.0, low_inclusive=False)
        check_range("reinforce.update_every", self.update_every, 1)
        check_range("reinforce.gamma", self.gamma, 0.0, 1.0)
        check_choice("reinforce.baseline", self.baseline, ("ema", "batch_mean", "none"))
        check_range("reinforce.baseline_decay", self.baseline_decay, 0.0, 1.0,
                    high_inclusive=False)
        check_range("reinforce.reward_scale", self.reward_scale, 0.0, low_inclusive=False)
        check_range("reinforce.entropy_coef", self.entropy_coef, 0.0)
        check_range("reinforce.max_grad_norm", self.max_grad_norm, 0.0, low_inclusive=False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReinforceConfig:
        names = set(cls.__dataclass_fields__)
        unknown = set(data) - names
        if unknown:
            raise ValueError(
                f"unknown ReinforceConfig keys {sorted(unknown)}; valid: {sorted(names)}")
        kwargs = dict(data)
        if "hidden_sizes" in kwargs:
            kwargs["hidden_sizes"] = tuple(kwargs["hidden_sizes"])
        return cls(**kwargs)


class PolicyNetwork(nn.Module):
    """Observation -> logits of shape ``(..., M, K)`` (one categorical per modality)."""

    def __init__(self, obs_size: int, n_modalities: int, n_actions: int,
                 hidden_sizes: tuple[int, ...]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = obs_size
        for h in hidden_sizes:
            layers += [nn.Linear(width, h), nn.Tanh()]
            width = h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, n_modalities * n_actions)
        self.n_modalities, self.n_actions = n_modalities, n_actions
        with torch.no_grad():  # start close to the uniform distribution over the grid
            self.head.weight.mul_(0.01)
            self.head.bias.zero_()

    @staticmethod
    def state_shapes(obs_size: int, n_modalities: int, n_actions: int,
                     hidden_sizes: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        """The state-dict shapes of this network, computed without building it."""
        shapes: dict[str, tuple[int, ...]] = {}
        width = obs_size
        for i, h in enumerate(hidden_sizes):
            shapes[f"body.{2 * i}.weight"], shapes[f"body.{2 * i}.bias"] = (h, width), (h,)
            width = h
        shapes["head.weight"], shapes["head.bias"] = (n_modalities * n_actions, width), \
            (n_modalities * n_actions,)
        return shapes

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.body(obs))
        return logits.reshape(*obs.shape[:-1], self.n_modalities, self.n_actions)


class ReinforceAgent:
    """Online REINFORCE policy over the DUS-v0 action grid.

    Implements ``predict`` (the one policy interface) and ``observe(reward, terminated)``
    (:class:`dus_agents.base.OnlinePolicy`), which :func:`dus_agents.rollout.run_episode` calls after
    every step.

    * learning (``frozen=False``): actions are *sampled* whatever ``deterministic`` says (the
      policy gradient needs on-policy samples); one observation at a time.
    * frozen: ``deterministic=True`` takes each categorical's argmax, ``False`` samples from
      the agent's generator; any batch of observations; ``observe`` does nothing.

    Args:
        layout: the env's observation layout.
        multipliers: the env's action grid (recorded, checked against ``layout.n_actions``).
        config: :class:`ReinforceConfig`.
        seed: seeds network initialisation and action sampling (own generator only).
        frozen: start frozen (replay) instead of learning.
        env_spec: spec of the env it acts in (recorded in saved artefacts).
    """

    def __init__(self, layout: ObservationLayout, multipliers: tuple[float, ...],
                 config: ReinforceConfig | None = None, seed: int = 0, frozen: bool = False,
                 env_spec: Mapping[str, Any] | None = None) -> None:
        if len(multipliers) != layout.n_actions:
            raise ValueError(
                f"multipliers has {len(multipliers)} values but the layout's action grid has "
                f"{layout.n_actions}"
            )
        self.layout = layout
        self.multipliers = tuple(float(x) for x in multipliers)
        self.config = config or ReinforceConfig()
        self.seed = int(seed)
        self.frozen = frozen
        self.env_spec = dict(env_spec) if env_spec is not None else None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.network = PolicyNetwork(layout.size, layout.n_modalities, layout.n_actions,
                                         self.config.hidden_sizes)
        self.optimizer = torch.optim.Adam(self.network.parameters(),
                                          lr=self.config.learning_rate)
        self.generator = torch.Generator().manual_seed(self.seed)
        self.baseline_value: float | None = None
        self.n_updates = 0
        self.steps_seen = 0
        """Env steps this agent has acted and learned in, over all episodes."""
        self.n_episodes = 0
        self.last_update: dict[str, float] = {}
        """Diagnostics of the latest update (loss, entropy, mean advantage, baseline)."""
        self._pending: tuple[np.ndarray, np.ndarray] | None = None
        self._buffer: list[tuple[np.ndarray, np.ndarray, float]] = []

    @classmethod
    def for_env(cls, env: Any, config: ReinforceConfig | None = None, seed: int = 0,
                frozen: bool = False) -> ReinforceAgent:
        """Build for an env: plain, wrapped, or a vector env of them."""
        from dus_agents.base import unwrap_dus

        view = unwrap_dus(env)
        return cls(view.layout, tuple(view.config.sampler.multipliers), config, seed, frozen,
                   env_spec=view.spec)

    # ------------------------------------------------------------------ acting
    def _logits(self, obs: np.ndarray) -> torch.Tensor:
        return self.network(torch.as_tensor(obs, dtype=torch.float32))

    def action_probabilities(self, observation: np.ndarray) -> np.ndarray:
        """Per-modality action probabilities, shape ``(..., M, K)``."""
        obs = np.asarray(observation, dtype=np.float32)
        self.layout.decode(obs)  # validates the size
        with torch.no_grad():
            return torch.softmax(self._logits(obs), dim=-1).numpy()

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        obs = np.asarray(observation, dtype=np.float32)
        single = obs.ndim == 1
        batch = obs[None] if single else obs
        self.layout.decode(batch)  # validates the size
        if not self.frozen and batch.shape[0] != 1:
            raise ValueError(
                f"a learning ReinforceAgent acts on one observation at a time (it learns from "
                f"the reward of each); got a batch of {batch.shape[0]}. Call freeze() to act on "
                "many envs."
            )
        with torch.no_grad():
            logits = self._logits(batch)
            if self.frozen and deterministic:
                actions = logits.argmax(dim=-1)
            else:
                probs = torch.softmax(logits, dim=-1).reshape(-1, self.layout.n_actions)
                actions = torch.multinomial(probs, 1, generator=self.generator).reshape(
                    logits.shape[:-1])
        actions_np = actions.numpy().astype(np.int64)
        if not self.frozen:
            self._pending = (batch[0].copy(), actions_np[0].copy())
        return (actions_np[0] if single else actions_np), state

    # ------------------------------------------------------------------ learning
    def observe(self, reward: float, terminated: bool) -> None:
        """Record the reward of the last action; update every ``update_every`` steps and at
        the end of an episode. Does nothing when frozen."""
        if self.frozen:
            return
        if self._pending is not None:
            obs, action = self._pending
            self._buffer.append((obs, action, float(reward)))
            self._pending = None
            self.steps_seen += 1
        if len(self._buffer) >= self.config.update_every or (terminated and self._buffer):
            self.update()
        if terminated:
            self.n_episodes += 1

    def _advantages(self, rewards: np.ndarray) -> np.ndarray:
        cfg = self.config
        returns = np.zeros_like(rewards)
        running = 0.0
        for i in range(len(rewards) - 1, -1, -1):
            running = rewards[i] + cfg.gamma * running
            returns[i] = running
        if cfg.baseline == "ema":
            baseline = returns.mean() if self.baseline_value is None else self.baseline_value
            advantages = returns - baseline
            mean = float(returns.mean())
            self.baseline_value = (mean if self.baseline_value is None else
                                   cfg.baseline_decay * self.baseline_value
                                   + (1 - cfg.baseline_decay) * mean)
        elif cfg.baseline == "batch_mean":
            advantages = returns - returns.mean()
        else:
            advantages = returns
        if cfg.normalize_advantages and len(advantages) > 1:
            advantages = advantages / (advantages.std() + 1e-8)
        return advantages

    def update(self) -> dict[str, float]:
        """One REINFORCE step on the buffered steps (then the buffer is emptied)."""
        if not self._buffer:
            return {}
        obs = torch.as_tensor(np.stack([b[0] for b in self._buffer]), dtype=torch.float32)
        actions = torch.as_tensor(np.stack([b[1] for b in self._buffer]), dtype=torch.int64)
        rewards = np.array([b[2] for b in self._buffer], dtype=np.float64)
        rewards = rewards * self.config.reward_scale
        advantages = torch.as_tensor(self._advantages(rewards), dtype=torch.float32)
        self._buffer = []

        log_probs = torch.log_softmax(self._logits(obs), dim=-1)  # (N, M, K)
        chosen = log_probs.gather(-1, actions.unsqueeze(-1)).squeeze(-1).sum(-1)  # (N,)
        entropy = -(log_probs.exp() * log_probs).sum(-1).mean()
        loss = -(chosen * advantages).mean() - self.config.entropy_coef * entropy
        self.optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.network.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        self.n_updates += 1
        self.last_update = {
            "loss": float(loss.detach()),
            "entropy": float(entropy.detach()),
            "mean_advantage": float(advantages.mean()),
            "baseline": float(self.baseline_value if self.baseline_value is not None else 0.0),
            "n_samples": float(len(rewards)),
        }
        return self.last_update

    def freeze(self) -> ReinforceAgent:
        """Stop learning (replay mode); drops any unfinished window."""
        self.frozen = True
        self._pending, self._buffer = None, []
        return self

    # ------------------------------------------------------------------ artefacts
    def state_entries(self) -> dict[str, bytes]:
        """The artefact payload: weights, optimiser, generator and counters."""
        agent = {
            "config": self.config.to_dict(),
            "layout": {"n_modalities": self.layout.n_modalities,
                       "history_length": self.layout.history_length,
                       "discrepancy": self.layout.discrepancy,
                       "n_actions": self.layout.n_actions},
            "multipliers": list(self.multipliers),
            "seed": self.seed,
            "baseline_value": self.baseline_value,
            "n_updates": self.n_updates,
            "steps_seen": self.steps_seen,
            "n_episodes": self.n_episodes,
        }
        return {
            "agent.json": json.dumps(agent, indent=2).encode("utf-8"),
            "policy.pt": tensor_bytes(self.network.state_dict()),
            "optimizer.pt": tensor_bytes(self.optimizer.state_dict()),
            "generator.pt": tensor_bytes(self.generator.get_state()),
        }

    def save(self, path: str | Path, env_spec: Mapping[str, Any] | None = None,
             metadata: Mapping[str, Any] | None = None) -> Path:
        """Write one artefact file (``env_spec`` defaults to the one given at construction)."""
        spec = env_spec if env_spec is not None else self.env_spec
        if spec is None:
            raise ValueError("save() needs the env spec: pass env_spec=env.unwrapped.spec_dict()")
        return write_artifact(path, ARTIFACT_KIND, spec, self.state_entries(), metadata)

    @classmethod
    def load(cls, path: str | Path, env: Any | None = None, frozen: bool = True) -> ReinforceAgent:
        """Load an artefact (frozen for replay by default; ``frozen=False`` to keep learning).
        With ``env``, fail unless it matches the recorded env spec."""
        artifact = read_artifact(path, ARTIFACT_KIND, members=(
            "agent.json", "policy.pt", "optimizer.pt", "generator.pt"))
        if env is not None:
            check_compatible(artifact.env_spec, env_spec_of(env), path)
        where = str(artifact.path)
        entries = artifact.entries
        missing = [name for name in ("agent.json", "policy.pt", "optimizer.pt", "generator.pt")
                   if name not in entries]
        if missing:
            raise ArtifactError(f"policy file {where!r} has no member {missing[0]!r}")
        tensors = {name: tensors_from_bytes(entries[name], where, name)
                   for name in ("policy.pt", "optimizer.pt", "generator.pt")}
        try:
            agent = json.loads(entries["agent.json"].decode("utf-8"))
            layout = ObservationLayout(**agent["layout"])
            config = ReinforceConfig.from_dict(agent["config"])
        except MemoryError:
            raise
        except Exception as exc:
            raise ArtifactError(
                f"policy file {where!r} has a damaged REINFORCE payload in 'agent.json' "
                f"({type(exc).__name__}: {exc})"
            ) from exc
        # the declared sizes must be those of the file's tensors before the network is built
        weights = check_state_dict(tensors["policy.pt"], where, "policy.pt")
        check_state_shapes(PolicyNetwork.state_shapes(layout.size, layout.n_modalities,
                                                      layout.n_actions, config.hidden_sizes),
                           weights, where, "policy.pt")
        bad = nonfinite_tensor(tensors["optimizer.pt"])
        if bad is not None:
            raise ArtifactError(f"policy file {where!r}: member 'optimizer.pt' has NaN or inf "
                                f"values in {bad!r}; refused")
        try:
            obj = cls(layout, tuple(agent["multipliers"]), config, seed=agent["seed"],
                      frozen=frozen, env_spec=artifact.env_spec)
            obj.network.load_state_dict(weights)
            obj.optimizer.load_state_dict(tensors["optimizer.pt"])
            obj.generator.set_state(tensors["generator.pt"])
            obj.baseline_value = agent["baseline_value"]
            obj.n_updates = agent["n_updates"]
            obj.steps_seen = agent.get("steps_seen", agent.get("n_steps"))  # older files
            obj.n_episodes = agent["n_episodes"]
        except MemoryError:
            raise
        except Exception as exc:
            raise ArtifactError(
                f"policy file {where!r} has a damaged REINFORCE payload "
                f"({type(exc).__name__}: {exc})"
            ) from exc
        if layout.size != artifact.env_spec.get("observation_size"):
            raise ArtifactError(
                f"policy file {where!r}: its network takes {layout.size} observation values "
                f"but its recorded env spec says {artifact.env_spec.get('observation_size')}"
            )
        return obj
