"""DUS-v0: multimodal training as a Gymnasium environment."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.error import ResetNeeded

from dus_env import ENV_VERSION
from dus_env.config import EnvConfig, config_from_dict, config_to_dict, get_preset
from dus_env.data import data_fingerprint, make_dataset
from dus_env.decision import DecisionState
from dus_env.reference import ReferenceCache, reference_curve, reference_key
from dus_env.rewards import RewardStep, get_reward
from dus_env.sampler import (
    HEURISTIC_DEFAULTS,
    ModalitySampler,
    inverse_score_multipliers,
    nearest_grid_indices,
)
from dus_env.seeding import spawn_seeds
from dus_env.trainer import EvalStats, MMLTrainer

BIT_GENERATORS: tuple[str, ...] = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")
"""numpy bit generators :meth:`DUSEnv.redo_episode` rebuilds (Gymnasium seeds with PCG64)."""


def reset_options(options: Any, valid: tuple[str, ...]) -> dict[str, Any]:
    """``reset(options=...)`` as a dict, checked: None or a mapping whose keys are in
    ``valid`` (DUS-v0 takes none; DUS-v1 takes ``task`` and ``episode_seed``)."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise TypeError(f"reset options={options!r:.80} has type {type(options).__name__}; "
                        "expected a dict or None")
    unknown = sorted(str(k) for k in options if k not in valid)
    if unknown:
        takes = f"valid: {sorted(valid)}" if valid else "this env takes none"
        raise ValueError(f"reset options {unknown} are not valid; {takes}")
    return dict(options)


def resolve_config(
    config: EnvConfig | Mapping[str, Any] | None = None, preset: str | None = None
) -> EnvConfig:
    """The config an env built with these arguments uses.

    ``config`` may be an :class:`EnvConfig` (then ``preset`` must be None), a dict of overrides
    applied over ``preset`` (default ``"default"``), or None (the preset itself).
    """
    if isinstance(config, EnvConfig):
        if preset is not None:
            raise ValueError("pass either config=EnvConfig(...) or preset=..., not both")
        return config
    base = get_preset(preset if preset is not None else "default")
    if config is None:
        return base
    if isinstance(config, Mapping):
        return config_from_dict(config, base=base)
    raise TypeError(f"config must be an EnvConfig, a dict or None, got {type(config).__name__}")


def check_device_available(device: str, field: str = "device") -> None:
    """Raise ``ValueError`` naming ``field`` and ``device`` unless torch can train there: a
    device this machine has, and not ``meta`` (tensors there hold no data)."""
    import torch

    if device.partition(":")[0] == "meta":
        raise ValueError(f"{field}={device!r} holds no data; training needs a device it can "
                         "train on, e.g. 'cpu' or 'cuda'")
    try:
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{field}={device!r} is not available here ({first}); valid: 'cpu'"
                         + (", 'cuda'" if torch.cuda.is_available() else "")) from None


class DUSEnv(gym.Env[np.ndarray, np.ndarray]):
    """Decide, every few training iterations, how many samples each modality trains on.

    ## Description
    One episode is one multimodal training run from a freshly initialised model, over a fixed
    budget of ``total_iterations`` iterations. Each env step applies one action for
    ``iters_per_step`` iterations: the action sets each modality's batch size, the sampler draws
    a paired window, the trainer (host method: joint, MLA, OGM-GE, unimodal) takes a step, and
    the monitor folds each modality's batch score s^j (mean softmax probability of the true
    class on that modality's own batch) into cumulative scores S^j and their discrepancy.

    ## Action Space
    ``MultiDiscrete([K] * M)``: for each modality (in ``config.modalities`` order) an index into
    ``sampler.multipliers``; modality j asks for ``multipliers[a_j] * base_batch_size`` samples.
    With ``sampler.budget='renormalize'`` (default) the request is rescaled to a total of
    ``M * base_batch_size`` (the action sets proportions), then clipped to
    ``[min_batch_size, max_batch_size]`` and rounded.

    ## Observation Space
    A flat float32 ``Box`` of length ``2*H*M + 2*M + 1`` (see :mod:`dus_env.spaces`):

    =====================  =======  ==================================================
    part                   length   meaning
    =====================  =======  ==================================================
    history_scores         H*M      cumulative scores of the last H steps, oldest first
    history_discrepancy    H*M      gap (or ratio) of the last H steps, oldest first
    batch_scores           M        batch scores averaged over the last step
    progress               1        iterations done / total_iterations
    previous_action        M        last action index / (K - 1)
    =====================  =======  ==================================================

    ``env.unwrapped.layout`` (an :class:`ObservationLayout`) decodes it by name.

    ## Rewards
    Selected by ``reward.name`` (:mod:`dus_env.rewards`); default ``val_delta``: the change in
    validation accuracy (in points, ``scale=100``) on a fixed validation subset since the last
    step, so the return telescopes to the final minus the initial validation accuracy. The
    test split is never read.

    ## Starting State
    A freshly initialised model (seeded from ``reset(seed=...)``), a new epoch permutation,
    cumulative scores at chance level 1/C, previous action = uniform.

    ## Episode End
    ``terminated`` after ``total_iterations`` iterations, or at once when training diverges
    (a non-finite training loss, non-finite validation outputs, or non-finite weights at the
    end of the episode), with ``-reward.divergence_penalty`` and
    ``info["diverged"] = True``. ``truncated`` is only ever set by wrappers.

    ## Info
    ``batch_sizes``, ``batch_scores``, ``cumulative_scores``, ``gap``, ``ratio`` (dicts by
    modality), ``losses`` (step means), ``validation`` (metrics on the fixed validation subset
    when the reward read them: accuracies each step, plus macro-F1 and MAP at the last step;
    None on divergence), ``samples_consumed`` (per modality), ``paired_consumed``, ``iteration``,
    ``progress``, ``epoch``, ``reward_terms`` and ``diverged``: the same for the same seed and
    actions, bit for bit. The step's wall-clock seconds are in ``env.unwrapped.step_seconds``
    (and in ``info["wall_time"]`` with ``info_wall_time=True``).

    ## Arguments
    ``gym.make("dus_env/DUS-v0", preset="tiny")``, ``DUSEnv(config=EnvConfig(...))`` or
    ``DUSEnv(config={"trainer": {"host": "mla"}}, preset="default")`` (dict overrides over a
    preset). ``render_mode``: ``ansi`` returns a one-line text summary, ``rgb_array`` a
    picture of the state (:mod:`dus_env.render`: per-modality batch size, cumulative score and
    gap, and progress), ``human`` writes the summary line to the terminal (no display needed).

    ## Version History
    * v0: initial version.
    """

    metadata = {"render_modes": ["ansi", "rgb_array", "human"], "render_fps": 4}

    def __init__(
        self,
        config: EnvConfig | Mapping[str, Any] | None = None,
        *,
        preset: str | None = None,
        render_mode: str | None = None,
    ) -> None:
        self._check_render_mode(render_mode)
        self._use_config(resolve_config(config, preset))
        self.observation_space = self.layout.observation_space()
        self.action_space = self.layout.action_space()
        self._trainer: MMLTrainer | None = None
        self._done = True
        self.step_seconds = 0.0
        """Wall-clock seconds of the last step (training, validation and bookkeeping)."""

    def _check_render_mode(self, render_mode: str | None) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode={render_mode!r} is not valid; valid choices: "
                f"{self.metadata['render_modes'] + [None]}"
            )
        self.render_mode = render_mode

    def _use_config(self, config: EnvConfig) -> None:
        """Build everything that depends on the task: data, decision state, reward. All or
        nothing: when a part fails (missing data, a batch size the data cannot fit), the env
        keeps the task it had and the error propagates."""
        before = dict(self.__dict__)
        try:
            self._build_task(config)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise

    def _build_task(self, config: EnvConfig) -> None:
        self.config = config
        self.modalities = self.config.modalities
        self.dataset = make_dataset(self.config.data)
        if tuple(self.dataset.modalities) != self.modalities:
            raise ValueError(
                f"dataset modalities {self.dataset.modalities} differ from the config's "
                f"{self.modalities}"
            )
        self.config.sampler.check_fits(len(self.dataset.split("train")))
        check_device_available(self.config.device)
        self._decision = self._make_decision()
        self.layout = self._decision.layout
        self.uniform_action = np.array(
            self._decision.uniform_action,
            dtype=np.float32 if self.config.sampler.action == "multipliers" else np.int64)
        self._reward = get_reward(self.config.reward)
        self._val_split = self.dataset.split("val")
        self._val_indices = self._fixed_val_subset()
        self._reference_cache = (ReferenceCache(self.config.reward.reference_cache)
                                 if self.config.reward.reference_cache else None)
        self._reference_env: DUSEnv | None = None
        self._reference: tuple[float, ...] | None = None

    def _make_decision(self) -> DecisionState:
        return DecisionState(self.modalities, self.config.sampler, self.config.monitor,
                             self.dataset.n_classes, self.config.total_iterations)

    # ------------------------------------------------------------------ API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if isinstance(seed, np.integer):  # numpy integers are seeds too
            seed = int(seed)
        reset_options(options, ())
        super().reset(seed=seed)
        self._episode_rng_state = self.np_random.bit_generator.state
        return self._start_episode(*self.episode_seeds(self.np_random))

    def episode_rng_state(self) -> dict[str, Any] | None:
        """``np_random``'s state (JSON-ready) when the current episode began drawing (after any
        reseeding by ``reset(seed=...)``); None before the first reset. With
        :meth:`redo_episode` a resumed training run restarts exactly this episode."""
        return getattr(self, "_episode_rng_state", None)

    def redo_episode(self, state: Mapping[str, Any]) -> None:
        """Put ``np_random`` back to ``state`` (from :meth:`episode_rng_state`): the next
        ``reset()`` without a seed draws that episode again, and the ones after it follow as
        they did the first time."""
        name = state.get("bit_generator") if isinstance(state, Mapping) else None
        if name not in BIT_GENERATORS:
            raise ValueError(f"state={state!r:.80} is not a numpy bit-generator state of "
                             f"{list(BIT_GENERATORS)}")
        generator = np.random.Generator(getattr(np.random, name)())
        try:
            generator.bit_generator.state = dict(state)
        except (TypeError, ValueError, KeyError, OverflowError) as exc:
            raise ValueError(f"state is not a valid {name} state ({exc})") from None
        self.np_random = generator

    def _start_episode(self, model_seed: int, sampler_seed: int
                       ) -> tuple[np.ndarray, dict[str, Any]]:
        """A fresh training run from these seeds (what ``reset`` does after drawing them)."""
        cfg = self.config
        self._done = True  # until the new episode is fully set up
        self._trainer = MMLTrainer.build(
            cfg.trainer, cfg.model, self.dataset, cfg.sampler.base_batch_size, model_seed,
            cfg.device,
        )
        self._sampler = ModalitySampler(
            cfg.sampler, self.modalities, self.dataset.split("train"),
            np.random.default_rng(sampler_seed), fusion=self._trainer.host.use_fusion,
        )
        self._decision.reset()
        self._last_sizes: tuple[int, ...] | None = None
        self._val_acc: float | None = None
        self._val_best: float | None = None
        self._reference = None
        if self._reward.needs_reference:
            self._reference = self._reference_curve(model_seed, sampler_seed)
        validation = None
        if self._reward.reads_validation(last_step=False):
            validation = self._validate()
            self._val_acc = self._val_best = validation.accuracy
        self._done = False
        obs, info = self._decision.observation(), self._info(validation=validation)
        if self.render_mode == "human":  # gymnasium: human mode renders on its own
            self.render()
        return obs, info

    def step(
        self, action: Any
    ) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self._require_running()
        start = time.perf_counter()
        action = self._decision.check_action(action)
        sizes = self._last_sizes = self._decision.batch_sizes(action)
        diverged, losses = self._train(sizes)
        previous, current = self._decision.end_step(action)
        last = self._decision.steps == self.config.steps_per_episode
        validation, diverged = self._check_step(last, diverged)
        terms = self._reward_terms(previous, current, validation, last, diverged)
        self._done = last or diverged
        self.step_seconds = time.perf_counter() - start
        info = self._info(sizes=sizes, losses=losses, validation=validation, terms=terms,
                          diverged=diverged, wall_time=self.step_seconds)
        if self.render_mode == "human":
            self.render()
        return self._decision.observation(), float(sum(terms.values())), self._done, False, info

    # ------------------------------------------------------------------ one step
    def _require_running(self) -> None:
        if self._trainer is None or self._done:
            raise ResetNeeded(
                "call reset() before step()" if self._trainer is None
                else "the episode has ended; call reset() before step()"
            )

    def _train(self, sizes: tuple[int, ...]) -> tuple[bool, dict[str, float]]:
        """Train one env step; returns (diverged, mean loss terms). Each iteration's batch
        scores go to the decision state; an iteration whose loss is not finite ends the step."""
        trainer, sampler, decision, names = self._trainer, self._sampler, self._decision, \
            self.modalities
        assert trainer is not None
        loss_sums: dict[str, float] = {}
        iterations = 0
        for _ in range(self.config.iters_per_step):
            step = trainer.train_step(sampler.next_batch(sizes))
            iterations += 1
            for key, value in step.losses.items():
                loss_sums[key] = loss_sums.get(key, 0.0) + value
            decision.add_iteration([step.batch_scores[m] for m in names], valid=not step.diverged)
            if step.diverged:
                return True, {key: value / iterations for key, value in loss_sums.items()}
        return False, {key: value / iterations for key, value in loss_sums.items()}

    def _check_step(self, last: bool, diverged: bool) -> tuple[EvalStats | None, bool]:
        """The validation the reward reads at this step, and whether training diverged.

        Every iteration's loss is checked as it trains, so weights that went non-finite show
        up as a non-finite loss one iteration later. Where weights are read before that, they
        are checked: a validation's outputs must be finite (every weight takes part in them),
        and the weights themselves at the end of the episode."""
        if diverged:
            return None, True
        validation = None
        if self._reward.reads_validation(last):
            validation = self._validate(full=last)
            if not validation.finite:
                return None, True
        if last and not self.trainer.parameters_finite():
            return None, True
        return validation, False

    def _reward_terms(self, previous, current, validation: EvalStats | None, last: bool,
                      diverged: bool) -> dict[str, float]:
        val = validation.accuracy if validation is not None else None
        terms = self._reward.terms(self.config.reward, RewardStep(
            previous=previous, current=current, previous_val=self._val_acc, val=val,
            last_step=last, diverged=diverged, step=self._decision.steps,
            reference=self._reference, previous_best=self._val_best,
        ))
        if val is not None:
            self._val_acc = val
            self._val_best = val if self._val_best is None else max(self._val_best, val)
        return terms

    def _info(self, *, sizes: tuple[int, ...] = (), losses: dict[str, float] | None = None,
              validation: EvalStats | None = None, terms: dict[str, float] | None = None,
              diverged: bool = False, wall_time: float = 0.0) -> dict[str, Any]:
        names, decision = self.modalities, self._decision
        state = decision.state
        info = {
            "batch_sizes": {m: int(n) for m, n in zip(names, sizes)},
            "batch_scores": {m: float(v) for m, v in zip(names, decision.step_scores)},
            "cumulative_scores": dict(zip(names, state.cumulative_values)),
            "gap": dict(zip(names, state.gap_values)),
            "ratio": dict(zip(names, state.ratio_values)),
            "losses": dict(losses or {}),
            "validation": validation.as_dict() if validation is not None else None,
            "samples_consumed": dict(self._sampler.samples_consumed),
            "paired_consumed": int(self._sampler.paired_consumed),
            "iteration": int(self._trainer.iteration) if self._trainer else 0,
            "progress": decision.progress,
            "epoch": float(self._sampler.epoch),
            "reward_terms": dict(terms or {}),
            "diverged": bool(diverged),
        }
        if self._reference is not None:
            info["reference_val_accuracy"] = self._reference[min(decision.steps,
                                                                 len(self._reference) - 1)]
        if self.config.info_wall_time:
            info["wall_time"] = float(wall_time)
        return info

    # ------------------------------------------------------------------ paired reward
    def _reference_curve(self, model_seed: int, sampler_seed: int) -> tuple[float, ...]:
        """The uniform run's validation accuracy at reset and after each step, for these
        episode seeds (from memory, the disk cache, or a run of its own)."""
        fixed = getattr(type(self.config.data), "cacheable", False)  # config fixes the data
        key = reference_key(self.config, model_seed, sampler_seed,
                            None if fixed else data_fingerprint(self.dataset))
        curve, self.reference_source = reference_curve(
            key, lambda: self._run_reference(model_seed, sampler_seed), self._reference_cache,
            self.config.steps_per_episode + 1)
        return tuple(curve)

    def _run_reference(self, model_seed: int, sampler_seed: int) -> list[float]:
        """Train the reference run: this task, the same seeds, uniform sampling (or DUS-H,
        ``reward.reference_policy``). After a divergence the curve stays at its last finite
        value (the reference learns no more)."""
        if self._reference_env is None:
            reward = dataclasses.replace(self.config.reward, name="val_delta",
                                         reference_cache=None, reference_policy="uniform")
            self._reference_env = DUSEnv(config=self.config.replace(reward=reward))
        ref = self._reference_env
        _, info = ref._start_episode(model_seed, sampler_seed)
        curve = [info["validation"]["accuracy"]]
        done = False
        heuristic = self.config.reward.reference_policy == "heuristic"
        while not done:
            _, _, done, _, info = ref.step(ref.heuristic_action() if heuristic
                                           else ref.uniform_action)
            curve.append(info["validation"]["accuracy"] if info["validation"] else curve[-1])
        curve += [curve[-1]] * (self.config.steps_per_episode + 1 - len(curve))
        return curve

    def heuristic_action(self) -> np.ndarray:
        """DUS-H's action (its defaults, :data:`dus_env.sampler.HEURISTIC_DEFAULTS`) for the
        state as of the last step, as ``dus_agents.heuristic.HeuristicPolicy`` chooses it from
        this env's observation: uniform during the warm-up, else the inverse-score request
        snapped to the grid (or, with ``sampler.action="multipliers"``, the request itself)."""
        rule = HEURISTIC_DEFAULTS
        # read from the observation itself, so the choice is the policy's own to the last bit
        obs = self._decision.observation()[None]
        scores = self.layout.cumulative_scores(obs)[0]
        progress = float(np.asarray(self.layout.decode(obs)["progress"]).reshape(-1)[0])
        present = self.layout.present(obs)[0] if hasattr(self.layout, "present") else None
        requested = inverse_score_multipliers(
            scores, present, gamma=rule["gamma"], min_multiplier=rule["min_multiplier"],
            max_multiplier=rule["max_multiplier"])
        if self.config.sampler.action == "multipliers":
            return (np.ones_like(requested) if progress < rule["warmup"]
                    else requested).astype(np.float32)
        if progress < rule["warmup"]:
            return self.uniform_action.copy()  # one entry per action entry (DUS-v1: per slot)
        return nearest_grid_indices(requested, self.config.sampler.multipliers)

    # ------------------------------------------------------------------ helpers
    def _fixed_val_subset(self) -> np.ndarray | None:
        size = self.config.reward.val_subset_size
        n = len(self._val_split)
        if size == 0 or size >= n:
            return None
        return np.sort(np.random.default_rng(0).permutation(n)[:size])

    def _validate(self, full: bool = False) -> EvalStats:
        return self.trainer.evaluate(self._val_split, self._val_indices, full=full)

    @staticmethod
    def episode_seeds(np_random: np.random.Generator) -> tuple[int, int]:
        """(model_seed, sampler_seed) of an episode, drawn from the env's ``np_random`` right
        after ``reset(seed=...)``; a plain training loop can rebuild the same run from them."""
        model_seed, sampler_seed = spawn_seeds(np_random, 2)
        return model_seed, sampler_seed

    def spec_dict(self) -> dict[str, Any]:
        """What a policy trained on this env depends on (saved with policy artefacts)."""
        return {
            "env_id": "dus_env/DUS-v0",
            "env_version": ENV_VERSION,
            "modalities": list(self.modalities),
            "n_modalities": len(self.modalities),
            "observation_size": self.layout.size,
            "history_length": self.layout.history_length,
            "discrepancy": self.layout.discrepancy,
            "multipliers": list(self.config.sampler.multipliers),
            "base_batch_size": self.config.sampler.base_batch_size,
            **self._monitor_spec(),
        }

    def _monitor_spec(self) -> dict[str, Any]:
        """The score averaging, where it is not the paper's running mean (an EMA changes every
        observation; specs of running-mean envs keep the keys they always had)."""
        monitor = self.config.monitor
        return {"monitor_ema_beta": monitor.ema_beta} if monitor.average == "ema" else {}

    @property
    def trainer(self) -> MMLTrainer:
        """The current episode's trainer (for final evaluation by scripts)."""
        if self._trainer is None:
            raise ResetNeeded("call reset() before using the trainer")
        return self._trainer

    @property
    def monitor_state(self):
        """The monitor as of the last step (cumulative scores, discrepancy, history)."""
        return self._decision.state

    def render(self) -> str | np.ndarray | None:
        """The state as ``render_mode`` asks: text (``ansi``), a frame (``rgb_array``), or the
        text written to the terminal (``human``); None before the first reset."""
        if self.render_mode is None or self._trainer is None:
            return None
        state = self._decision.state
        if self.render_mode == "rgb_array":
            from dus_env.render import draw_frame

            sizes = self._last_sizes or tuple(self.config.sampler.base_batch_size
                                              for _ in self.modalities)
            top = self.config.sampler.max_batch_size
            return draw_frame([n / top for n in sizes], state.cumulative_values,
                              state.gap_values, self._decision.progress)
        text = self._render_text()
        if self.render_mode == "human":
            import sys

            sys.stdout.write(text + "\n")  # the user asked for the terminal as the display
            sys.stdout.flush()
            return None
        return text

    def _render_text(self) -> str:
        """The one-line summary of ``ansi`` and ``human``."""
        state = self._decision.state
        s = ", ".join(f"{m}={v:.3f}" for m, v in zip(self.modalities, state.cumulative_values))
        return (f"step {self._decision.steps}/{self.config.steps_per_episode} iteration "
                f"{self._trainer.iteration}: S {s}")

    def close(self) -> None:
        self._trainer = None
        self._done = True

    def config_dict(self) -> dict[str, Any]:
        return config_to_dict(self.config)
