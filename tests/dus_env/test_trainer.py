"""The training engine: train_step's statistics and evaluation."""

from __future__ import annotations

import numpy as np
import torch

from dus_env.config import TrainerConfig, get_preset
from dus_env.data import make_dataset
from dus_env.models import true_class_probability
from dus_env.sampler import ModalitySampler
from dus_env.trainer import MMLTrainer


def _trainer_and_sampler(host: str = "joint"):
    cfg = get_preset("tiny")
    data = make_dataset(cfg.data)
    trainer = MMLTrainer.build(TrainerConfig(host=host), cfg.model, data, 16, seed=0)
    sampler = ModalitySampler(cfg.sampler, data.modalities, data.split("train"),
                              np.random.default_rng(0))
    return cfg, data, trainer, sampler


def test_train_step_reports_losses_scores_and_sizes():
    _, data, trainer, sampler = _trainer_and_sampler()
    batch = sampler.next_batch((8, 24))
    model_before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    with torch.no_grad():  # the batch scores are the pre-update model's, on each modality's rows
        trainer.model.eval()
        expected = {m: true_class_probability(
            trainer.model.unimodal_logits(m, trainer.model.encode(m, batch.inputs[m][:n])),
            batch.labels[:n]) for m, n in zip(data.modalities, (8, 24))}
    stats = trainer.train_step(batch)
    assert stats.batch_sizes == {"strong": 8, "weak": 24}
    assert set(stats.losses) == {"strong", "weak", "fusion"} and not stats.diverged
    assert stats.loss == sum(stats.losses.values())
    for m in data.modalities:
        assert abs(stats.batch_scores[m] - expected[m]) < 1e-6
    assert trainer.iteration == 1
    assert any(not torch.equal(model_before[k], v) for k, v in trainer.model.state_dict().items())


def test_non_finite_loss_skips_the_update_and_flags_divergence():
    _, _, trainer, sampler = _trainer_and_sampler()
    with torch.no_grad():
        trainer.model.fusion_head.weight.fill_(float("inf"))
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    stats = trainer.train_step(sampler.next_batch((16, 16)))
    assert stats.diverged
    for key, value in trainer.model.state_dict().items():
        torch.testing.assert_close(value, before[key], equal_nan=True)


def test_quick_and_full_evaluation_agree_on_accuracy():
    cfg = get_preset("tiny")
    data = make_dataset(cfg.data)
    trainer = MMLTrainer.build(TrainerConfig(), cfg.model, data, 16, seed=0)
    sampler = ModalitySampler(cfg.sampler, data.modalities, data.split("train"),
                              np.random.default_rng(0))
    for _ in range(20):
        trainer.train_step(sampler.next_batch((16, 16)))
    quick = trainer.evaluate(data.split("val"), full=False)
    full = trainer.evaluate(data.split("val"))
    assert quick.accuracy == full.accuracy
    assert quick.modality_accuracy == full.modality_accuracy
    assert quick.macro_f1 is None and 0.0 <= full.macro_f1 <= 1.0 and 0.0 <= full.map <= 1.0


def test_full_evaluation_reports_the_sum_of_the_heads():
    """The joint host predicts from its fusion head; the method spec also reports the sum of the
    modality heads' logits, the prediction of late fusion by summing."""
    _, data, trainer, sampler = _trainer_and_sampler()
    for _ in range(20):
        trainer.train_step(sampler.next_batch((16, 16)))
    val = data.split("val")
    rows = np.arange(len(val))
    with torch.no_grad():
        trainer.model.eval()
        summed = sum(trainer.model.unimodal_logits(m, trainer.model.encode(m, val.get(m, rows)))
                     for m in data.modalities)
    expected = float((summed.argmax(dim=1) == val.labels).double().mean())
    full = trainer.evaluate(val, chunk_size=50)  # chunked: the sums are gathered across chunks
    assert full.sum_heads_accuracy == expected
    # a prediction of its own: here it differs from the fusion head's on some rows
    fused, _ = trainer.predict({m: val.get(m, rows) for m in data.modalities})
    assert not torch.equal(fused.argmax(dim=1), summed.argmax(dim=1))
    assert trainer.evaluate(val, full=False).sum_heads_accuracy is None
