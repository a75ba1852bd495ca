"""Two-view Fashion-MNIST and the small CNN, on tiny generated idx files (nothing downloads).

The fixture writes the four idx files of a 200-train / 50-test copy with class-dependent
patterns (class ``c`` lights a bar at rows ``2c .. 2c + 3``), so the views can be checked
pixel by pixel and a CNN can learn them in a few steps.
"""

from __future__ import annotations

import gzip
import os
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from dus_env.data import fashion_mnist as fm
from dus_env.data.base import MultimodalDataset, TensorDataset
from dus_env.data.fashion_mnist import FashionMNISTConfig, IdxFormatError
from dus_env.models.conv import DEFAULT_WIDTHS, build_small_cnn, conv_widths
from tests.support.fashion import (
    N_TEST,
    N_TRAIN,
    VAL,
    make_images,
    write_copy,
    write_idx,
)

torch.set_num_threads(1)

# no test sees the machine's copy, the caller's env var or another test's cache
pytestmark = pytest.mark.usefixtures("fashion_isolated")

def config(root: Path, **kw) -> FashionMNISTConfig:
    base = dict(root=str(root), val_size=VAL, expect_canonical=False)
    return FashionMNISTConfig(**{**base, **kw})


def pixels(ds: fm.FashionMNISTDataset, split: str, modality: str) -> torch.Tensor:
    """The view back on [0, 1] pixels (undoing the standardisation)."""
    mean, std = ds.normalization[modality]
    return ds.split(split).features[modality] * std + mean


# ----------------------------------------------------------------------------- read_idx
@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_round_trip(tmp_path: Path, gz: bool):
    images, labels = make_images(30, 0)
    got = fm.read_idx(write_idx(tmp_path / "img", images, gz=gz), ndim=3)
    assert got.dtype == np.uint8 and got.shape == (30, 28, 28)
    np.testing.assert_array_equal(got, images)
    np.testing.assert_array_equal(fm.read_idx(write_idx(tmp_path / "lab", labels, gz=gz)), labels)
    assert not got.flags.writeable


@pytest.mark.parametrize("case,match", [
    ("magic", "magic number 0x01020803"),
    ("dtype", "dtype byte 0x0d"),
    ("ndim", "expected 0x00000803"),
    ("truncated", "truncated"),
    ("trailing", "bytes after"),
    ("header", "fewer than the 4-byte"),
    ("gzip", "damaged gzip"),
])
def test_read_idx_bad_files_name_the_file(tmp_path: Path, case: str, match: str):
    images, _ = make_images(5, 0)
    path = tmp_path / f"bad-{case}.gz"
    if case == "magic":
        write_idx(path, images, magic=b"\x01\x02\x08\x03")
    elif case == "dtype":
        write_idx(path, images, magic=b"\x00\x00\x0d\x03")
    elif case == "ndim":
        write_idx(path, images.reshape(5, -1))
    elif case == "truncated":
        write_idx(path, images, cut=10)
    elif case == "trailing":
        path.write_bytes(gzip.compress(gzip.decompress(write_idx(path, images).read_bytes()) + b"x"))
    elif case == "header":
        path.write_bytes(b"\x00\x00")
    else:
        path.write_bytes(gzip.compress(b"\x00\x00\x08\x03" + b"\x00" * 400)[:-20])
    with pytest.raises(IdxFormatError, match=match) as info:
        fm.read_idx(path, ndim=3)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_load_raw_reads_gz_and_plain(tmp_path: Path):
    for gz in (True, False):
        tr_x, tr_y, te_x, _ = fm.load_raw(write_copy(tmp_path / f"c{gz}", gz=gz))
        assert tr_x.shape == (N_TRAIN, 28, 28) and te_x.shape == (N_TEST, 28, 28)
        assert tr_y.dtype == np.int64 and set(np.unique(tr_y)) == set(range(10))
        np.testing.assert_array_equal(te_x, make_images(N_TEST, 2)[0])


def test_load_raw_count_mismatch_names_both_files(root: Path):
    path = root / "train-labels-idx1-ubyte.gz"
    write_idx(path, make_images(N_TRAIN - 1, 1)[1])
    with pytest.raises(IdxFormatError, match="counts must match") as info:
        fm.load_raw(root)
    assert str(path) in str(info.value) and "train-images-idx3-ubyte.gz" in str(info.value)


def test_load_raw_label_out_of_range_names_the_file(root: Path):
    labels = make_images(N_TEST, 2)[1].copy()
    labels[7] = 10
    path = write_idx(root / "t10k-labels-idx1-ubyte.gz", labels)
    with pytest.raises(IdxFormatError, match=r"label 10 at index 7; valid labels: 0\.\.9") as info:
        fm.load_raw(root)
    assert str(path) in str(info.value)


def test_load_raw_empty_split_names_the_file(root: Path):
    # a t10k pair declaring 0 images loaded as an empty test split, silently
    path = write_idx(root / "t10k-images-idx3-ubyte.gz", np.zeros((0, 28, 28), np.uint8))
    write_idx(root / "t10k-labels-idx1-ubyte.gz", np.zeros(0, np.uint8))
    with pytest.raises(IdxFormatError, match=f"idx file {path} holds no images; the test split"):
        fm.load_raw(root)


def test_load_raw_image_size_and_canonical_counts(root: Path):
    with pytest.raises(IdxFormatError, match="official train split has 60000") as info:
        fm.load_raw(root, expect_canonical=True)
    assert "expect_canonical=False" in str(info.value)
    with pytest.raises(IdxFormatError, match="official train split has 60000"):
        fm.load_fashion_mnist(config(root, expect_canonical=True))
    path = write_idx(root / "t10k-images-idx3-ubyte.gz", np.zeros((N_TEST, 27, 28), np.uint8))
    with pytest.raises(IdxFormatError, match="27 x 28 images") as info:
        fm.load_raw(root)
    assert str(path) in str(info.value)


# ----------------------------------------------------------------------------- find_root
def test_find_root_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    arg, env, deb = (write_copy(tmp_path / n, n_train=20, n_test=20) for n in ("a", "e", "d"))
    monkeypatch.setattr(fm, "DEBIAN_ROOT", deb)
    assert fm.find_root(None) == deb
    monkeypatch.setenv(fm.ENV_VAR, str(env))
    assert fm.find_root(None) == env
    assert fm.find_root(str(arg)) == arg
    monkeypatch.setenv(fm.ENV_VAR, "")  # empty counts as unset
    assert fm.find_root(None) == deb


def test_find_root_error_lists_the_three_places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    deb = tmp_path / "debian"
    deb.mkdir()
    (deb / "train-images-idx3-ubyte.gz").write_bytes(b"")
    monkeypatch.setattr(fm, "DEBIAN_ROOT", deb)
    with pytest.raises(FileNotFoundError) as info:
        fm.find_root(None)
    msg = str(info.value)
    for text in ("data.root: not given", f"${fm.ENV_VAR}: not set", str(deb),
                 "lacks train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz]",
                 "apt-get install dataset-fashion-mnist", "zalandoresearch/fashion-mnist"):
        assert text in msg, text
    assert "train-images-idx3-ubyte[.gz]" not in msg


def test_find_root_a_set_place_wins_and_is_not_skipped(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch):
    good = write_copy(tmp_path / "good", n_train=20, n_test=20)
    monkeypatch.setenv(fm.ENV_VAR, str(good))
    monkeypatch.setattr(fm, "DEBIAN_ROOT", good)
    missing = tmp_path / "typo"
    with pytest.raises(FileNotFoundError) as info:
        fm.find_root(str(missing))
    msg = str(info.value)
    assert f"data.root = {missing}: does not exist" in msg
    assert f"${fm.ENV_VAR} = {good}: not consulted" in msg
    assert "the Debian package folder" in msg
    with pytest.raises(FileNotFoundError, match="not consulted"):
        fm.load_fashion_mnist(config(missing))


# ----------------------------------------------------------------------------- views
def test_dataset_protocol_shapes_and_types(root: Path):
    ds = fm.load_fashion_mnist(config(root))
    assert isinstance(ds, TensorDataset) and isinstance(ds, MultimodalDataset)
    assert ds.name == "fashion_mnist" and ds.n_classes == 10
    assert ds.modalities == ("rotated", "noisy") == FashionMNISTConfig().modalities
    assert ds.input_shapes == {"rotated": (1, 28, 28), "noisy": (1, 28, 28)}
    sizes = {s: len(ds.split(s)) for s in ("train", "val", "test")}
    assert sizes == {"train": N_TRAIN - VAL, "val": VAL, "test": N_TEST}
    for s, n in sizes.items():
        split = ds.split(s)
        assert split.labels.dtype == torch.int64
        for m in ds.modalities:
            x = split.features[m]
            assert x.dtype == torch.float32 and x.shape == (n, 1, 28, 28)
    for m in ds.modalities:  # standardised with train statistics
        x = ds.split("train").features[m]
        assert abs(float(x.mean())) < 1e-4 and abs(float(x.std()) - 1) < 1e-3
        assert float(pixels(ds, "train", m).min()) > -1e-5
        assert float(pixels(ds, "train", m).max()) < 1 + 1e-5


def test_views_deterministic_for_a_seed_and_differ_across_seeds(root: Path):
    a = fm.load_fashion_mnist(config(root, seed=3))
    fm.clear_cache()
    b = fm.load_fashion_mnist(config(root, seed=3))
    c = fm.load_fashion_mnist(config(root, seed=4))
    assert a is not b
    for s in ("train", "val", "test"):
        for m in a.modalities:
            assert torch.equal(a.split(s).features[m], b.split(s).features[m])
            assert not torch.equal(a.split(s).features[m], c.split(s).features[m])
    assert not np.array_equal(a.source_index["val"], c.source_index["val"])


def test_building_leaves_global_rngs_alone(root: Path):
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()
    fm.load_fashion_mnist(config(root))
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.random.get_state()[1].tolist() == np_state[1].tolist()


def test_same_class_pairing_uses_another_image_of_the_class(root: Path):
    ds = fm.load_fashion_mnist(config(root, noise=0.0, rotation=30.0))
    raw_train, _, raw_test, _ = fm.load_raw(root)
    for s, raw in (("train", raw_train), ("val", raw_train), ("test", raw_test)):
        labels, pair = ds.split(s).labels.numpy(), ds.pair_index[s]
        np.testing.assert_array_equal(labels[pair], labels)
        assert np.all(pair != np.arange(len(pair)))
        assert sorted(pair.tolist()) == list(range(len(pair)))  # each image used once
        expect = raw[ds.source_index[s][pair]] / 255.0
        torch.testing.assert_close(pixels(ds, s, "noisy")[:, 0], torch.from_numpy(expect).float(),
                                   atol=1e-5, rtol=0)


def test_no_rotation_no_noise_same_image_gives_equal_views(root: Path):
    ds = fm.load_fashion_mnist(config(root, rotation=0.0, noise=0.0, pairing="same_image"))
    raw_train, _, raw_test, _ = fm.load_raw(root)
    assert ds.normalization["rotated"] == ds.normalization["noisy"]
    for s, raw in (("train", raw_train), ("val", raw_train), ("test", raw_test)):
        f = ds.split(s).features
        assert torch.equal(f["rotated"], f["noisy"])
        expect = torch.from_numpy(raw[ds.source_index[s]] / 255.0).float()
        torch.testing.assert_close(pixels(ds, s, "rotated")[:, 0], expect, atol=1e-5, rtol=0)


def test_rotation_and_noise_change_the_views(root: Path):
    plain = fm.load_fashion_mnist(config(root, rotation=0.0, noise=0.0, pairing="same_image"))
    both = fm.load_fashion_mnist(config(root, rotation=45.0, noise=0.6, pairing="same_image"))
    for m in plain.modalities:
        diff = (pixels(plain, "train", m) - pixels(both, "train", m)).abs().mean()
        assert float(diff) > 0.05, m


def test_rotate_images_quarter_turn_is_rot90():
    x = torch.rand(3, 1, 28, 28)
    out = fm.rotate_images(x, np.array([90.0, -90.0, 0.0]))
    torch.testing.assert_close(out[0], torch.rot90(x[0], 1, (1, 2)), atol=1e-4, rtol=0)
    torch.testing.assert_close(out[1], torch.rot90(x[1], -1, (1, 2)), atol=1e-4, rtol=0)
    torch.testing.assert_close(out[2], x[2], atol=1e-5, rtol=0)
    small = fm.rotate_images(x, np.full(3, 45.0), batch_size=2)
    torch.testing.assert_close(small, fm.rotate_images(x, np.full(3, 45.0)))
    assert float(small[:, :, 0, 0].abs().max()) == 0.0  # corners come from outside: zeros


# ----------------------------------------------------------------------------- splits
def test_val_is_a_stratified_disjoint_carve_of_train(root: Path):
    ds = fm.load_fashion_mnist(config(root))
    _, raw_y, _, _ = fm.load_raw(root)
    train, val = ds.source_index["train"], ds.source_index["val"]
    assert len(np.intersect1d(train, val)) == 0
    np.testing.assert_array_equal(np.union1d(train, val), np.arange(N_TRAIN))
    assert np.bincount(ds.split("val").labels.numpy(), minlength=10).tolist() == [VAL // 10] * 10
    np.testing.assert_array_equal(ds.split("val").labels.numpy(), raw_y[val])
    # the carve depends on the seed only, not on n_train or the view settings
    other = fm.load_fashion_mnist(config(root, n_train=60, noise=0.1, rotation=10.0))
    np.testing.assert_array_equal(other.source_index["val"], val)


def test_n_train_and_n_test_are_stratified_subsets(root: Path):
    ds = fm.load_fashion_mnist(config(root, n_train=60, n_test=30))
    full = fm.load_fashion_mnist(config(root))
    assert len(ds.split("train")) == 60 and len(ds.split("test")) == 30
    assert np.bincount(ds.split("train").labels.numpy()).tolist() == [6] * 10
    assert np.bincount(ds.split("test").labels.numpy()).tolist() == [3] * 10
    assert set(ds.source_index["train"]) <= set(full.source_index["train"])
    assert len(set(ds.source_index["test"])) == 30


def test_test_split_is_the_official_test_file(root: Path):
    ds = fm.load_fashion_mnist(config(root, rotation=0.0))
    _, _, raw_x, raw_y = fm.load_raw(root)
    np.testing.assert_array_equal(ds.source_index["test"], np.arange(N_TEST))
    np.testing.assert_array_equal(ds.split("test").labels.numpy(), raw_y)
    expect = torch.from_numpy(raw_x / 255.0).float()
    torch.testing.assert_close(pixels(ds, "test", "rotated")[:, 0], expect, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kw,match", [
    (dict(n_train=170), r"data.n_train=170 is more than the 160 train images"),
    (dict(val_size=190), r"data.val_size=190 leaves fewer than 20"),
    (dict(n_test=60), r"data.n_test=60 is more than the 50 official test images"),
])
def test_sizes_beyond_the_data_name_the_field(root: Path, kw: dict, match: str):
    with pytest.raises(ValueError, match=match):
        fm.load_fashion_mnist(config(root, **kw))


def test_same_class_needs_two_images_per_class(tmp_path: Path):
    folder = write_copy(tmp_path / "c")
    labels = make_images(N_TEST, 2)[1].copy()
    labels[labels == 3] = 4
    labels[0] = 3  # class 3 has a single test image
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", labels)
    with pytest.raises(ValueError, match="test split: class 3 has only 1 sample"):
        fm.load_fashion_mnist(config(folder))
    assert len(fm.load_fashion_mnist(config(folder, pairing="same_image")).split("test")) == 50


# ----------------------------------------------------------------------------- cache
def test_cache_returns_the_same_object(root: Path):
    a = fm.load_fashion_mnist(config(root))
    assert fm.load_fashion_mnist(config(root)) is a  # equal config, another instance
    assert fm.load_fashion_mnist(config(root, seed=1)) is not a
    assert fm.load_fashion_mnist(config(root)) is a


def test_cache_is_bounded_and_sees_changed_files(root: Path):
    first = fm.load_fashion_mnist(config(root, seed=0))
    for seed in range(1, fm.CACHE_SIZE + 1):
        fm.load_fashion_mnist(config(root, seed=seed))
    assert len(fm._CACHE) == fm.CACHE_SIZE
    again = fm.load_fashion_mnist(config(root, seed=0))
    assert again is not first  # evicted, rebuilt
    assert fm.load_fashion_mnist(config(root, seed=0)) is again
    path = root / "t10k-images-idx3-ubyte.gz"
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert fm.load_fashion_mnist(config(root, seed=0)) is not again


def test_loader_rejects_other_configs():
    with pytest.raises(TypeError, match="needs a config of type FashionMNISTConfig"):
        fm.load_fashion_mnist(types.SimpleNamespace(name="fashion_mnist"))  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- config
@pytest.mark.parametrize("kw,exc,parts", [
    (dict(noise=-1), ValueError, ["data.noise=-1", "[0.0, inf]"]),
    (dict(noise=float("nan")), ValueError, ["data.noise=nan", "finite"]),
    (dict(noise=float("inf")), ValueError, ["data.noise=inf", "finite"]),
    (dict(rotation=200), ValueError, ["data.rotation=200", "[0.0, 180.0]"]),
    (dict(rotation="45"), TypeError, ["data.rotation='45'", "expected float"]),
    (dict(pairing="x"), ValueError, ["data.pairing='x'", "'same_class'", "'same_image'"]),
    (dict(pairing="same-class"), ValueError, ["data.pairing='same-class'",
                                              "Did you mean 'same_class'?"]),
    (dict(n_train="abc"), TypeError, ["data.n_train='abc'", "expected int"]),
    (dict(n_train=5), ValueError, ["data.n_train=5", "[20, inf]"]),
    (dict(n_train=True), TypeError, ["data.n_train=True"]),
    (dict(val_size=0), ValueError, ["data.val_size=0", "[20, inf]"]),
    (dict(val_size=None), TypeError, ["data.val_size=None", "expected int"]),
    (dict(n_test=1.5), TypeError, ["data.n_test=1.5"]),
    (dict(seed=-1), ValueError, ["data.seed=-1", "[0, inf]"]),
    (dict(expect_canonical="yes"), TypeError, ["data.expect_canonical='yes'", "expected bool"]),
    (dict(root=""), ValueError, ["data.root=''", "empty"]),
    (dict(root=3), TypeError, ["data.root=3"]),
    (dict(name="mnist"), ValueError, ["data.name='mnist'", "'fashion_mnist'"]),
])
def test_config_validation_names_field_and_value(kw: dict, exc: type, parts: list[str]):
    with pytest.raises(exc) as info:
        FashionMNISTConfig(**kw)
    for part in parts:
        assert part in str(info.value), (part, str(info.value))


def test_config_normalises_numbers_and_is_hashable(tmp_path: Path):
    cfg = FashionMNISTConfig(rotation=np.int64(30), n_train=np.int64(100), root=tmp_path)
    assert type(cfg.rotation) is float and type(cfg.n_train) is int and cfg.root == str(tmp_path)
    assert hash(cfg) == hash(FashionMNISTConfig(rotation=30.0, n_train=100, root=str(tmp_path)))
    assert FashionMNISTConfig(rotation=0, noise=0).rotation == 0.0


# ----------------------------------------------------------------------------- CNN
def test_small_cnn_shapes_and_widths():
    cfg = types.SimpleNamespace(feature_dim=24, hidden_dims=(128,))
    assert conv_widths(cfg) == DEFAULT_WIDTHS
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = build_small_cnn((1, 28, 28), cfg)
        assert net(torch.randn(5, 1, 28, 28)).shape == (5, 24)
        convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
        assert [c.out_channels for c in convs] == [16, 32]
        wide = build_small_cnn((3, 32, 32), types.SimpleNamespace(feature_dim=8,
                                                                  hidden_dims=(4, 8, 12)))
        assert [m.out_channels for m in wide.modules() if isinstance(m, torch.nn.Conv2d)] == [4, 8, 12]
        assert wide(torch.randn(2, 3, 32, 32)).shape == (2, 8)


def test_small_cnn_accepts_model_config():
    from dus_env.config import ModelConfig

    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = build_small_cnn((1, 28, 28), ModelConfig(feature_dim=16))
        assert net(torch.randn(2, 1, 28, 28)).shape == (2, 16)


@pytest.mark.parametrize("shape,dims,match", [
    ((28, 28), (16, 32), r"needs \(C, H, W\) inputs"),
    ((1, 28, 28), (4, 4, 4, 4, 4, 4), r"model.hidden_dims=\(4, 4, 4, 4, 4, 4\).*at most 4"),
])
def test_small_cnn_errors(shape: tuple, dims: tuple, match: str):
    with pytest.raises(ValueError, match=match):
        build_small_cnn(shape, types.SimpleNamespace(feature_dim=8, hidden_dims=dims))


def test_small_cnn_trains_on_the_fixture(root: Path):
    ds = fm.load_fashion_mnist(config(root, rotation=20.0, noise=0.3))
    train = ds.split("train")
    x, y = train.features["rotated"], train.labels
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = torch.nn.Sequential(
            build_small_cnn((1, 28, 28), types.SimpleNamespace(feature_dim=32, hidden_dims=())),
            torch.nn.Linear(32, 10),
        )
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    loss_fn = torch.nn.CrossEntropyLoss()
    with torch.no_grad():
        before = float(loss_fn(net(x), y))
    for _ in range(15):
        opt.zero_grad()
        loss_fn(net(x), y).backward()
        opt.step()
    with torch.no_grad():
        after = float(loss_fn(net(x), y))
    assert after < 0.6 * before, (before, after)  # ~2.3 -> ~0.8


# ----------------------------------------------------------------------------- real copy
REAL = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not (REAL / "t10k-labels-idx1-ubyte.gz").is_file(),
                    reason="dataset-fashion-mnist is not installed")
def test_the_installed_debian_copy_is_canonical():
    tr_x, tr_y, te_x, te_y = fm.load_raw(REAL, expect_canonical=True)
    assert tr_x.shape == (60000, 28, 28) and te_x.shape == (10000, 28, 28)
    assert np.bincount(tr_y).tolist() == [6000] * 10
    assert np.bincount(te_y).tolist() == [1000] * 10
