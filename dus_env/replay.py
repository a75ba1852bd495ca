"""Replay a sampling policy inside an ordinary PyTorch training loop (no Gymnasium, no env).

:class:`SamplingController` is DUS-v0 turned inside out: the user's loop trains, and after each
iteration hands the controller every modality's (detached) logits and labels. The controller
computes the batch scores s^j and hands them to the same
:class:`~dus_env.decision.DecisionState` the env steps with (monitor, previous action,
observation, action -> batch sizes), and every ``iters_per_step`` iterations asks the policy for
the next per-modality batch sizes. With the same seeds, policy and training steps, its
decisions equal the env's, decision for decision.

:class:`DUSBatchSampler` is a ``torch.utils.data`` batch sampler on top of it: each iteration it
yields a window of indices of one shared permutation (the env's sampler semantics, computed by
:class:`~dus_env.sampler.ModalitySampler` itself), and modality ``j`` trains on the first
``batch_sizes[j]`` rows of the window::

    controller = SamplingController.from_config(config, policy)
    batches = DUSBatchSampler(controller, len(train_set), np.random.default_rng(seed))
    for window in DataLoader(train_set, batch_sampler=batches):   # num_workers=0
        sizes, fusion = batches.batch_sizes, batches.fusion_size
        ...  # modality m's loss on window rows [:sizes[m]], the fusion loss on [:fusion]
        controller.observe({m: (logits[m].detach(), labels[: sizes[m]]) for m in modalities})

Policies are any object with SB3's ``predict(observation, state, episode_start,
deterministic)``; this module never imports stable-baselines3. Online learners are only asked
to act here (there is no reward in a plain loop), so they do not learn.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Sampler

from dus_env.config import EnvConfig, MonitorConfig, SamplerConfig
from dus_env.decision import DecisionState, SlotDecisionState
from dus_env.errors import check_integer
from dus_env.models.classifier import true_class_probability
from dus_env.monitor import MonitorState
from dus_env.sampler import ModalitySampler


@dataclass(frozen=True)
class Decision:
    """One policy decision of a :class:`SamplingController`."""

    iteration: int
    """Training iterations done when the decision was made (0, k, 2k, ...)."""
    observation: np.ndarray
    """The observation the policy saw."""
    action: tuple[int, ...]
    """Grid index per modality."""
    batch_sizes: dict[str, int]
    """Per-modality batch sizes the action maps to."""


batch_score = true_class_probability
"""s^j of one modality's batch: mean softmax probability of the true class (the trainer's)."""


class SamplingController:
    """Sets per-modality batch sizes of a plain training loop from a policy.

    Args:
        policy: any object with ``predict(obs, state, episode_start, deterministic)`` returning
            ``(action, state)``; the action is one index into ``sampler.multipliers`` per
            modality (a trained PPO model, :class:`dus_agents.HeuristicPolicy`, ...).
        modalities: modality names; the order of observations, actions and batch sizes.
        sampler: the action grid and batch-size bounds (``multipliers``, ``base_batch_size``,
            ``min_batch_size``, ``max_batch_size``, ``budget``).
        monitor: score averaging, discrepancy kind and history length of the observation.
        n_classes: number of classes (the monitor starts at chance level 1 / n_classes).
        total_iterations: T, the run's iteration budget (progress = iterations / T).
        iters_per_step: iterations between decisions (the env's ``iters_per_step``).
        max_modalities: None for a DUS-v0 policy (one action per modality, in order); an int
            for a DUS-v1 policy (:mod:`dus_env.slots`): observations and actions have that many
            slots, modality ``i`` in slot ``i``, the others absent.

    Decisions are made at iteration 0 (on construction and :meth:`reset`) and after every
    ``iters_per_step`` iterations while fewer than ``total_iterations`` are done; past the
    budget the last sizes stay in force. The bookkeeping between decisions is the env's own
    (:class:`dus_env.decision.DecisionState`): an iteration whose scores are not finite (a
    diverged step) counts as an iteration but is left out of the monitor.
    """

    def __init__(
        self,
        policy: Any,
        modalities: Sequence[str],
        sampler: SamplerConfig,
        monitor: MonitorConfig,
        n_classes: int,
        total_iterations: int,
        iters_per_step: int,
        max_modalities: int | None = None,
    ) -> None:
        if not callable(getattr(policy, "predict", None)):
            raise TypeError(
                f"policy must have a predict(observation, state, episode_start, deterministic) "
                f"method; got {type(policy).__name__}"
            )
        if max_modalities is None:
            self._decision = DecisionState(modalities, sampler, monitor, n_classes,
                                           total_iterations)
        else:
            self._decision = SlotDecisionState(modalities, sampler, monitor, n_classes,
                                               total_iterations, max_modalities)
        check_integer("iters_per_step", iters_per_step, 1, total_iterations)
        self.max_modalities = max_modalities
        self.policy = policy
        self.modalities = self._decision.modalities
        self.sampler_config = sampler
        self.monitor_config = monitor
        self.n_classes = int(n_classes)
        self.total_iterations = int(total_iterations)
        self.iters_per_step = int(iters_per_step)
        self.layout = self._decision.layout
        self.uniform_action = np.array(
            self._decision.uniform_action if max_modalities is None
            else self._decision.uniform_slot_action,
            dtype=np.float32 if sampler.action == "multipliers" else np.int64)
        self.reset()

    @classmethod
    def from_config(
        cls, config: EnvConfig, policy: Any, *, n_classes: int | None = None,
        max_modalities: int | None = None,
    ) -> SamplingController:
        """A controller with the layout, grid and budget of an env built from ``config``
        (DUS-v1's with ``max_modalities``; give ``config`` the v1 grid then).

        ``n_classes`` defaults to ``config.data.n_classes`` where the data config has one
        (synthetic data); pass it for datasets whose class count is fixed by the data (mfeat: 10).
        """
        if n_classes is None:
            n_classes = getattr(config.data, "n_classes", None)
            if n_classes is None:
                raise ValueError(
                    f"data config {type(config.data).__name__} does not state the number of "
                    "classes; pass n_classes=... (e.g. dataset.n_classes)"
                )
        return cls(
            policy, config.modalities, config.sampler, config.monitor, n_classes,
            config.total_iterations, config.iters_per_step, max_modalities,
        )

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Start a new run: prior monitor state, uniform previous action, first decision."""
        self._decision.reset()
        self._policy_state: Any = None
        self._episode_start = True
        self._action = tuple(self.uniform_action.tolist())
        self.decisions: list[Decision] = []
        """Every decision so far, oldest first."""
        self._decide()

    @property
    def iteration(self) -> int:
        """Training iterations fed so far."""
        return self._decision.iteration

    @property
    def steps_per_episode(self) -> int:
        """Decisions in one run: ``ceil(total_iterations / iters_per_step)``."""
        return -(-self.total_iterations // self.iters_per_step)

    @property
    def batch_sizes(self) -> dict[str, int]:
        """Current batch size of each modality."""
        return dict(self.decisions[-1].batch_sizes)

    @property
    def batch_size_tuple(self) -> tuple[int, ...]:
        """Current batch sizes in modality order."""
        return tuple(self.decisions[-1].batch_sizes[m] for m in self.modalities)

    @property
    def done(self) -> bool:
        """Whether the iteration budget is used up (no further decisions)."""
        return self.iteration >= self.total_iterations

    @property
    def monitor_state(self) -> MonitorState:
        """The monitor as of the latest decision step."""
        return self._decision.state

    # ------------------------------------------------------------------ feeding
    def observe(self, outputs: Mapping[str, tuple[torch.Tensor, torch.Tensor]]) -> bool:
        """Feed one training iteration: for every modality, its logits on its own batch and
        the labels of those rows. Returns whether a new decision was made."""
        self._check_modalities(outputs, "outputs")
        scores = {}
        for m in self.modalities:
            pair = outputs[m]
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise TypeError(
                    f"outputs[{m!r}] must be a (logits, labels) pair; got {type(pair).__name__}"
                )
            logits = _as_tensor(f"outputs[{m!r}] logits", pair[0])
            labels = _as_tensor(f"outputs[{m!r}] labels", pair[1])
            if not logits.is_floating_point():
                raise TypeError(
                    f"outputs[{m!r}] logits have dtype {logits.dtype}; expected floating-point "
                    "logits"
                )
            if logits.ndim == 2 and logits.shape[1] != self.n_classes:
                raise ValueError(
                    f"outputs[{m!r}] has logits for {logits.shape[1]} classes, but the "
                    f"controller was built for n_classes={self.n_classes}"
                )
            if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= self.n_classes):
                raise ValueError(
                    f"outputs[{m!r}] has labels in [{int(labels.min())}, {int(labels.max())}]; "
                    f"valid: class indices in [0, {self.n_classes - 1}]"
                )
            try:
                scores[m] = batch_score(logits, labels)
            except ValueError as exc:  # shape mismatch, empty batch: say which modality
                raise ValueError(f"outputs[{m!r}]: {exc}") from None
        return self.observe_scores(scores)

    def observe_scores(self, scores: Mapping[str, float]) -> bool:
        """Feed one training iteration as precomputed batch scores s^j (mean softmax
        probability of the true class on modality j's own rows). Returns whether a new
        decision was made."""
        self._check_modalities(scores, "scores")
        values = [float(scores[m]) for m in self.modalities]
        for m, v in zip(self.modalities, values):
            if math.isfinite(v) and not 0.0 <= v <= 1.0:  # not finite: a diverged iteration
                raise ValueError(f"scores[{m!r}]={v!r} is out of range; valid: a probability "
                                 "in [0, 1] (the mean true-class probability), or NaN/inf for "
                                 "an iteration whose loss diverged")
        decision = self._decision
        if decision.iteration >= self.total_iterations:  # past the budget: sizes stay
            decision.iteration += 1
            return False
        decision.add_iteration(values, valid=all(math.isfinite(v) for v in values))
        if decision.iteration % self.iters_per_step and decision.iteration != self.total_iterations:
            return False
        decision.end_step(self._action)
        if self.done:
            return False
        self._decide()
        return True

    def _check_modalities(self, mapping: Mapping[str, Any], name: str) -> None:
        if not isinstance(mapping, Mapping) or set(mapping) != set(self.modalities):
            got = sorted(mapping) if isinstance(mapping, Mapping) else type(mapping).__name__
            raise ValueError(
                f"{name} must have one entry per modality {list(self.modalities)}; got {got}"
            )

    # ------------------------------------------------------------------ deciding
    def observation(self) -> np.ndarray:
        """The observation the policy sees now (the env's encoding)."""
        return self._decision.observation()

    def _decide(self) -> None:
        obs = self.observation()
        episode_start = np.array([self._episode_start])
        action, self._policy_state = self.policy.predict(
            obs, state=self._policy_state, episode_start=episode_start, deterministic=True
        )
        self._episode_start = False
        self._action = self._check_action(action)
        sizes = self._decision.batch_sizes(self._action)  # absent slots' indices ignored
        self.decisions.append(Decision(
            iteration=self.iteration,
            observation=obs,
            action=self._action,
            batch_sizes={m: int(n) for m, n in zip(self.modalities, sizes)},
        ))

    def _check_action(self, action: Any) -> tuple[int, ...]:
        """The env's action check, on what a policy returned (a batch of one is unwrapped)."""
        arr = np.asarray(action)
        m = len(self.modalities) if self.max_modalities is None else self.max_modalities
        if arr.shape == (1, m):
            arr = arr[0]
        try:
            return self._decision.check_action(arr)
        except TypeError as exc:
            raise ValueError(self._bad_action(arr, exc)) from None
        except ValueError as exc:
            if arr.shape != (m,):
                raise ValueError(self._bad_action(arr, exc)) from None
            raise ValueError(f"policy returned {exc}") from None

    def _bad_action(self, arr: np.ndarray, exc: Exception) -> str:
        if self.max_modalities is not None:
            per = f"one per slot (max_modalities={self.max_modalities})"
            m = self.max_modalities
        else:
            per, m = f"one per modality {list(self.modalities)}", len(self.modalities)
        return (f"policy returned action={arr.tolist()!r} (shape {arr.shape}, dtype {arr.dtype}); "
                f"expected {m} integer indices into sampler.multipliers, {per} ({exc})")


def _as_tensor(name: str, value: Any) -> torch.Tensor:
    """``value`` as a tensor (a tensor as is; numpy arrays and nested sequences converted), or
    a ``TypeError`` naming ``name`` when it is none of those."""
    try:
        return torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(
            f"{name} has type {type(value).__name__}; expected a torch.Tensor, a numpy array or "
            "a nested sequence of numbers"
        ) from None


class _IndexSplit:
    """A split whose 'inputs' and 'labels' are the row indices themselves, so that
    :class:`ModalitySampler` can be reused to draw index windows."""

    def __init__(self, n: int) -> None:
        self.labels = torch.arange(n)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def get(self, modality: str, indices: np.ndarray | torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(indices, dtype=torch.long)


class DUSBatchSampler(Sampler[list[int]]):
    """A batch sampler whose per-iteration windows follow a :class:`SamplingController`.

    Each iteration yields ``max(max_j n_j, fusion_size)`` indices from one shared permutation of
    ``range(n_samples)`` (a fresh permutation from ``generator`` when one is used up, windows
    running across the boundary), exactly as the env's :class:`ModalitySampler` draws them.
    Modality ``j`` trains on the first :attr:`batch_sizes`\\ ``[j]`` rows of the window and any
    paired loss on the first :attr:`fusion_size` rows. Sizes are read from the controller when
    a window is drawn, so each window must be observed (:meth:`SamplingController.observe`)
    before the next is drawn: use it with ``num_workers=0``. A ``DataLoader`` with workers
    draws windows ahead of the controller's decisions, and :meth:`next_window` refuses that
    with a ``RuntimeError`` (once the controller's budget is spent its sizes no longer change,
    and windows may be drawn without observing).

    Args:
        controller: decides the batch sizes (its sampler config sets the fusion-batch rule).
        n_samples: size of the training set; at least the largest batch
            (``sampler.max_batch_size``), or a window would repeat rows.
        generator: a numpy generator or an integer seed; the only source of randomness.
        n_iterations: windows per pass over this sampler (default: the controller's
            ``total_iterations``, one whole run).
        fusion: False for a loop with no paired (fusion) loss (MLA-style, unimodal): windows
            are then no longer than the largest batch, :attr:`fusion_size` is 0 and no paired
            samples are counted, as the env does for such hosts.
    """

    def __init__(
        self,
        controller: SamplingController,
        n_samples: int,
        generator: np.random.Generator | int,
        n_iterations: int | None = None,
        fusion: bool = True,
    ) -> None:
        if not isinstance(controller, SamplingController):
            raise TypeError(
                f"controller has type {type(controller).__name__}; expected a "
                "SamplingController (from dus_agents.make_controller or "
                "SamplingController.from_config)"
            )
        check_integer("n_samples", n_samples, 1)
        needed = controller.sampler_config.max_batch_size
        if n_samples < needed:
            raise ValueError(
                f"n_samples={n_samples} is smaller than the largest batch "
                f"(max_batch_size={needed}), so a window would repeat rows; valid: n_samples >= "
                f"{needed} (or a controller with a smaller max_batch_size)"
            )
        if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
            generator = np.random.default_rng(int(generator))
        if not isinstance(generator, np.random.Generator):
            raise TypeError(
                f"generator must be a numpy Generator or an int seed; got "
                f"{type(generator).__name__}"
            )
        self.controller = controller
        self.n_iterations = controller.total_iterations if n_iterations is None else n_iterations
        check_integer("n_iterations", self.n_iterations, 1)
        if not isinstance(fusion, bool):
            raise TypeError(f"fusion must be True or False; got {fusion!r}")
        self._sampler = ModalitySampler(
            controller.sampler_config, controller.modalities, _IndexSplit(n_samples), generator,
            fusion=fusion,
        )
        self.batch_sizes: dict[str, int] = {}
        """Per-modality sizes of the window yielded last."""
        self.fusion_size = 0
        """Rows of the window yielded last that the paired (fusion) loss trains on."""
        self.window_epoch = 0.0
        """Epochs of the stream drawn before the window yielded last (OGM-GE's epoch window)."""
        self._drawn_at: tuple[list[Decision], int] | None = None
        """The controller's run (its decision list) and iteration when the last window was
        drawn: the next window needs an observed iteration in between."""

    @property
    def samples_consumed(self) -> dict[str, int]:
        """Samples each modality's own loss has been given so far."""
        return dict(self._sampler.samples_consumed)

    @property
    def paired_consumed(self) -> int:
        """Samples the paired (fusion) loss has been given so far."""
        return int(self._sampler.paired_consumed)

    @property
    def epoch(self) -> float:
        """Epochs of the permutation stream drawn so far."""
        return self._sampler.epoch

    def next_window(self) -> list[int]:
        """The next window, for the controller's current batch sizes.

        Raises ``RuntimeError`` when the window drawn last has not been observed yet (while
        the controller still decides): this window's sizes are not decided until it is.
        """
        controller = self.controller
        drawn_at = (controller.decisions, controller.iteration)
        last = self._drawn_at
        if (last is not None and last[0] is drawn_at[0] and last[1] == drawn_at[1]
                and not controller.done):
            raise RuntimeError(
                "DUSBatchSampler: a window was requested before the controller observed the "
                f"previous one (controller.iteration={controller.iteration} both times). Batch "
                "sizes are decided one iteration at a time from the previous iteration's "
                "outputs, so call controller.observe(...) after every window and use "
                "DataLoader(..., num_workers=0): workers draw windows ahead of the decisions."
            )
        batch = self._sampler.next_batch(controller.batch_size_tuple)
        self._drawn_at = drawn_at
        self.batch_sizes = dict(batch.batch_sizes)
        self.fusion_size = batch.fusion_size
        self.window_epoch = batch.epoch
        return batch.labels.tolist()

    def __iter__(self) -> Iterator[list[int]]:
        for _ in range(self.n_iterations):
            yield self.next_window()

    def __len__(self) -> int:
        return self.n_iterations
