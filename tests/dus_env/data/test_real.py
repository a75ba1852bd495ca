"""Readers of the five paper benchmarks on tiny generated layouts: shapes, splits, validation
errors, skip reporting, encoders, one training step per dataset and features mode."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from dus_env.config import (
    CremadConfig, EnvConfig, FeaturesConfig, KineticsSoundsConfig, ModelConfig, NVGestureConfig,
    RewardConfig, SamplerConfig, SarcasmConfig, Twitter2015Config, config_from_dict,
    config_to_dict, get_preset,
)
from dus_env.data import make_dataset
from dus_env.data.audiovisual import kinetics_sounds_classes
from dus_env.data.base import MultimodalDataset
from dus_env.data.manifest import DatasetError
from dus_env.data.media import MediaError, hash_tokenize
from dus_env.models.encoders import ENCODERS
from tests.support import fixtures_real as fx

ENV_VARS = ("DUS_DATA_ROOT", "DUS_CREMAD_ROOT", "DUS_KS_ROOT", "DUS_TWITTER2015_ROOT",
            "DUS_SARCASM_ROOT", "DUS_NVGESTURE_ROOT", "DUS_FEATURES_PATH")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)


def _cremad(root: Path, **kw) -> CremadConfig:
    return CremadConfig(root=str(root), expect_canonical=False, image_size=16, n_frames=2,
                        val_fraction=0.34, **kw)


def _ks(root: Path, **kw) -> KineticsSoundsConfig:
    return KineticsSoundsConfig(root=str(root), image_size=16, n_frames=2, **kw)


def _twitter(root: Path, **kw) -> Twitter2015Config:
    return Twitter2015Config(root=str(root), image_size=16, max_length=8, expect_canonical=False, **kw)


def _sarcasm(root: Path, **kw) -> SarcasmConfig:
    return SarcasmConfig(root=str(root), image_size=16, max_length=8, expect_canonical=False, **kw)


def _nv(root: Path, **kw) -> NVGestureConfig:
    return NVGestureConfig(root=str(root), expect_canonical=False, val_fraction=0.5, **kw)


CASES = {
    # name: (fixture, config maker, modalities, n_classes, split sizes, shapes)
    "cremad": (fx.cremad_prepared, _cremad, ("audio", "visual"), 6, (12, 6, 6),
               {"audio": (1, 9, 7), "visual": (2, 3, 16, 16)}),
    "kinetics_sounds": (fx.kinetics_sounds_prepared, _ks, ("audio", "visual"), 31, (62, 31, 31),
                        {"audio": (1, 9, 7), "visual": (2, 3, 16, 16)}),
    "twitter2015": (fx.twitter_layout, _twitter, ("image", "text"), 3, (6, 3, 3),
                    {"image": (3, 16, 16), "text": (8,)}),
    "sarcasm": (fx.sarcasm_layout, _sarcasm, ("image", "text"), 2, (4, 2, 2),
                {"image": (3, 16, 16), "text": (8,)}),
    "nvgesture": (fx.nvgesture_prepared, _nv, ("rgb", "depth", "flow"), 25, (25, 25, 25),
                  {"rgb": (4, 3, 8, 8), "depth": (4, 1, 8, 8), "flow": (4, 2, 8, 8)}),
}


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("real")
    return {name: case[0](base / name) for name, case in CASES.items()}


@pytest.mark.parametrize("name", list(CASES))
def test_reader_shapes_splits_and_protocol(name: str, roots: dict[str, Path]) -> None:
    _, make_cfg, modalities, n_classes, sizes, shapes = CASES[name]
    ds = make_dataset(make_cfg(roots[name]))
    assert isinstance(ds, MultimodalDataset)
    assert ds.name == name and ds.modalities == modalities and ds.n_classes == n_classes
    assert len(ds.class_names) == n_classes
    assert tuple(len(ds.split(s)) for s in ("train", "val", "test")) == sizes
    assert ds.input_shapes == shapes
    for s in ("train", "val", "test"):
        split = ds.split(s)
        assert split.labels.dtype == torch.int64
        assert int(split.labels.min()) >= 0 and int(split.labels.max()) < n_classes
        for m in modalities:
            x = split.get(m, np.array([1, 0]))
            assert x.shape == (2, *shapes[m])
            assert torch.isfinite(x.float()).all()
            assert torch.equal(x[1], split.get(m, [0])[0])  # rows in the order asked
    # no sample is in two splits; every class is in train
    keys = [set(it.key for it in ds.split(s).items) for s in ("train", "val", "test")]
    assert not (keys[0] & keys[1]) and not (keys[0] & keys[2]) and not (keys[1] & keys[2])
    assert set(ds.split("train").labels.tolist()) == set(range(n_classes))


def test_val_carve_is_seeded_and_stratified(roots: dict[str, Path]) -> None:
    a = make_dataset(_cremad(roots["cremad"]))
    b = make_dataset(_cremad(roots["cremad"]))
    c = make_dataset(_cremad(roots["cremad"], split_seed=1))
    keys = lambda d: [it.key for it in d.split("val").items]  # noqa: E731
    assert keys(a) == keys(b) and keys(a) != keys(c)
    assert sorted(a.split("val").labels.tolist()) == list(range(6))  # one per class
    assert [it.key for it in a.split("test").items] == [it.key for it in c.split("test").items]


def test_frames_are_sorted_and_uniform(tmp_path: Path) -> None:
    from dus_env.data.media import uniform_indices

    assert uniform_indices(10, 3).tolist() == [1, 5, 8]
    assert uniform_indices(2, 4).tolist() == [0, 0, 1, 1]
    root = fx.cremad_prepared(tmp_path / "c")
    two = make_dataset(_cremad(root))
    one = make_dataset(dataclasses.replace(_cremad(root), n_frames=1))
    # with 2 frames on disk and n_frames=2 the frames are 00000 then 00001 (not listing order)
    x2 = two.split("test").get("visual", [0])[0]
    x1 = one.split("test").get("visual", [0])[0]
    assert torch.equal(x1[0], x2[1])  # one centred frame of two is the second


def test_root_from_environment(roots: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = dataclasses.replace(_cremad(roots["cremad"]), root=None)
    with pytest.raises(FileNotFoundError, match="DUS_CREMAD_ROOT.*DUS_DATA_ROOT"):
        make_dataset(cfg)
    monkeypatch.setenv("DUS_DATA_ROOT", str(roots["cremad"].parent))
    assert make_dataset(cfg).root == roots["cremad"]
    monkeypatch.setenv("DUS_CREMAD_ROOT", str(roots["cremad"].parent / "nowhere"))
    with pytest.raises(FileNotFoundError, match=r"nowhere.*\$DUS_CREMAD_ROOT.*prepare cremad"):
        make_dataset(cfg)


def test_missing_split_file(tmp_path: Path) -> None:
    root = fx.cremad_prepared(tmp_path / "c")
    (root / "test.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"test split file: .*test\.csv"):
        make_dataset(_cremad(root))
    tw = fx.twitter_layout(tmp_path / "t")
    (tw / "dev.tsv").unlink()
    with pytest.raises(FileNotFoundError, match=r"dev\.tsv"):
        make_dataset(_twitter(tw))
    nv = fx.nvgesture_prepared(tmp_path / "n")
    (nv / "nvgesture_test_correct_cvpr2016_v2.lst").unlink()
    with pytest.raises(FileNotFoundError, match="test list"):
        make_dataset(_nv(nv))


def test_class_counts_are_checked(tmp_path: Path) -> None:
    classes = kinetics_sounds_classes()
    assert len(classes) == 31 and len(set(classes)) == 31
    root = fx.kinetics_sounds_prepared(tmp_path / "k")
    (root / "classes.txt").write_text("\n".join((*classes, "strumming_guitar")) + "\n")
    with pytest.raises(DatasetError, match="32 classes but kinetics_sounds has 31.*strumming"):
        make_dataset(_ks(root))
    (root / "classes.txt").unlink()
    rows = (root / "train.csv").read_text().splitlines()
    (root / "train.csv").write_text("\n".join(r for r in rows if ",tickling" not in r) + "\n")
    with pytest.raises(DatasetError, match="30 of the 31 expected classes.*tickling"):
        make_dataset(_ks(root))


def test_canonical_counts(roots: dict[str, Path]) -> None:
    with pytest.raises(DatasetError, match=r"train: 18 rows \(expected 6,698\).*expect_canonical"):
        make_dataset(dataclasses.replace(_cremad(roots["cremad"]), expect_canonical=True))
    with pytest.raises(DatasetError, match=r"expected 1,050"):
        make_dataset(dataclasses.replace(_nv(roots["nvgesture"]), expect_canonical=True))


def test_malformed_rows_name_file_and_line(tmp_path: Path) -> None:
    root = fx.cremad_prepared(tmp_path / "c")
    with (root / "train.csv").open("a") as f:
        f.write("just_a_clip_name\n")
    n = len((root / "train.csv").read_text().splitlines())
    with pytest.raises(DatasetError, match=rf"train\.csv:{n}: expected 'clip,label'"):
        make_dataset(_cremad(root))
    (root / "train.csv").write_text((root / "train.csv").read_text().replace(
        "just_a_clip_name", "clipx,SURPRISE"))
    with pytest.raises(DatasetError, match=rf"train\.csv:{n}: unknown label 'SURPRISE'"):
        make_dataset(_cremad(root))

    tw = fx.twitter_layout(tmp_path / "t")
    with (tw / "test.tsv").open("a") as f:
        f.write("99\t7\t0.jpg\tbad label\tx\n")
    with pytest.raises(DatasetError, match=r"test\.tsv:5: label '7' is not a class index"):
        make_dataset(_twitter(tw))

    sc = fx.sarcasm_layout(tmp_path / "s")
    (sc / "valid.json").write_text('[{"image": "0.png", "text": "x"}]')
    with pytest.raises(DatasetError, match=r"valid\.json:record 0: expected keys"):
        make_dataset(_sarcasm(sc))
    (sc / "valid.json").write_text('[{"image": "0.png",\n "text": "x" "label": 1}]')
    with pytest.raises(DatasetError, match=r"valid\.json:2: invalid JSON"):
        make_dataset(_sarcasm(sc))

    nv = fx.nvgesture_prepared(tmp_path / "n")
    lst = nv / "nvgesture_train_correct_cvpr2016_v2.lst"
    lst.write_text(lst.read_text().replace("label:3\n", "label:30\n", 1))
    with pytest.raises(DatasetError, match=r"train_correct_cvpr2016_v2\.lst:5: label 30"):
        make_dataset(_nv(nv))


def test_missing_media_is_named(tmp_path: Path) -> None:
    root = fx.cremad_prepared(tmp_path / "c")
    victim = root / "audio" / "cliptest_SAD_0.npy"
    victim.unlink()
    with pytest.raises(FileNotFoundError, match="missing audio file .*cliptest_SAD_0.npy"):
        make_dataset(_cremad(root))
    tw = fx.twitter_layout(tmp_path / "t")
    (tw / "images" / "3.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"train\.tsv:5: missing image file .*3\.jpg"):
        make_dataset(_twitter(tw))


def test_skip_mode_counts_and_reports(tmp_path: Path) -> None:
    root = fx.cremad_prepared(tmp_path / "c")
    (root / "audio" / "cliptest_SAD_0.npy").unlink()
    with (root / "train.csv").open("a") as f:
        f.write("broken line without label\n")
    with pytest.warns(UserWarning, match="skipped 2 sample"):
        ds = make_dataset(_cremad(root, on_error="skip"))
    assert len(ds.skipped) == 2
    assert {s.split for s in ds.skipped} == {"train", "test"}
    assert any("cliptest_SAD_0.npy" in s.reason for s in ds.skipped)
    assert len(ds.split("test")) == 5


def test_corrupt_files(tmp_path: Path) -> None:
    root = fx.cremad_prepared(tmp_path / "c")
    (root / "frames" / "cliptest_HAP_0" / "00000.jpg").write_bytes(b"not a jpeg")
    (root / "audio" / "cliptest_ANG_0.npy").write_bytes(b"\x93NUMPY garbage")
    ds = make_dataset(_cremad(root))  # found lazily, when the sample is read ...
    test = ds.split("test")
    hap = [i for i, it in enumerate(test.items) if it.key == "cliptest_HAP_0"]
    with pytest.raises(MediaError, match=r"cannot decode image .*cliptest_HAP_0.*00000\.jpg"):
        test.get("visual", hap)
    with pytest.raises(MediaError, match=r"test\.csv:\d+: cannot decode image"):  # ... or up front
        make_dataset(_cremad(root, verify=True))
    with pytest.warns(UserWarning, match="skipped 2"):
        ds = make_dataset(_cremad(root, verify=True, on_error="skip"))
    assert len(ds.split("test")) == 4


def test_inconsistent_shapes_are_reported(tmp_path: Path) -> None:
    root = fx.cremad_prepared(tmp_path / "c")
    np.save(root / "audio" / "cliptest_NEU_0.npy", np.zeros((9, 5), np.float32))
    ds = make_dataset(_cremad(root))
    with pytest.raises(DatasetError, match="differ in shape .*cliptest_NEU_0"):
        ds.split("test").get("audio", np.arange(6))


def test_config_validation_and_dicts() -> None:
    with pytest.raises(ValueError, match="on_error='ignore' is not valid"):
        CremadConfig(on_error="ignore")
    with pytest.raises(ValueError, match="n_frames"):
        KineticsSoundsConfig(n_frames=0)
    with pytest.raises(ValueError, match="model.encoders='resnet19'.*Did you mean 'resnet18'"):
        ModelConfig(encoders=(("audio", "resnet19"),))
    for name in CASES:
        cfg = get_preset(name)
        assert config_from_dict(config_to_dict(cfg)) == cfg
        feat = get_preset(f"{name}_features")
        assert feat.modalities == cfg.modalities and isinstance(feat.data, FeaturesConfig)
    cfg = config_from_dict({"data": {"name": "twitter2015", "root": "/x"},
                            "model": {"encoders": [["text", "text_bag"]]}})
    assert cfg.model.encoder_for("text") == "text_bag" and hash(cfg.model)


# --------------------------------------------------------------------------- encoders
@pytest.mark.parametrize("kind,shape", [
    ("resnet18", (1, 33, 20)), ("resnet18", (2, 3, 16, 16)), ("resnet50", (3, 16, 16)),
    ("r3d18", (4, 2, 8, 8)),
])
def test_vision_encoders(kind: str, shape: tuple[int, ...]) -> None:
    enc = ENCODERS.load(kind)(shape, ModelConfig(encoder=kind, feature_dim=24))
    assert enc(torch.randn(2, *shape)).shape == (2, 24)


def test_local_resnet_matches_torchvision_layout(tmp_path: Path) -> None:
    from dus_env.models.vision import ARCHS, ResNet, resnet_trunk

    net = ResNet(*ARCHS["resnet18"], in_channels=3)
    assert sum(p.numel() for p in net.parameters()) == 11_176_512  # torchvision minus fc
    state = {k: v.clone() for k, v in net.state_dict().items()}
    state["fc.weight"] = torch.zeros(1000, 512)
    torch.save(state, tmp_path / "w.pth")
    cfg = ModelConfig(encoder="resnet18", feature_dim=512, weights=(("resnet18", str(tmp_path / "w.pth")),))
    audio = ENCODERS.load("resnet18")((1, 32, 32), cfg)  # 3-channel kernel averaged to 1 channel
    assert torch.allclose(audio.trunk.conv1.weight, state["conv1.weight"].mean(1, keepdim=True))
    assert torch.equal(audio.trunk.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])
    missing = ModelConfig(encoder="resnet18", weights=(("resnet18", str(tmp_path / "no.pth")),))
    with pytest.raises(FileNotFoundError, match="no.pth does not exist"):
        ENCODERS.load("resnet18")((3, 16, 16), missing)
    assert resnet_trunk("resnet50", 3).out_dim == 2048


def test_text_encoders_and_errors() -> None:
    ids = hash_tokenize(["Hello, world!", ""], 6)
    assert ids.shape == (2, 6) and ids[1].eq(0).all() and ids[0, :3].gt(0).all()
    assert torch.equal(ids, hash_tokenize(["hello, WORLD!", ""], 6))
    enc = ENCODERS.load("text_bag")((6,), ModelConfig(feature_dim=12))
    assert enc(ids).shape == (2, 12)
    with pytest.raises(ValueError, match="built-in hashing tokenizer"):
        enc(torch.tensor([[101, 2023, 102, 0, 0, 0]]))
    with pytest.raises(ValueError, match="local folder only.*model.weights"):
        ENCODERS.load("bert")((6,), ModelConfig())
    if importlib.util.find_spec("transformers") is None:
        cfg = ModelConfig(weights=(("bert", "/models/bert-base-uncased"),))
        with pytest.raises(ImportError, match=r"dus-env\[text\]"):
            ENCODERS.load("bert")((6,), cfg)
        with pytest.raises(ImportError, match=r"dus-env\[text\]"):
            from dus_env.data.media import hf_tokenize

            hf_tokenize(["x"], 4, "/models/bert-base-uncased")


# --------------------------------------------------------------------------- training
def _tiny_env_config(name: str, root: Path) -> EnvConfig:
    data = CASES[name][1](root)
    base = get_preset(name)
    model = dataclasses.replace(base.model, feature_dim=16)
    if name in ("twitter2015", "sarcasm"):  # BERT needs local weights; CI uses text_bag
        model = dataclasses.replace(model, encoders=(("text", "text_bag"),))
    return base.replace(
        data=data, model=model,
        sampler=SamplerConfig(base_batch_size=2, min_batch_size=1, max_batch_size=4),
        reward=RewardConfig(val_subset_size=0), total_iterations=1, iters_per_step=1,
    )


@pytest.mark.parametrize("name", list(CASES))
def test_one_training_iteration(name: str, roots: dict[str, Path]) -> None:
    from dus_env.env import DUSEnv

    env = DUSEnv(_tiny_env_config(name, roots[name]))
    obs, _ = env.reset(seed=0)
    obs2, reward, terminated, truncated, info = env.step(env.uniform_action)
    assert terminated and not truncated and np.isfinite(reward)
    assert env.observation_space.contains(obs2)


def test_features_mode_end_to_end(roots: dict[str, Path], tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from dus_env.data.features import read_meta
    from dus_env.data.prepare import prepare_features
    from dus_env.env import DUSEnv

    out = tmp_path / "cremad.npz"
    state = torch.random.get_rng_state()
    meta = prepare_features(
        "cremad", out, seed=3, batch_size=4,
        overrides=[f"data.root={roots['cremad']}", "data.expect_canonical=false",
                   "data.image_size=16", "data.val_fraction=0.34", "model.feature_dim=8"],
    )
    assert torch.equal(state, torch.random.get_rng_state())  # global RNG untouched
    assert read_meta(out)["encoders"] == {"audio": "resnet18", "visual": "resnet18"}
    assert meta["class_names"] == ["NEU", "HAP", "SAD", "FEA", "DIS", "ANG"]
    with np.load(out) as stored:
        assert stored["train/audio"].shape == (12, 8) and stored["train/audio"].dtype == np.float16
    again = tmp_path / "again.npz"
    prepare_features("cremad", again, seed=3, batch_size=5, overrides=[
        f"data.root={roots['cremad']}", "data.expect_canonical=false", "data.image_size=16",
        "data.val_fraction=0.34", "model.feature_dim=8"])
    with np.load(out) as a, np.load(again) as b:  # seeded, batch-size independent
        np.testing.assert_allclose(a["test/visual"], b["test/visual"], atol=1e-2)

    with pytest.raises(FileNotFoundError, match="DUS_FEATURES_PATH"):
        make_dataset(FeaturesConfig())
    monkeypatch.setenv("DUS_FEATURES_PATH", str(out))
    ds = make_dataset(FeaturesConfig())
    assert ds.input_shapes == {"audio": (8,), "visual": (8,)} and ds.n_classes == 6
    with pytest.raises(DatasetError, match="also for"):
        make_dataset(FeaturesConfig(modalities=("audio", "text")))
    cfg = get_preset("cremad_features").replace(
        sampler=SamplerConfig(base_batch_size=4, min_batch_size=2, max_batch_size=8),
        reward=RewardConfig(val_subset_size=0), total_iterations=4, iters_per_step=2)
    env = DUSEnv(cfg)
    env.reset(seed=0)
    for _ in range(2):
        *_, terminated, _, _ = env.step(env.uniform_action)
    assert terminated


def test_each_reader_rejects_another_datasets_config() -> None:
    from dus_env.config import MfeatConfig, SyntheticConfig
    from dus_env.data.audiovisual import load_cremad, load_kinetics_sounds
    from dus_env.data.features import load_features
    from dus_env.data.image_text import load_sarcasm, load_twitter2015
    from dus_env.data.mfeat import load_mfeat
    from dus_env.data.nvgesture import load_nvgesture

    for loader, wanted in ((load_cremad, "CremadConfig"), (load_kinetics_sounds, "KineticsSoundsConfig"),
                           (load_twitter2015, "Twitter2015Config"), (load_sarcasm, "SarcasmConfig"),
                           (load_nvgesture, "NVGestureConfig"), (load_features, "FeaturesConfig")):
        with pytest.raises(TypeError, match=f"{loader.__name__} needs a config of type {wanted}, "
                                            "got MfeatConfig"):
            loader(MfeatConfig())
    with pytest.raises(TypeError, match="load_mfeat needs a config of type MfeatConfig, got SyntheticConfig"):
        load_mfeat(SyntheticConfig())


def _png_declaring(path: Path, width: int, height: int) -> Path:
    """A small valid PNG whose header is patched to declare ``width x height`` pixels."""
    import struct
    import zlib

    from PIL import Image

    Image.new("L", (4, 4)).save(path)
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", width, height)  # IHDR's width and height
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


def test_hostile_media_files_are_media_errors_naming_the_file(tmp_path: Path) -> None:
    from PIL import Image, PngImagePlugin
    from scipy.io import wavfile

    from dus_env.data.media import load_image, load_npy, read_wav

    # images: a text chunk inflating past Pillow's limit (ValueError) and a header declaring
    # 400 M pixels (DecompressionBombError) escaped as raw Pillow errors
    info = PngImagePlugin.PngInfo()
    info.add_text("note", "a" * (2 << 20), zip=True)
    Image.new("RGB", (4, 4)).save(tmp_path / "text.png", pnginfo=info)
    bomb = _png_declaring(tmp_path / "bomb.png", 20000, 20000)
    for path in (tmp_path / "text.png", bomb):
        with pytest.raises(MediaError, match=f"cannot decode image {path}"):
            load_image(path, 8)
    # a 128-byte .npy declaring 40 TB: numpy's MemoryError, or an allocation that succeeds
    header = tmp_path / "huge.npy"
    np.save(header, np.zeros(3, np.float32))
    header.write_bytes(header.read_bytes().replace(b"(3,)", b"(10000000000000,)"))
    with pytest.raises(MediaError, match=r"huge\.npy: its header declares shape .* file holds"):
        load_npy(header)
    np.testing.assert_array_equal(load_npy(_saved(tmp_path / "ok.npy", np.arange(3.0))),
                                  np.arange(3.0))
    # WAV: a 0 Hz header (resampling then failed with a scipy ValueError), NaN samples, and
    # 8-bit PCM, which is unsigned: silence (128) must read as 0, not 0.5
    wavfile.write(tmp_path / "rate0.wav", 8000, np.zeros(80, np.int16))
    data = bytearray((tmp_path / "rate0.wav").read_bytes())
    data[24:32] = bytes(8)  # sample rate and byte rate
    (tmp_path / "rate0.wav").write_bytes(bytes(data))
    with pytest.raises(MediaError, match=r"rate0\.wav declares a sample rate of 0 Hz"):
        read_wav(tmp_path / "rate0.wav")
    wavfile.write(tmp_path / "nan.wav", 8000, np.full(80, np.nan, np.float32))
    with pytest.raises(MediaError, match=r"nan\.wav holds non-finite"):
        read_wav(tmp_path / "nan.wav")
    wavfile.write(tmp_path / "u8.wav", 8000, np.array([128, 128, 255, 0], np.uint8))
    x, rate = read_wav(tmp_path / "u8.wav")
    assert rate == 8000
    np.testing.assert_allclose(x, [0.0, 0.0, 127 / 128, -1.0])


def _saved(path: Path, array: np.ndarray) -> Path:
    np.save(path, array)
    return path


def test_a_decompression_bomb_frame_is_skipped_like_any_corrupt_frame(tmp_path: Path) -> None:
    root = fx.cremad_prepared(tmp_path / "c")
    frame = root / "frames" / "cliptest_HAP_0" / "00000.jpg"
    frame.unlink()
    _png_declaring(frame.with_suffix(".png"), 20000, 20000)
    with pytest.raises(MediaError, match=r"test\.csv:\d+: cannot decode image .*00000\.png"):
        make_dataset(_cremad(root, verify=True))
    with pytest.warns(UserWarning, match="skipped 1"):
        ds = make_dataset(_cremad(root, verify=True, on_error="skip"))
    assert "cliptest_HAP_0" not in [it.key for it in ds.split("test").items]


def test_damaged_features_files_are_dataset_errors_naming_the_file(tmp_path: Path) -> None:
    from dus_env.data.features import load_features, save_features

    rng = np.random.default_rng(0)
    arrays = {f"{s}/{m}": rng.random((6, 3)).astype(np.float16)
              for s in ("train", "val", "test") for m in ("audio", "visual")}
    arrays |= {f"{s}/labels": np.arange(6) % 2 for s in ("train", "val", "test")}
    meta = {"dataset": "toy", "modalities": ["audio", "visual"], "class_names": ["a", "b"]}
    good = save_features(tmp_path / "good.npz", arrays, meta)
    assert len(load_features(FeaturesConfig(path=str(good))).split("test")) == 6

    def refused(name: str, match: str, *, data: dict | None = None, meta_: object = meta) -> None:
        path = tmp_path / name
        if data is not None or meta_ is not meta:
            save_features(path, arrays if data is None else data, {} if meta_ is None else meta_)
        with pytest.raises(DatasetError, match=match):
            load_features(FeaturesConfig(path=str(path)))

    # every byte of the file flipped in turn: it loads (a byte zip ignores) or is refused
    # naming the file; before, zlib.error, BadZipFile and KeyError escaped
    raw = good.read_bytes()
    for offset in range(0, len(raw), 7):
        flipped = bytearray(raw)
        flipped[offset] ^= 0x55
        (tmp_path / "flipped.npz").write_bytes(bytes(flipped))
        try:
            load_features(FeaturesConfig(path=str(tmp_path / "flipped.npz")))
        except DatasetError as exc:
            assert "flipped.npz" in str(exc)
    refused("no_meta.npz", r"no_meta\.npz: meta\['modalities'\] = None", meta_={"dataset": "x"})
    refused("no_test.npz", r"no_test\.npz: entry 'test/labels' is missing",
            data={k: v for k, v in arrays.items() if not k.startswith("test/")})
    refused("rows.npz", r"entry 'train/audio' has 6 rows but train/labels has 5",
            data=arrays | {"train/labels": np.arange(5) % 2})
    refused("labels.npz", r"entry 'val/labels' holds labels in \[0, 7\]",
            data=arrays | {"val/labels": np.arange(8) % 8})
    refused("text.npz", r"entry 'test/visual' is <U1 of shape \(6,\); expected a 2-D float",
            data=arrays | {"test/visual": np.array(list("abcdef"))})
    refused("inf.npz", r"entry 'val/audio' holds non-finite",
            data=arrays | {"val/audio": np.full((6, 3), np.inf, np.float16)})
    refused("widths.npz", r"entry '\*/visual' has feature widths \[3, 4\]",
            data=arrays | {"test/visual": np.zeros((6, 4), np.float16)})


@pytest.mark.parametrize("name, split_file", [
    ("cremad", "train.csv"), ("kinetics_sounds", "val.csv"), ("twitter2015", "dev.tsv"),
    ("sarcasm", "test.json"), ("nvgesture", "nvgesture_train_correct_cvpr2016_v2.lst"),
])
def test_a_split_file_that_is_not_utf8_is_a_dataset_error_naming_it(
        name: str, split_file: str, tmp_path: Path) -> None:
    # a raw UnicodeDecodeError escaped, even with on_error="skip"
    fixture, make_cfg = CASES[name][:2]
    root = fixture(tmp_path / name)
    path = root / split_file
    path.write_bytes(path.read_bytes() + "café\n".encode("latin-1"))
    for on_error in ("raise", "skip"):
        with pytest.raises(DatasetError, match=f"{path} is not a UTF-8 text file"):
            make_dataset(make_cfg(root, on_error=on_error))


def test_a_tsv_field_past_the_csv_limit_is_a_dataset_error_naming_file_and_line(
        tmp_path: Path) -> None:
    import csv

    root = fx.twitter_layout(tmp_path / "t")
    lines = (root / "train.tsv").read_text().splitlines()
    index, label, image, text, target = lines[2].split("\t")
    lines[2] = "\t".join((index, label, image, "x" * (csv.field_size_limit() + 1), target))
    (root / "train.tsv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=r"train\.tsv:3: field larger than field limit"):
        make_dataset(_twitter(root))


def test_prepared_arrays_of_the_wrong_kind_are_media_errors_naming_the_file(
        tmp_path: Path) -> None:
    # any array np.load accepted passed data.verify and failed later in torch, naming no file
    nv = fx.nvgesture_prepared(tmp_path / "nv")
    wrong = {("rgb", 0): np.zeros((4, 8, 8), np.uint8),         # no channel axis
             ("depth", 2): np.zeros((0, 8, 8), np.uint8),       # no frames
             ("flow", 4): np.array(["a", "b"]),                 # text
             ("rgb", 6): np.zeros((4, 8, 8, 3), np.float32),    # not uint8
             ("flow", 8): np.full((4, 8, 8, 2), np.nan, np.float16)}
    for (modality, k), array in wrong.items():  # lines 0, 2, ...: one clip of classes 1..5
        np.save(nv / modality / "train" / f"{k}.npy", array)
    with pytest.raises(MediaError, match=r"\.lst:1: array file .*rgb/train/0\.npy holds uint8 "
                                         r"of shape \(4, 8, 8\); expected uint8 \(T, H, W, 3\)"):
        make_dataset(_nv(nv, verify=True))
    with pytest.warns(UserWarning, match="skipped 5"):
        assert len(make_dataset(_nv(nv, verify=True, on_error="skip")).split("test")) == 25
    ds = make_dataset(_nv(nv))  # found when read
    (split, row), = [(s, i) for s in ("train", "val") for i, item in enumerate(ds.split(s).items)
                     if item.media["flow"] == nv / "flow" / "train" / "8.npy"]
    with pytest.raises(MediaError, match=r"flow/train/8\.npy holds non-finite"):
        ds.split(split).get("flow", [row])
    cr = fx.cremad_prepared(tmp_path / "cr")
    np.save(cr / "audio" / "cliptest_ANG_0.npy", np.array(["x", "y"]))
    with pytest.raises(MediaError, match=r"cliptest_ANG_0\.npy holds <U1 of shape \(2,\); "
                                         r"expected float \(F, T\)"):
        make_dataset(_cremad(cr, verify=True))


def test_resnet_encoders_start_the_same_with_or_without_torchvision(monkeypatch) -> None:
    # where torchvision imported, its ResNet was built: other random draws, so one seed gave
    # other starting weights on machines with the extra (and a shared reference cache mixed them)
    import sys
    import types

    from dus_env.seeding import torch_rng

    def build():
        with torch_rng(0, "cpu"):
            return ENCODERS.load("resnet18")((1, 16, 16), ModelConfig(encoder="resnet18"))

    without = build()
    fake = types.ModuleType("torchvision")
    fake.models = types.ModuleType("torchvision.models")

    def refuse(**kwargs):
        raise AssertionError("torchvision's ResNet was built")

    fake.models.resnet18 = fake.models.resnet50 = refuse
    monkeypatch.setitem(sys.modules, "torchvision", fake)
    monkeypatch.setitem(sys.modules, "torchvision.models", fake.models)
    with_it = build()
    for (name, a), (_, b) in zip(without.state_dict().items(), with_it.state_dict().items()):
        assert torch.equal(a, b), name
