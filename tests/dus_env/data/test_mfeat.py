"""The UCI Multiple Features reader: shapes, split, stratification, standardisation, errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from dus_env.config import MFEAT_VIEWS, MfeatConfig
from dus_env.data.base import SPLITS, TensorDataset
from dus_env.data.mfeat import N_CLASSES, N_SAMPLES, VIEW_DIMS, _raw, load_mfeat

ALL_VIEWS = tuple(MFEAT_VIEWS)
EXPECTED_DIMS = {"fou": 76, "fac": 216, "kar": 64, "pix": 240, "zer": 47, "mor": 6}


@pytest.fixture(scope="module")
def full() -> TensorDataset:
    return load_mfeat(MfeatConfig(views=ALL_VIEWS))


def test_raw_data_is_the_known_dataset() -> None:
    views, labels = _raw()
    assert set(views) == set(ALL_VIEWS)
    for view, dim in EXPECTED_DIMS.items():
        assert views[view].shape == (N_SAMPLES, dim)
        assert views[view].dtype == np.float32
        assert np.isfinite(views[view]).all()
    assert VIEW_DIMS == EXPECTED_DIMS
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, np.repeat(np.arange(10), 200))
    # integer-valued views survived storage exactly
    assert np.array_equal(views["pix"], np.round(views["pix"]))
    assert views["pix"].min() == 0 and views["pix"].max() == 6
    assert np.array_equal(views["fac"], np.round(views["fac"]))


def test_shapes_dtypes_and_metadata(full: TensorDataset) -> None:
    assert full.name == "mfeat"
    assert full.modalities == ALL_VIEWS
    assert full.n_classes == N_CLASSES == 10
    assert full.input_shapes == {v: (d,) for v, d in EXPECTED_DIMS.items()}
    total = 0
    for name in SPLITS:
        split = full.split(name)
        n = len(split)
        total += n
        assert split.labels.dtype == torch.int64
        assert split.labels.shape == (n,)
        for view, dim in EXPECTED_DIMS.items():
            x = split.features[view]
            assert x.dtype == torch.float32
            assert x.shape == (n, dim)
            assert torch.isfinite(x).all()
    assert total == N_SAMPLES
    # default fractions 0.6 / 0.15 / 0.25 of 200 digits per class
    assert [len(full.split(s)) for s in SPLITS] == [1200, 300, 500]


def _split_index_sets(config: MfeatConfig) -> dict[str, np.ndarray]:
    """Raw indices of each split, recomputed the way the reader documents it.

    The split test below checks that every split's features equal the raw rows at these
    indices standardised with the train rows' statistics, so the reader really used them.
    """
    from dus_env.data.base import stratified_split

    _, labels = _raw()
    rng = np.random.default_rng(config.split_seed)
    train = 1.0 - config.val_fraction - config.test_fraction
    parts = stratified_split(labels, [train, config.val_fraction, config.test_fraction], rng)
    return dict(zip(SPLITS, parts))


def test_splits_are_disjoint_cover_everything_and_match_the_data(full: TensorDataset) -> None:
    idx = _split_index_sets(MfeatConfig(views=ALL_VIEWS))
    together = np.concatenate([idx[s] for s in SPLITS])
    assert len(together) == N_SAMPLES
    np.testing.assert_array_equal(np.sort(together), np.arange(N_SAMPLES))
    for a, b in itertools.combinations(SPLITS, 2):
        assert not set(idx[a]) & set(idx[b])
    views, labels = _raw()
    train_raw = {v: torch.from_numpy(views[v][idx["train"]]) for v in ALL_VIEWS}
    for name in SPLITS:
        split = full.split(name)
        np.testing.assert_array_equal(split.labels.numpy(), labels[idx[name]])
        for view in ALL_VIEWS:
            mean = train_raw[view].mean(0, keepdim=True)
            std = train_raw[view].std(0, keepdim=True).clamp_min(1e-6)
            expected = (torch.from_numpy(views[view][idx[name]]) - mean) / std
            torch.testing.assert_close(split.features[view], expected)


def test_stratified(full: TensorDataset) -> None:
    fractions = {"train": 0.6, "val": 0.15, "test": 0.25}
    for name, frac in fractions.items():
        counts = np.bincount(full.split(name).labels.numpy(), minlength=10)
        assert (counts > 0).all()
        np.testing.assert_allclose(counts, frac * 200, atol=1)


def test_custom_fractions_are_stratified() -> None:
    ds = load_mfeat(MfeatConfig(views=("fou", "mor"), val_fraction=0.1, test_fraction=0.3))
    assert [len(ds.split(s)) for s in SPLITS] == [1200, 200, 600]
    for name, frac in {"train": 0.6, "val": 0.1, "test": 0.3}.items():
        counts = np.bincount(ds.split(name).labels.numpy(), minlength=10)
        np.testing.assert_allclose(counts, frac * 200, atol=1)


def test_split_is_deterministic_per_seed() -> None:
    a = load_mfeat(MfeatConfig(views=("fac", "zer"), split_seed=3))
    b = load_mfeat(MfeatConfig(views=("fac", "zer"), split_seed=3))
    c = load_mfeat(MfeatConfig(views=("fac", "zer"), split_seed=4))
    for name in SPLITS:
        torch.testing.assert_close(a.split(name).features["fac"], b.split(name).features["fac"])
        assert torch.equal(a.split(name).labels, b.split(name).labels)
    assert not torch.equal(a.split("train").features["fac"], c.split("train").features["fac"])
    ia = _split_index_sets(MfeatConfig(split_seed=3))
    ic = _split_index_sets(MfeatConfig(split_seed=4))
    assert not np.array_equal(ia["test"], ic["test"])


def test_split_does_not_depend_on_the_views() -> None:
    a = load_mfeat(MfeatConfig(views=("fac", "zer")))
    b = load_mfeat(MfeatConfig(views=("zer", "pix", "fac")))
    for name in SPLITS:
        assert torch.equal(a.split(name).labels, b.split(name).labels)
        assert torch.equal(a.split(name).features["zer"], b.split(name).features["zer"])


def test_train_standardised_and_eval_splits_use_train_statistics(full: TensorDataset) -> None:
    for view in ALL_VIEWS:
        x = full.split("train").features[view].double()
        torch.testing.assert_close(x.mean(0), torch.zeros(x.shape[1], dtype=torch.float64),
                                   atol=1e-4, rtol=0)
        torch.testing.assert_close(x.std(0), torch.ones(x.shape[1], dtype=torch.float64),
                                   atol=1e-4, rtol=0)
    # val/test were not refitted: their own statistics are not exactly 0/1 ...
    for name in ("val", "test"):
        means = torch.stack([full.split(name).features[v].mean(0).abs().max() for v in ALL_VIEWS])
        assert means.max() > 1e-2
    # ... and refitting on val would give different values (the train map reproduces them
    # exactly: checked row by row in the split test)
    views, _ = _raw()
    idx = _split_index_sets(MfeatConfig(views=ALL_VIEWS))
    raw_val = torch.from_numpy(views["zer"][idx["val"]])
    refit = (raw_val - raw_val.mean(0)) / raw_val.std(0)
    assert not torch.allclose(full.split("val").features["zer"], refit, atol=1e-3)


@pytest.mark.parametrize(
    "views",
    [("fou", "fac"), ("mor", "pix"), ("fou", "kar", "mor"), ("zer", "fac", "pix", "kar")],
)
def test_any_subset_of_views_in_order(views: tuple[str, ...]) -> None:
    ds = load_mfeat(MfeatConfig(views=views))
    assert ds.modalities == views
    assert list(ds.input_shapes) == list(views)
    for name in SPLITS:
        split = ds.split(name)
        assert set(split.features) == set(views)
        for view in views:
            assert split.get(view, np.arange(5)).shape == (5, EXPECTED_DIMS[view])


def test_every_pair_of_views_loads() -> None:
    for pair in itertools.combinations(ALL_VIEWS, 2):
        ds = load_mfeat(MfeatConfig(views=pair))
        assert ds.input_shapes == {v: (EXPECTED_DIMS[v],) for v in pair}


def test_returns_fresh_tensors() -> None:
    a = load_mfeat(MfeatConfig(views=("fac", "zer")))
    before = a.split("train").features["fac"].clone()
    a.split("train").features["fac"].mul_(0.0)
    a.split("test").labels.fill_(0)
    b = load_mfeat(MfeatConfig(views=("fac", "zer")))
    assert torch.equal(b.split("train").features["fac"], before)
    assert b.split("test").labels.unique().numel() == 10
    views, labels = _raw()
    assert not views["fac"].flags.writeable and not labels.flags.writeable


def test_invalid_views_raise_with_choices() -> None:
    with pytest.raises(ValueError, match="bogus") as err:
        MfeatConfig(views=("fou", "bogus"))
    for view in ALL_VIEWS:
        assert view in str(err.value)
    with pytest.raises(ValueError, match="at least 2"):
        MfeatConfig(views=("fou",))
    with pytest.raises(ValueError, match="duplicate"):
        MfeatConfig(views=("fou", "fou"))


def test_rejects_other_configs() -> None:
    with pytest.raises(TypeError, match="MfeatConfig"):
        load_mfeat({"views": ("fou", "fac")})  # type: ignore[arg-type]


def test_global_rng_state_untouched() -> None:
    _raw.cache_clear()
    np_state = np.random.get_state()
    torch_state = torch.get_rng_state()
    load_mfeat(MfeatConfig(views=("fou", "kar", "mor"), split_seed=7))
    after = np.random.get_state()
    assert np_state[0] == after[0]
    np.testing.assert_array_equal(np_state[1], after[1])
    assert np_state[2:] == after[2:]
    assert torch.equal(torch_state, torch.get_rng_state())
