import numpy as np
import pytest
import torch

from dus_env.config import SamplerConfig
from dus_env.data.base import TensorSplit
from dus_env.sampler import ModalitySampler, multipliers_to_batch_sizes, resolve_batch_sizes
from tests.support.rng import isolated_global_rng


def _split(n=96):
    x = torch.arange(n, dtype=torch.float32)[:, None]
    return TensorSplit(features={"a": x, "b": -x}, labels=torch.arange(n) % 3)


def test_uniform_sizes_cover_every_index_exactly_once_per_epoch():
    cfg = SamplerConfig(base_batch_size=16, min_batch_size=8, max_batch_size=32)
    sampler = ModalitySampler(cfg, ("a", "b"), _split(96), np.random.default_rng(0))
    for epoch in range(3):
        seen = []
        for _ in range(96 // 16):
            batch = sampler.next_batch((16, 16))
            assert batch.inputs["a"].shape[0] == 16
            assert torch.equal(batch.inputs["a"][:, 0], -batch.inputs["b"][:, 0])  # paired
            seen += batch.inputs["a"][:, 0].long().tolist()
        assert sorted(seen) == list(range(96)), f"epoch {epoch}"
    assert sampler.epoch == pytest.approx(3.0)
    assert sampler.samples_consumed == {"a": 288, "b": 288}


def test_per_modality_sizes_prefix_of_shared_window_and_counts():
    cfg = SamplerConfig(base_batch_size=16, min_batch_size=8, max_batch_size=32)
    sampler = ModalitySampler(cfg, ("a", "b"), _split(), np.random.default_rng(1))
    batch = sampler.next_batch((8, 32))
    assert batch.inputs["a"].shape[0] == 16  # fixed fusion batch of the base size
    assert batch.inputs["b"].shape[0] == 32
    assert batch.fusion_size == 16
    assert torch.equal(batch.inputs["a"][:, 0], -batch.inputs["b"][:16, 0])
    assert batch.labels.shape[0] == 32
    assert sampler.samples_consumed == {"a": 8, "b": 32}
    prefix = ModalitySampler(SamplerConfig(base_batch_size=16, min_batch_size=8, max_batch_size=32,
                                           fusion_batch="prefix"), ("a", "b"), _split(),
                             np.random.default_rng(1))
    assert prefix.next_batch((8, 32)).fusion_size == 8


def test_bounds_are_honoured_and_enforced():
    cfg = SamplerConfig(base_batch_size=16, min_batch_size=8, max_batch_size=32)
    # renormalised to the total 2 * 16 = 32 and held inside [8, 32] without leaving that total
    assert resolve_batch_sizes([1.0, 1000.0], cfg) == (8, 24)
    # 0.5 vs 2.0 of 16 = 8, 32; renormalised to a total of 32: 6.4, 25.6; 6.4 is held at the
    # bound 8 and the other takes the rest of the budget: 8, 24 (not 8, 26: that overspends)
    assert multipliers_to_batch_sizes([0, 4], cfg) == (8, 24)
    free = SamplerConfig(base_batch_size=16, min_batch_size=8, max_batch_size=32, budget="free")
    assert resolve_batch_sizes([1.0, 1000.0], free) == (8, 32)
    sampler = ModalitySampler(cfg, ("a", "b"), _split(), np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"batch_sizes\['b'\]=33 is out of range"):
        sampler.next_batch((16, 33))
    with pytest.raises(ValueError, match="one per modality"):
        sampler.next_batch((16,))


def test_renormalize_keeps_budget_and_free_does_not():
    cfg = SamplerConfig(base_batch_size=64, min_batch_size=8, max_batch_size=256)
    assert sum(multipliers_to_batch_sizes([4, 4], cfg)) == 128
    # 0.75, 1.5 of 64 = 48, 96, rescaled by 128/144: 42.67, 85.33
    assert multipliers_to_batch_sizes([1, 3], cfg) == (43, 85)
    free = SamplerConfig(base_batch_size=64, min_batch_size=8, max_batch_size=256, budget="free")
    assert multipliers_to_batch_sizes([4, 4], free) == (128, 128)


def test_renormalize_budget_is_exact_even_where_bounds_bind():
    for m in (2, 3, 4):
        cfg = SamplerConfig()  # n_b 64 in [32, 128], grid 0.5 .. 2
        for action in np.random.default_rng(m).integers(0, 5, size=(50, m)):
            sizes = multipliers_to_batch_sizes(action, cfg)
            assert sum(sizes) == m * 64, (action, sizes)
            assert all(32 <= s <= 128 for s in sizes)
    assert multipliers_to_batch_sizes([0, 4], SamplerConfig()) == (32, 96)


def test_sampler_randomness_only_from_its_generator():
    cfg = SamplerConfig(base_batch_size=16, min_batch_size=8, max_batch_size=32)
    a = ModalitySampler(cfg, ("a", "b"), _split(), np.random.default_rng(5))
    b = ModalitySampler(cfg, ("a", "b"), _split(), np.random.default_rng(5))
    with isolated_global_rng():
        np.random.seed(123)
        first = a.next_batch((16, 16)).labels
        np.random.seed(999)
        second = b.next_batch((16, 16)).labels
    assert torch.equal(first, second)


def test_a_host_without_a_paired_loss_is_charged_no_fusion_rows():
    # MLA and unimodal train no fusion loss, yet every window was at least n_b rows and
    # paired_consumed grew by n_b an iteration: paired_samples and the epoch overstated
    cfg = SamplerConfig(base_batch_size=16, min_batch_size=4, max_batch_size=32, budget="free")
    with_fusion = ModalitySampler(cfg, ("a", "b"), _split(96), np.random.default_rng(0))
    without = ModalitySampler(cfg, ("a", "b"), _split(96), np.random.default_rng(0), fusion=False)
    for _ in range(6):
        joint, alone = with_fusion.next_batch((8, 4)), without.next_batch((8, 4))
        assert (joint.fusion_size, len(joint.labels)) == (16, 16)
        assert (alone.fusion_size, len(alone.labels)) == (0, 8)
    assert (with_fusion.paired_consumed, without.paired_consumed) == (96, 0)
    assert (with_fusion.epoch, without.epoch) == (1.0, 0.5)
    assert with_fusion.samples_consumed == without.samples_consumed == {"a": 48, "b": 24}


@pytest.mark.parametrize("host, paired", [("joint", True), ("ogm_ge", True), ("mla", False),
                                          ("unimodal", False)])
def test_the_env_counts_paired_samples_only_for_hosts_with_a_paired_loss(host, paired):
    from dus_env.env import DUSEnv

    env = DUSEnv(preset="tiny", config={"trainer": {"host": host}})
    env.reset(seed=0)
    _, _, _, _, info = env.step(env.uniform_action)
    assert info["paired_consumed"] == (10 * 16 if paired else 0)
