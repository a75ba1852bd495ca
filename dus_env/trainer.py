"""The training engine: ``train_step(batch) -> StepStats`` and ``evaluate(split) -> EvalStats``.

:class:`MMLTrainer` knows nothing of samplers, monitors, Gymnasium or RL: the env, a plain
training loop and the benchmarks all drive the same engine. The host method (joint, MLA,
OGM-GE, unimodal) is a strategy object from :mod:`dus_env.hosts`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from dus_env import metrics
from dus_env.config import ModelConfig, TrainerConfig
from dus_env.data.base import DatasetSplit, MultimodalDataset
from dus_env.hosts import Host
from dus_env.registry import HOSTS
from dus_env.models import MultimodalClassifier, class_probabilities, true_class_probability
from dus_env.sampler import Batch
from dus_env.seeding import torch_generator, torch_rng


@dataclass(frozen=True)
class StepStats:
    """One training iteration, as plain Python values."""

    loss: float
    """Total of the loss terms (NaN or inf if training diverged)."""
    losses: dict[str, float]
    """Loss terms by name (each modality, and ``fusion`` where the host has one)."""
    batch_scores: dict[str, float]
    """s_t^j: mean softmax probability of the true class on modality j's own rows."""
    batch_sizes: dict[str, int]
    """Rows each modality trained on."""
    diverged: bool
    """A loss was not finite (the update was skipped)."""
    extras: dict[str, float] = field(default_factory=dict)
    """Host diagnostics."""


@dataclass(frozen=True)
class EvalStats:
    """Metrics on one split (or subset)."""

    accuracy: float
    modality_accuracy: dict[str, float]
    """Accuracy of each modality's own prediction (its head, or MLA's shared head)."""
    n_samples: int
    macro_f1: float | None = None
    """Macro-F1 (scikit-learn); None for a quick evaluation."""
    map: float | None = None
    """Mean average precision (scikit-learn); None for a quick evaluation."""
    sum_heads_accuracy: float | None = None
    """Accuracy of the sum of the modalities' own logits (each modality's head, or MLA's shared
    head): the ``joint`` host's second prediction beside its fusion head; None for a quick
    evaluation."""
    finite: bool = True
    """Whether every output probability was finite. Non-finite fused probabilities count as 0
    in the metrics; weights that went non-finite show up here (the env's divergence check)."""

    def as_dict(self) -> dict:
        return asdict(self)


class MMLTrainer:
    """Trains a :class:`MultimodalClassifier` with one host strategy.

    Args:
        config: host, optimiser and loss options.
        model: the classifier (built with the host's head layout; see :meth:`build`).
        base_batch_size: n_b (the ``base_sum`` loss reduction divides by it).
        seed: seed of the trainer's private generator (OGM-GE noise).
    """

    def __init__(
        self, config: TrainerConfig, model: MultimodalClassifier, base_batch_size: int, seed: int
    ) -> None:
        self.config = config
        self.model = model
        self.device = next(model.parameters()).device
        # the generator lives where the gradients do: OGM-GE's noise is drawn on that device
        self.host: Host = HOSTS.load(config.host)(config, base_batch_size,
                                                  torch_generator(seed, self.device))
        if self.host.shared_head != (model.shared_head is not None):
            raise ValueError(f"host {config.host!r} needs shared_head={self.host.shared_head}")
        if config.optimizer == "sgd":
            self.optimizer: torch.optim.Optimizer = torch.optim.SGD(
                model.parameters(), lr=config.lr, momentum=config.momentum,
                weight_decay=config.weight_decay,
            )
        else:
            self.optimizer = torch.optim.Adam(
                model.parameters(), lr=config.lr, weight_decay=config.weight_decay
            )
        self.iteration = 0

    @classmethod
    def build(
        cls,
        config: TrainerConfig,
        model_config: ModelConfig,
        dataset: MultimodalDataset,
        base_batch_size: int,
        seed: int,
        device: str = "cpu",
    ) -> MMLTrainer:
        """A fresh model and trainer; initialisation is seeded and leaves global RNGs alone."""
        shared = HOSTS.load(config.host).shared_head
        with torch_rng(seed, device):
            model = MultimodalClassifier(
                dataset.modalities, dataset.input_shapes, dataset.n_classes, model_config,
                shared_head=shared,
            ).to(device)
        return cls(config, model, base_batch_size, seed + 1)

    def train_step(self, batch: Batch) -> StepStats:
        """One iteration on ``batch``; a non-finite loss skips the update and flags divergence."""
        if not self.model.training:
            self.model.train()
        batch = self._to_device(batch)
        out = self.host.step(self.model, self.optimizer, batch)
        self.iteration += 1
        losses = {k: float(v) for k, v in out.losses.items()}
        scores = {m: true_class_probability(logits, batch.labels[: logits.shape[0]])
                  for m, logits in out.unimodal_logits.items()}
        total = float(sum(losses.values()))
        return StepStats(
            loss=total,
            losses=losses,
            batch_scores=scores,
            batch_sizes=dict(batch.batch_sizes),
            diverged=not math.isfinite(total),
            extras=out.extras,
        )

    def _to_device(self, batch: Batch) -> Batch:
        if batch.labels.device == self.device:
            return batch
        return Batch(
            inputs={m: x.to(self.device) for m, x in batch.inputs.items()},
            labels=batch.labels.to(self.device),
            batch_sizes=batch.batch_sizes,
            fusion_size=batch.fusion_size,
            epoch=batch.epoch,
        )

    def parameters_finite(self) -> bool:
        """Whether every weight is finite.

        One reduction per tensor and one check: a tensor's sum is non-finite when any element
        is (or when finite weights sum past float range, which is divergence too).
        """
        sums = torch.stack([p.detach().sum() for p in self.model.parameters()])
        return bool(torch.isfinite(sums).all())

    @torch.no_grad()
    def predict(
        self, inputs: Mapping[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Fused probabilities and each modality's own probabilities for a batch of inputs."""
        fused, logits = self._outputs(inputs)
        return fused, {m: class_probabilities(v) for m, v in logits.items()}

    @torch.no_grad()
    def _outputs(
        self, inputs: Mapping[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Fused probabilities and each modality's own logits."""
        self.model.eval()
        features = {m: self.model.encode(m, x.to(self.device)) for m, x in inputs.items()}
        fused = self.host.fuse(self.model, features)
        return fused, {m: self.model.unimodal_logits(m, f) for m, f in features.items()}

    def evaluate(
        self,
        split: DatasetSplit,
        indices: np.ndarray | None = None,
        chunk_size: int = 4096,
        full: bool = True,
    ) -> EvalStats:
        """Metrics of the current model on ``split`` (or on the rows ``indices`` of it).

        ``full=False`` computes only the accuracies (fast; what the env's reward reads each
        step); ``full=True`` adds macro-F1 and MAP from scikit-learn, and the accuracy of the
        sum of the heads.
        """
        idx = np.arange(len(split)) if indices is None else np.asarray(indices)
        fused, per, summed = [], {m: [] for m in self.model.modalities}, []
        for start in range(0, len(idx), chunk_size):
            rows = idx[start : start + chunk_size]
            f, logits = self._outputs({m: split.get(m, rows) for m in self.model.modalities})
            fused.append(f.cpu())
            for m in per:
                per[m].append(class_probabilities(logits[m]).cpu())
            if full:
                summed.append(sum(logits.values()).cpu())
        labels = split.labels[torch.as_tensor(idx, dtype=torch.long)].numpy()
        probs = torch.cat(fused).double().numpy()
        per_modality = {m: torch.cat(v).numpy() for m, v in per.items()}
        # Probabilities lie in [0, 1], so a sum is non-finite exactly when an element is.
        finite = all(math.isfinite(a.sum()) for a in (probs, *per_modality.values()))
        if not finite:
            probs = np.nan_to_num(probs, nan=0.0, posinf=0.0, neginf=0.0)
        if not full:  # the env's per-step reward: plain argmax accuracy, no scikit-learn overhead
            return EvalStats(
                accuracy=float(np.mean(probs.argmax(axis=1) == labels)),
                modality_accuracy={
                    m: float(np.mean(p.argmax(axis=1) == labels)) for m, p in per_modality.items()
                },
                n_samples=len(idx),
                finite=finite,
            )
        return EvalStats(
            accuracy=metrics.accuracy(labels, probs),
            modality_accuracy={m: metrics.accuracy(labels, p) for m, p in per_modality.items()},
            n_samples=len(idx),
            macro_f1=metrics.macro_f1(labels, probs),
            map=metrics.mean_average_precision(labels, probs),
            sum_heads_accuracy=metrics.accuracy(
                labels, np.nan_to_num(torch.cat(summed).double().numpy(), nan=-np.inf)),
            finite=finite,
        )

    @torch.no_grad()
    def features(
        self, split: DatasetSplit, modality: str, indices: np.ndarray | None = None,
        chunk_size: int = 4096,
    ) -> np.ndarray:
        """Frozen-encoder features of ``modality`` on ``split`` (for linear probes)."""
        self.model.eval()
        idx = np.arange(len(split)) if indices is None else np.asarray(indices)
        out = [
            self.model.encode(modality, split.get(modality, idx[s : s + chunk_size]).to(self.device)).cpu()
            for s in range(0, len(idx), chunk_size)
        ]
        return torch.cat(out).numpy()

    def probe_accuracy(
        self,
        dataset: MultimodalDataset,
        eval_split: str = "test",
        max_train: int = 5000,
        seed: int = 0,
    ) -> dict[str, float]:
        """Linear-probe accuracy of each frozen encoder: fit on (up to ``max_train``) training
        rows, scored on ``eval_split``. The training rows are a seeded subset."""
        train = dataset.split("train")
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.permutation(len(train))[:max_train])
        target = dataset.split(eval_split)
        return {
            m: metrics.linear_probe_accuracy(
                self.features(train, m, rows), train.labels[rows].numpy(),
                self.features(target, m), target.labels.numpy(), seed=seed,
            )
            for m in dataset.modalities
        }
