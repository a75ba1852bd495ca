"""DUS-v1: the sampling decision for any number of modalities, over suites of tasks."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium.utils import seeding

from dus_env.config import EnvConfig, config_from_dict
from dus_env.decision import SlotDecisionState
from dus_env.env import DUSEnv, reset_options, resolve_config
from dus_env.errors import check_choice
from dus_env.slots import V1_MULTIPLIERS
from dus_env.suites import SPLITS, Suite, Task, get_suite

ENV_V1_ID = "dus_env/DUS-v1"
ENV_V1_VERSION = 1
DEFAULT_MAX_MODALITIES = 4


class DUSEnvV1(DUSEnv):
    """Decide, every few training iterations, how many samples each modality trains on: for
    any number of modalities, over a suite of tasks.

    ## Description
    The training engine, the decision step and the episode are DUS-v0's
    (:class:`dus_env.env.DUSEnv`): one episode is one multimodal training run from a freshly
    initialised model, one step applies one action for ``iters_per_step`` iterations. What
    changes is what a policy sees and does, so that one policy serves every task:

    * observations and actions come in *slots*, one per modality, up to ``max_modalities``
      (default 4); a task with fewer modalities leaves slots empty (``present = 0``);
    * ``permute_modalities=True`` (the default with a suite) shuffles which slot each modality
      takes at every reset (with the env's ``np_random``), so "which modality is weak" must be
      read from the scores, not remembered from the position;
    * with a ``suite`` (:mod:`dus_env.suites`), every reset draws a task of the chosen
      ``split`` with ``np_random`` (or takes ``reset(options={"task": NAME})``); a task with a
      pinned seed pool draws its episode seed from the pool.

    ## Action Space
    ``MultiDiscrete([K] * max_modalities)``: per slot an index into ``sampler.multipliers``
    (default :data:`dus_env.slots.V1_MULTIPLIERS`: 17 geometric steps from 0.5x to 2x, each
    9% apart); absent slots' indices are ignored. The request is renormalised to the budget
    and clipped as in DUS-v0.

    ## Observation Space
    A flat float32 ``Box`` of length ``2 + max_modalities * (2 H + 3)``
    (:class:`dus_env.slots.SlotLayout`; ``env.unwrapped.layout.decode(obs)`` splits it):

    =========================  ======  =============================================
    part                       length  meaning
    =========================  ======  =============================================
    ``progress``               1       iterations done / total_iterations
    ``modality_fraction``      1       modalities / max_modalities
    then per slot (``max_modalities`` rows of ``2 H + 3``):
    ``history_scores``         H       cumulative scores S, last H steps, oldest first
    ``history_discrepancy``    H       gap (or ratio) against the other modalities
    ``batch_score``            1       batch score s averaged over the last step
    ``previous_action``        1       last action index / (K - 1)
    ``present``                1       1 if a modality sits in the slot, else 0
    =========================  ======  =============================================

    ## Rewards
    As DUS-v0 (``reward.name``); ``paired`` is the one meant for learning across tasks: the
    validation-accuracy change minus that of a uniform-sampling reference run with the same
    task and seeds (:mod:`dus_env.reference`).

    ## Starting State, Episode End
    As DUS-v0, for the drawn task.

    ## Info
    DUS-v0's keys (per-modality entries by modality name), plus ``task`` (its name),
    ``slots`` (modality -> slot) and ``episode_seed`` (the pool seed, or None).

    ## Arguments
    ``gym.make("dus_env/DUS-v1", suite="synthetic-mix")`` (``split="train"`` or
    ``"heldout"``; ``config={...}`` overrides applied to every task, e.g.
    ``{"reward": {"name": "paired"}}``), or ``gym.make("dus_env/DUS-v1", preset="default")``
    for one task. ``max_modalities``, ``permute_modalities`` and ``multipliers`` as above.

    ## Version History
    * v1: per-slot observation and action, task suites, slot permutation.
    """

    def __init__(
        self,
        config: EnvConfig | Mapping[str, Any] | None = None,
        *,
        preset: str | None = None,
        suite: str | Suite | None = None,
        split: str = "train",
        max_modalities: int = DEFAULT_MAX_MODALITIES,
        permute_modalities: bool | None = None,
        multipliers: tuple[float, ...] | None = V1_MULTIPLIERS,
        render_mode: str | None = None,
    ) -> None:
        self._check_render_mode(render_mode)
        check_choice("split", split, SPLITS)
        if isinstance(max_modalities, bool) or not isinstance(max_modalities, (int, np.integer)) \
                or max_modalities < 2:
            raise ValueError(f"max_modalities={max_modalities!r} must be an integer >= 2")
        if permute_modalities is not None and not isinstance(permute_modalities,
                                                             (bool, np.bool_)):
            raise TypeError(f"permute_modalities={permute_modalities!r} must be True, False or "
                            "None (None: shuffle the slots when drawing from a suite)")
        self.max_modalities = int(max_modalities)
        self.split = split
        if multipliers is not None:
            if isinstance(multipliers, (str, bytes)) or not hasattr(multipliers, "__iter__"):
                raise TypeError(f"multipliers={multipliers!r} must be a sequence of numbers "
                                "(the action grid) or None (each task's own grid)")
            multipliers = tuple(multipliers)
        self.multipliers = multipliers
        """The action grid every task uses (None: each task's own)."""
        if suite is not None:
            if not isinstance(suite, (str, Suite)):
                raise TypeError(f"suite={suite!r:.80} has type {type(suite).__name__}; expected "
                                "a suite name (str) or a Suite")
            if preset is not None or isinstance(config, EnvConfig):
                raise ValueError("with suite=..., config may only be a dict of overrides "
                                 "applied to every task; preset=... is not used")
            if config is not None and not isinstance(config, Mapping):
                raise TypeError(f"config={config!r:.80} has type {type(config).__name__}; with "
                                "suite=... expected a dict of overrides applied to every task, "
                                "or None")
            self.suite = get_suite(suite) if isinstance(suite, str) else suite
            overrides = dict(config or {})
            self.tasks = tuple(self._task_with(t, overrides) for t in self.suite.tasks)
        else:
            if split != "train":
                raise ValueError(f"split={split!r} needs suite=...: an env of one task "
                                 "(preset=... or config=...) has no splits")
            self.suite = None
            cfg = resolve_config(config, preset)
            self.tasks = (self._task_with(Task(name=preset or "custom", config=cfg), {}),)
        self.permute_modalities = (self.suite is not None if permute_modalities is None
                                   else bool(permute_modalities))
        self._by_name = {t.name: t for t in self.tasks}
        pool = [t.name for t in (self.suite.split(split) if self.suite else self.tasks)]
        self._pool = tuple(self._by_name[name] for name in pool)
        self._check_tasks_share_the_layout()
        self.task: Task | None = None
        self._use_task(self._pool[0])
        self.observation_space = self.layout.observation_space()
        self.action_space = self.layout.action_space()
        self._trainer = None
        self._done = True
        self.step_seconds = 0.0
        self.episode_seed: int | None = None

    # ------------------------------------------------------------------ tasks
    def _task_with(self, task: Task, overrides: Mapping[str, Any]) -> Task:
        cfg = config_from_dict(overrides, base=task.config) if overrides else task.config
        if self.multipliers is not None:
            cfg = cfg.replace(sampler=dataclasses.replace(cfg.sampler,
                                                          multipliers=self.multipliers))
        if len(cfg.modalities) > self.max_modalities:
            raise ValueError(
                f"task {task.name!r} has {len(cfg.modalities)} modalities "
                f"{list(cfg.modalities)}, more than max_modalities={self.max_modalities}; "
                "raise max_modalities"
            )
        return dataclasses.replace(task, config=cfg)

    def _check_tasks_share_the_layout(self) -> None:
        first = self.tasks[0].config
        for task in self.tasks[1:]:
            cfg = task.config
            for what, a, b in (("monitor", first.monitor, cfg.monitor),
                               ("sampler.multipliers", first.sampler.multipliers,
                                cfg.sampler.multipliers)):
                if a != b:
                    raise ValueError(
                        f"task {task.name!r} does not fit the layout of task "
                        f"{self.tasks[0].name!r}: its {what} is {b!r}, not {a!r}; every task of "
                        "one env must share the monitor settings and the action grid"
                    )

    def _use_task(self, task: Task) -> None:
        if self.task is not None and task.name == self.task.name:
            return
        self._use_config(task.config)  # all or nothing: a task that fails to build is not used
        self.task = task

    def _make_decision(self) -> SlotDecisionState:
        return SlotDecisionState(self.modalities, self.config.sampler, self.config.monitor,
                                 self.dataset.n_classes, self.config.total_iterations,
                                 self.max_modalities)

    def _build_task(self, config: EnvConfig) -> None:
        super()._build_task(config)
        self.uniform_action = np.array(self._decision.uniform_slot_action, dtype=np.int64)

    # ------------------------------------------------------------------ API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """A new episode: draws (in this order, from ``np_random``) the task, the slot of each
        modality, and the episode seed from the task's pool. The training run's own seeds come
        from the episode seed as DUS-v0's ``reset(seed=episode_seed)`` derives them (so the same
        task, seed and per-modality actions give the same run in both envs); a task without a
        pool uses ``seed`` itself, or ``np_random`` when that is None. ``options``: ``task`` (a
        task name of the suite, any split) and ``episode_seed`` (an int, bypassing the pool)."""
        if isinstance(seed, np.integer):
            seed = int(seed)
        options = reset_options(options, ("episode_seed", "task"))
        if "episode_seed" in options:
            value = options["episode_seed"]
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"reset option episode_seed={value!r} is not valid; valid: "
                                 "an integer >= 0")
        if "task" in options:
            check_choice("task", options["task"], self._by_name)
        self._done = True  # a reset ends the episode, whether or not the next one starts
        super(DUSEnv, self).reset(seed=seed)  # gymnasium's: seeds np_random
        self._episode_rng_state = self.np_random.bit_generator.state
        rng = self.np_random
        if "task" in options:
            task = self._by_name[options["task"]]
        else:
            task = self._pool[int(rng.integers(len(self._pool)))]
        self._use_task(task)
        m = len(self.modalities)
        if self.permute_modalities:
            slots = tuple(int(s) for s in rng.permutation(self.max_modalities)[:m])
        else:
            slots = tuple(range(m))
        self._decision.set_slots(slots)
        if "episode_seed" in options:
            self.episode_seed = int(options["episode_seed"])
        elif task.seeds:
            self.episode_seed = int(task.seeds[int(rng.integers(len(task.seeds)))])
        else:  # as DUS-v0 would: the same seed gives the same run in both envs
            self.episode_seed = seed
        if self.episode_seed is None:
            seeds = self.episode_seeds(rng)
        else:
            seeds = self.episode_seeds(seeding.np_random(self.episode_seed)[0])
        return self._start_episode(*seeds)

    def _info(self, **kwargs: Any) -> dict[str, Any]:
        info = super()._info(**kwargs)
        info["task"] = self.task.name if self.task else None
        info["slots"] = dict(zip(self.modalities, self._decision.slots))
        info["episode_seed"] = self.episode_seed
        return info

    def spec_dict(self) -> dict[str, Any]:
        """What a policy trained on this env depends on (saved with policy artefacts): the
        layout, not the modalities, so one artefact fits any task with up to
        ``max_modalities`` modalities."""
        return {
            "env_id": ENV_V1_ID,
            "env_version": ENV_V1_VERSION,
            "layout": "v1",
            "max_modalities": self.max_modalities,
            "observation_size": self.layout.size,
            "history_length": self.layout.history_length,
            "discrepancy": self.layout.discrepancy,
            "multipliers": list(self.config.sampler.multipliers),
            **self._monitor_spec(),
        }

    def _render_text(self) -> str:
        return f"task {self.task.name if self.task else '?'}: {super()._render_text()}"
