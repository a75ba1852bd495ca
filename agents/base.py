"""The one policy interface, shared with stable-baselines3.

Every sampling policy implements ``predict(observation, state=None, episode_start=None,
deterministic=False) -> (action, state)``, SB3's ``PolicyPredictor`` protocol, so the same
object runs through SB3's ``evaluate_policy``, through ``evaluate.py`` and through the
plain-loop replay (:mod:`dus_env.replay`). Policies read only the observation (decoded by name
with :class:`dus_env.spaces.ObservationLayout`), never the env's internals.

Online learners (REINFORCE) also implement :meth:`OnlinePolicy.observe`, which rollout code
calls after every step with the reward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from dus_env.sampler import nearest_grid_indices, uniform_index
from dus_env.slots import SlotLayout
from dus_env.spaces import ObservationLayout


@dataclass(frozen=True)
class EnvView:
    """What a policy needs to know of a DUS env, read from a plain, wrapped or vectorised one."""

    layout: Any
    """The observation layout (:class:`ObservationLayout` or :class:`SlotLayout`)."""
    config: Any
    """The env config (:class:`dus_env.config.EnvConfig`) of the first env."""
    spec: dict[str, Any]
    """``spec_dict()`` of the first env."""


def unwrap_dus(env: Any) -> EnvView:
    """The layout, config and spec of a DUS env: a ``DUSEnv``, any Gymnasium wrapper of one, an
    SB3 ``VecEnv`` (Dummy, Subproc, Ray) or a Gymnasium vector env of them (the first env)."""
    if hasattr(env, "env_method") and hasattr(env, "get_attr"):  # an SB3 VecEnv
        return EnvView(env.get_attr("layout", indices=[0])[0],
                       env.get_attr("config", indices=[0])[0],
                       env.env_method("spec_dict", indices=[0])[0])
    if hasattr(env, "num_envs") and hasattr(env, "get_attr") and not hasattr(env, "layout"):
        # a Gymnasium vector env: get_attr(name) gives one value per env
        return EnvView(env.get_attr("layout")[0], env.get_attr("config")[0],
                       env.call("spec_dict")[0])
    base = env.unwrapped
    if not hasattr(base, "layout") or not hasattr(base, "spec_dict"):
        raise TypeError(f"{type(env).__name__} is not a DUS env (dus_env/DUS-v0 or DUS-v1), a "
                        "wrapper of one, or a vector env of them")
    return EnvView(base.layout, base.config, base.spec_dict())


def make_dus_env(env_id: str, **kwargs: Any) -> Any:
    """``gymnasium.make(env_id, **kwargs)`` without Gymnasium's note that DUS-v0 has a newer
    version (DUS-v1 is another env, not a replacement: DUS-v0 stays supported)."""
    import warnings

    import gymnasium as gym

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*dus_env/DUS-v0 is out of date.*")
        return gym.make(env_id, **kwargs)


@runtime_checkable
class Policy(Protocol):
    def predict(
        self,
        observation: np.ndarray,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]: ...


@runtime_checkable
class OnlinePolicy(Policy, Protocol):
    def observe(self, reward: float, terminated: bool) -> None:
        """Called after each env step with its reward (learning happens here)."""
        ...


class GridPolicy:
    """Base for hand-written policies over an observation layout and action grid: DUS-v0's
    (:class:`~dus_env.spaces.ObservationLayout`, one action per modality) or DUS-v1's
    (:class:`~dus_env.slots.SlotLayout`, one action per slot).

    Accepts a single observation ``(size,)`` or a batch ``(n_envs, size)`` and returns actions of
    the matching shape, as SB3 does.
    """

    def __init__(self, layout: ObservationLayout | SlotLayout,
                 multipliers: tuple[float, ...]) -> None:
        if len(multipliers) != layout.n_actions:
            raise ValueError(
                f"multipliers has {len(multipliers)} values but the layout's action grid has "
                f"{layout.n_actions}"
            )
        self.layout = layout
        self.multipliers = np.asarray(multipliers, dtype=float)
        self.action_width = int(layout.action_space().shape[0])
        """Entries of one action: modalities (DUS-v0) or slots (DUS-v1)."""
        self.full_resolution = getattr(layout, "action_mode", "grid") == "multipliers"
        """The env takes requested multipliers, not grid indices."""

    @classmethod
    def for_env(cls, env: Any, **kwargs: Any) -> GridPolicy:
        """Build for an env: plain, wrapped, or a vector env of them (:func:`unwrap_dus`)."""
        view = unwrap_dus(env)
        return cls(view.layout, tuple(view.config.sampler.multipliers), **kwargs)

    @property
    def uniform_index(self) -> int:
        """The grid index of uniform sampling (the env's rule)."""
        return uniform_index(self.multipliers)

    def nearest_indices(self, ratios: np.ndarray) -> np.ndarray:
        """Grid index closest (in log scale) to each requested multiplier."""
        return nearest_grid_indices(ratios, self.multipliers)

    def present(self, obs: np.ndarray) -> np.ndarray:
        """Which action entries belong to a modality, shape ``(n, action_width)``."""
        if isinstance(self.layout, SlotLayout):
            return self.layout.present(obs)
        return np.ones((obs.shape[0], self.action_width), dtype=bool)

    def progress(self, obs: np.ndarray) -> np.ndarray:
        """Training progress of each observation, shape ``(n,)``."""
        return np.asarray(self.layout.decode(obs)["progress"]).reshape(obs.shape[0])

    def _act(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        raise NotImplementedError

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        obs = np.asarray(observation, dtype=np.float32)
        single = obs.ndim == 1
        batch = obs[None] if single else obs
        self.layout.decode(batch)  # validates the size
        actions = self._act(batch, deterministic)
        return (actions[0] if single else actions), state
