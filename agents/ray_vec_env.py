"""A Stable-Baselines3 VecEnv whose environments live in Ray actors.

Each of the ``n`` envs is built inside its own Ray actor (one process; on a cluster, anywhere
the cluster has room), which may hold a GPU fraction. The driver sends every actor its action,
gathers the results with ``ray.get``, and follows SB3's VecEnv conventions: ``done = terminated
or truncated``, ``info["TimeLimit.truncated"]``, auto-reset with the last observation in
``info["terminal_observation"]``, seeds and options applied at the next reset.

**Worker loss.** An actor whose process dies (crash, OOM kill, lost node) is restarted by Ray
(``max_restarts``). Its episode ends cleanly at the step that was lost: ``done=True`` as a
terminal step (no bootstrapping), reward 0, ``info["worker_restarted"]=True`` with
``info["worker_error"]`` and the episode's last observation as ``terminal_observation``; the
restarted env is reset and training goes on. When an actor has used up its restarts the
driver raises :class:`RayWorkerLostError`; a run is then resumable from its checkpoints.
Python exceptions raised by the env itself are not faults of the worker and propagate, as in
``SubprocVecEnv``.

Needs Ray (``pip install 'dus-env[ray]'``) and an initialised Ray (:func:`dus_agents.ray_backend.
connect`); importing this module does not import Ray.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnv,
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
)

from dus_agents.ray_backend import require_ray
from dus_env.errors import RayWorkerLostError


class EnvWorker:
    """Body of one env actor: owns one env built by ``env_fn`` in the actor's process.

    ``crash_at_step`` is a test hook: the first incarnation of the actor kills its own process
    (SIGKILL) inside its ``crash_at_step``-th ``step`` call; a restarted incarnation does not.
    """

    def __init__(self, env_fn: Callable[[], gym.Env], crash_at_step: int | None = None) -> None:
        import ray

        self.env = env_fn()
        self.restarted = bool(ray.get_runtime_context().was_current_actor_reconstructed)
        self.crash_at_step = None if self.restarted else crash_at_step
        self.steps = 0

    def spaces(self) -> tuple[gym.Space, gym.Space]:
        return self.env.observation_space, self.env.action_space

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        return self.env.reset(seed=seed, options=options or {})

    def step(self, action: Any) -> tuple[Any, float, bool, dict, dict]:
        """One step with SB3's auto-reset: (obs, reward, done, info, reset_info)."""
        self.steps += 1
        if self.crash_at_step is not None and self.steps >= self.crash_at_step:
            os.kill(os.getpid(), signal.SIGKILL)
        obs, reward, terminated, truncated, info = self.env.step(action)
        done = bool(terminated or truncated)
        info["TimeLimit.truncated"] = bool(truncated and not terminated)
        reset_info: dict = {}
        if done:
            info["terminal_observation"] = obs
            obs, reset_info = self.env.reset()
        return obs, float(reward), done, info, reset_info

    def get_attr(self, name: str) -> Any:
        return self.env.get_wrapper_attr(name)

    def set_attr(self, name: str, value: Any) -> None:
        self.env.set_wrapper_attr(name, value)

    def call(self, name: str, args: tuple, kwargs: dict) -> Any:
        return self.env.get_wrapper_attr(name)(*args, **kwargs)

    def is_wrapped(self, wrapper_class: type) -> bool:
        from stable_baselines3.common.env_util import is_wrapped

        return is_wrapped(self.env, wrapper_class)

    def render(self) -> Any:
        return self.env.render()

    def info(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "restarted": self.restarted, "steps": self.steps}

    def close(self) -> None:
        self.env.close()


class RayVecEnv(VecEnv):
    """SB3 VecEnv over ``len(env_fns)`` envs, each in its own Ray actor.

    Args:
        env_fns: picklable (cloudpickle) factories, one per env, as for ``SubprocVecEnv``.
        num_cpus: logical CPUs each actor reserves.
        num_gpus: GPUs each actor reserves (a fraction shares one GPU among actors).
        max_restarts: restarts Ray grants each actor after its process dies (-1: no limit).
        crash_at_step: test hook, ``{env index: n}``: that env's first actor kills its own
            process inside its n-th step.
    """

    def __init__(self, env_fns: Sequence[Callable[[], gym.Env]], num_cpus: float = 1.0,
                 num_gpus: float = 0.0, max_restarts: int = 3,
                 crash_at_step: Mapping[int, int] | None = None) -> None:
        ray = require_ray()
        if not ray.is_initialized():
            raise RuntimeError("RayVecEnv needs an initialised Ray; call "
                               "dus_agents.ray_backend.connect() (or ray.init()) first")
        if not env_fns:
            raise ValueError("env_fns is empty; give at least one env factory")
        if max_restarts < -1:
            raise ValueError(f"max_restarts={max_restarts} is out of range; valid: -1 or >= 0")
        crash_at_step = dict(crash_at_step or {})
        for index in crash_at_step:
            if not 0 <= index < len(env_fns):
                raise ValueError(f"crash_at_step: env index {index} is out of range "
                                 f"[0, {len(env_fns) - 1}]")
        self._ray = ray
        self.max_restarts = max_restarts
        self.resources = {"num_cpus": num_cpus, "num_gpus": num_gpus}
        actor_cls = ray.remote(EnvWorker).options(
            num_cpus=num_cpus, num_gpus=num_gpus, max_restarts=max_restarts, max_task_retries=0)
        self.actors = [actor_cls.remote(fn, crash_at_step.get(i)) for i, fn in enumerate(env_fns)]
        self.restarts = [0] * len(env_fns)
        """Worker losses survived, per env."""
        self._pending: list[Any] | None = None
        self._base_seed: int | None = None
        self.closed = False
        observation_space, action_space = ray.get(self.actors[0].spaces.remote())
        self._last_obs: list[Any] = [None] * len(env_fns)
        super().__init__(len(env_fns), observation_space, action_space)

    # ------------------------------------------------------------------ stepping
    def reset(self) -> VecEnvObs:
        results = [self._call(i, "reset", seed=self._seeds[i], options=self._options[i])
                   for i in range(len(self.actors))]
        observations = [obs for obs, _ in results]
        self.reset_infos = [info for _, info in results]
        self._last_obs = list(observations)
        self._reset_seeds()
        self._reset_options()
        return np.stack(observations)

    def step_async(self, actions: np.ndarray) -> None:
        self._pending = [actor.step.remote(action) for actor, action in zip(self.actors, actions)]

    def step_wait(self) -> VecEnvStepReturn:
        ray = self._ray
        if self._pending is None:
            raise RuntimeError("step_wait() called without step_async()")
        pending, self._pending = self._pending, None
        observations, rewards, dones, infos = [], [], [], []
        for i, ref in enumerate(pending):
            try:
                obs, reward, done, info, reset_info = ray.get(ref)
            except ray.exceptions.RayActorError as exc:
                obs, reward, done, info, reset_info = self._recover(i, exc)
            if done:
                self.reset_infos[i] = reset_info
            self._last_obs[i] = obs
            observations.append(obs)
            rewards.append(reward)
            dones.append(done)
            infos.append(info)
        return (np.stack(observations), np.asarray(rewards, dtype=np.float32),
                np.asarray(dones, dtype=bool), infos)

    def _retries(self) -> int:
        return -1 if self.max_restarts == -1 else self.max_restarts + 1

    RESTART_WAIT_S = 300.0
    """How long a call waits for an actor that Ray is restarting before the env counts as lost
    (a loaded machine can take tens of seconds to bring one back)."""

    def _call(self, index: int, method: str, **kwargs: Any) -> Any:
        """``actor.method(**kwargs)`` of env ``index``, waiting out a restart: Ray answers
        "the actor is restarting" (``ActorUnavailableError``) while it brings a dead worker
        back, and the call is sent again until the actor answers or :data:`RESTART_WAIT_S`
        passes; an actor with no restarts left is :class:`RayWorkerLostError`."""
        ray = self._ray
        deadline, delay = time.monotonic() + self.RESTART_WAIT_S, 0.1
        while True:
            ref = getattr(self.actors[index], method).options(
                max_task_retries=self._retries()).remote(**kwargs)
            try:
                return ray.get(ref)
            except ray.exceptions.ActorDiedError as exc:
                raise RayWorkerLostError(
                    f"env {index}: its Ray actor died and has no restarts left "
                    f"(max_restarts={self.max_restarts}, {self.restarts[index]} used): "
                    f"{str(exc).splitlines()[0]}"
                ) from None
            except ray.exceptions.ActorUnavailableError as exc:
                if time.monotonic() > deadline:
                    raise RayWorkerLostError(
                        f"env {index}: its Ray actor did not come back within "
                        f"{self.RESTART_WAIT_S:.0f} s: {str(exc).splitlines()[0]}") from None
                time.sleep(delay)
                delay = min(2 * delay, 2.0)

    def _restart_seed(self, index: int) -> int | None:
        if self._base_seed is None:
            return None
        sequence = np.random.SeedSequence([self._base_seed, index, self.restarts[index]])
        return int(sequence.generate_state(1)[0])

    def _recover(self, index: int, exc: BaseException) -> tuple[Any, float, bool, dict, dict]:
        """The step of env ``index`` was lost with its worker: end its episode as a terminal
        step, and reset the restarted env (Ray retries the reset until the actor is back)."""
        self.restarts[index] += 1
        obs, reset_info = self._call(index, "reset", seed=self._restart_seed(index), options=None)
        info = {
            "worker_restarted": True,
            "worker_error": f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}",
            "terminal_observation": self._last_obs[index],
            "TimeLimit.truncated": False,
        }
        return obs, 0.0, True, info, reset_info

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        self._base_seed = seed
        return super().seed(seed)

    # ------------------------------------------------------------------ attributes, methods
    def _actors(self, indices: VecEnvIndices) -> list[Any]:
        return [self.actors[i] for i in self._get_indices(indices)]

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return self._ray.get([a.get_attr.remote(attr_name) for a in self._actors(indices)])

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        self._ray.get([a.set_attr.remote(attr_name, value) for a in self._actors(indices)])

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None,
                   **method_kwargs) -> list[Any]:
        return self._ray.get([a.call.remote(method_name, method_args, method_kwargs)
                              for a in self._actors(indices)])

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper],
                       indices: VecEnvIndices = None) -> list[bool]:
        return self._ray.get([a.is_wrapped.remote(wrapper_class) for a in self._actors(indices)])

    def get_images(self) -> Sequence[np.ndarray | None]:
        if self.render_mode != "rgb_array":
            return [None] * self.num_envs
        return self._ray.get([a.render.remote() for a in self.actors])

    def worker_info(self, indices: Iterable[int] | None = None) -> list[dict[str, Any]]:
        """Per actor: its process id, whether it is a restarted incarnation, steps it took."""
        chosen = list(range(self.num_envs)) if indices is None else list(indices)
        return self._ray.get([self.actors[i].info.remote() for i in chosen])

    def close(self) -> None:
        if self.closed:
            return
        ray = self._ray
        if self._pending is not None:
            ray.wait(self._pending, num_returns=len(self._pending), timeout=30)
            self._pending = None
        if ray.is_initialized():
            for actor in self.actors:
                try:
                    ray.get(actor.close.remote(), timeout=30)
                except (ray.exceptions.RayError, TimeoutError):
                    pass  # a dead or hung actor has nothing left to flush
                ray.kill(actor, no_restart=True)
        self.closed = True
