"""Host MML methods as strategies inside the one training engine (:mod:`dus_env.trainer`).

A host decides which heads the classifier has, how one iteration turns a :class:`Batch` into
an optimiser update, and how the test-time prediction fuses the modalities. Every host trains
modality ``j``'s own loss on its own ``batch_sizes[j]`` rows, so every host accepts DUS's
per-modality batch sizes.

* ``joint``: unimodal CE per modality on its own rows + concat-fusion CE on the paired rows,
  one update. Prediction: the fusion head.
* ``ogm_ge``: ``joint`` whose encoder gradients are modulated (OGM-GE, CVPR 2022): the dominant
  modality's by 1 - tanh(alpha (rho - 1)) (or OGM-GE's own 1 - tanh(alpha rho):
  ``trainer.ogm_ge.coefficient``), rho the ratio of its summed true-class confidence on the
  paired rows (from its additive share of the fusion logits) to the others' mean; then Gaussian
  noise with the gradient's own std (generalisation enhancement), within an epoch window. With
  three or more modalities only the dominant one (the largest rho, if above 1; every one tied
  for it) is damped, as with two.
* ``mla``: alternating unimodal updates through one shared head (MLA, CVPR 2024), the head's
  weight gradient projected by the orthogonal-weight-modification matrix P (switchable).
  Prediction: entropy-weighted sum of the per-modality logits (per sample, or per batch).
* ``unimodal``: each modality trained alone (no fusion loss). Prediction: mean of the
  per-modality probabilities. The reference for "the same modality trained alone".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from dus_env.config import TrainerConfig
from dus_env.models import MultimodalClassifier, class_probabilities
from dus_env.sampler import Batch


@dataclass
class HostStep:
    """What one iteration of a host produced (all tensors detached)."""

    losses: dict[str, torch.Tensor]
    """Loss terms by name: each modality's unimodal loss, and ``fusion`` where there is one."""
    unimodal_logits: dict[str, torch.Tensor]
    """Each modality's logits on its own rows (for the batch scores)."""
    extras: dict[str, float] = field(default_factory=dict)
    """Host-specific diagnostics (OGM-GE coefficients, ...)."""


class Host:
    """Base strategy. Subclasses implement :meth:`step` and may override :meth:`fuse`."""

    name = "base"
    shared_head = False
    use_fusion = False
    """Whether :meth:`step` trains a paired (fusion) loss (the sampler then draws its rows)."""

    def __init__(self, config: TrainerConfig, base_batch_size: int, generator: torch.Generator):
        self.config = config
        self.base_batch_size = base_batch_size
        self.generator = generator

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy with the configured reduction (``mean`` or ``base_sum``)."""
        if self.config.loss_reduction == "mean":
            return F.cross_entropy(logits, labels)
        return F.cross_entropy(logits, labels, reduction="sum") / self.base_batch_size

    def step(
        self, model: MultimodalClassifier, optimizer: torch.optim.Optimizer, batch: Batch
    ) -> HostStep:
        raise NotImplementedError

    def fuse(
        self, model: MultimodalClassifier, features: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        """Fused class probabilities from per-modality features."""
        return class_probabilities(model.fusion_logits(features))


class JointHost(Host):
    name = "joint"
    use_fusion = True

    def _forward(self, model: MultimodalClassifier, batch: Batch):
        labels = batch.labels
        features = {m: model.encode(m, x) for m, x in batch.inputs.items()}
        logits = {
            m: model.unimodal_logits(m, features[m][: batch.batch_sizes[m]])
            for m in model.modalities
        }
        losses = {
            m: self.loss(logits[m], labels[: batch.batch_sizes[m]]) for m in model.modalities
        }
        total = self.config.unimodal_weight * sum(losses.values())
        paired = None
        if self.use_fusion:
            paired = {m: f[: batch.fusion_size] for m, f in features.items()}
            losses["fusion"] = self.loss(model.fusion_logits(paired), labels[: batch.fusion_size])
            total = total + self.config.fusion_weight * losses["fusion"]
        return total, losses, logits, paired

    def step(self, model, optimizer, batch):
        optimizer.zero_grad(set_to_none=True)
        total, losses, logits, paired = self._forward(model, batch)
        if torch.isfinite(total):
            total.backward()
            extras = self._modify_gradients(model, batch, paired)
            optimizer.step()
        else:
            extras = {}
        return HostStep(
            losses={k: v.detach() for k, v in losses.items()},
            unimodal_logits={k: v.detach() for k, v in logits.items()},
            extras=extras,
        )

    def _modify_gradients(self, model, batch, paired) -> dict[str, float]:
        return {}


class UnimodalHost(JointHost):
    name = "unimodal"
    use_fusion = False

    def fuse(self, model, features):
        probs = [class_probabilities(model.unimodal_logits(m, features[m]))
                 for m in model.modalities]
        return torch.stack(probs).mean(dim=0)


class OGMGEHost(JointHost):
    name = "ogm_ge"

    def coefficients(
        self, model: MultimodalClassifier, paired: Mapping[str, torch.Tensor], labels: torch.Tensor
    ) -> dict[str, float]:
        """Modulation coefficient per modality: below 1 for the dominant modality (the largest
        ratio rho of its summed true-class confidence to the others' mean, when that ratio
        exceeds 1; every modality tied for it), 1 for every other."""
        with torch.no_grad():
            parts = model.fusion_contributions(paired)
            score = {
                m: torch.softmax(out, dim=1).gather(1, labels[:, None]).sum().item()
                for m, out in parts.items()
            }
        total = sum(score.values())
        n_other = len(score) - 1
        rho = {m: s / max((total - s) / n_other, 1e-12) for m, s in score.items()}
        top = max(rho.values())
        cfg = self.config.ogm_ge
        shift = 1.0 if cfg.coefficient == "shifted" else 0.0
        # tanh in float32, as every published OGM-GE number of this package was computed
        return {
            m: 1.0 - float(torch.tanh(torch.tensor(cfg.alpha * (r - shift))))
            if r > 1.0 and r == top else 1.0
            for m, r in rho.items()
        }

    def _modify_gradients(self, model, batch, paired):
        cfg = self.config.ogm_ge
        if not cfg.start_epoch <= batch.epoch < cfg.end_epoch:
            return {}
        coeffs = self.coefficients(model, {m: f.detach() for m, f in paired.items()},
                                   batch.labels[: batch.fusion_size])
        for m, coeff in coeffs.items():
            for p in model.encoders[m].parameters():
                if p.grad is None:
                    continue
                p.grad.mul_(coeff)
                if cfg.noise and p.grad.dim() >= 2:
                    std = float(p.grad.std()) + 1e-8
                    p.grad.add_(torch.randn(p.grad.shape, generator=self.generator,
                                            device=p.grad.device, dtype=p.grad.dtype) * std)
        return {f"ogm_coeff/{m}": c for m, c in coeffs.items()}


class MLAHost(Host):
    name = "mla"
    shared_head = True

    def __init__(self, config, base_batch_size, generator):
        super().__init__(config, base_batch_size, generator)
        self.projection: torch.Tensor | None = None
        self._updates = 0

    def project(self, grad: torch.Tensor, feature_mean: torch.Tensor) -> torch.Tensor:
        """Update P with the mean feature ``r`` and return ``grad @ P^T``.

        P <- P - k k^T / (alpha + r k) with k = P r^T (P starts as the identity); the projected
        head update then leaves the head's output on the features seen so far almost unchanged.
        """
        d = feature_mean.shape[0]
        if self.projection is None:
            self.projection = torch.eye(d, dtype=grad.dtype, device=grad.device)
        p = self.projection
        r = feature_mean.reshape(d, 1)
        k = p @ r
        self.projection = p - (k @ k.T) / (self.config.mla.alpha + (r.T @ k))
        return grad @ self.projection.T

    def step(self, model, optimizer, batch):
        losses, logits_out = {}, {}
        head = model.shared_head
        assert head is not None
        for m in model.modalities:
            n = batch.batch_sizes[m]
            optimizer.zero_grad(set_to_none=True)
            features = model.encode(m, batch.inputs[m][:n])
            logits = head(features)
            loss = self.loss(logits, batch.labels[:n])
            losses[m], logits_out[m] = loss.detach(), logits.detach()
            if not torch.isfinite(loss):
                continue
            loss.backward()
            if self.config.mla.projection and self._updates > 0:
                head.weight.grad = self.project(head.weight.grad, features.detach().mean(dim=0))
            self._updates += 1
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return HostStep(losses=losses, unimodal_logits=logits_out)

    def fuse(self, model, features):
        logits = torch.stack([model.unimodal_logits(m, features[m]) for m in model.modalities])
        probs = class_probabilities(logits)
        entropy = -(probs * torch.log(probs.clamp_min(1e-12))).sum(dim=2)  # (M, N)
        if self.config.mla.fusion == "batch":
            entropy = entropy.mean(dim=1, keepdim=True).expand_as(entropy)
        weights = torch.softmax(-entropy, dim=0)  # = exp(max e - e_m) / sum_j exp(max e - e_j)
        return class_probabilities((weights[:, :, None] * logits).sum(dim=0))
