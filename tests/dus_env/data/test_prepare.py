"""Preprocessing scripts on tiny generated raw downloads: outputs, resumability, errors, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.support import fixtures_real as fx
from dus_env.config import (
    CremadConfig, KineticsSoundsConfig, NVGestureConfig, SarcasmConfig, Twitter2015Config,
)
from dus_env.data import make_dataset
from dus_env.data.audiovisual import kinetics_sounds_classes
from dus_env.data.flow import horn_schunck
from dus_env.data.manifest import DatasetError
from dus_env.data.media import log_spectrogram
from dus_env.data.prepare import (
    audio_features, main, prepare_cremad, prepare_kinetics_sounds, prepare_nvgesture,
    prepare_sarcasm, prepare_twitter2015,
)


def test_log_spectrogram_matches_torch_stft() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, 22050 * 3)
    ours = log_spectrogram(x, 512, 353)
    assert ours.shape == (257, 188)  # OGM-GE's CREMA-D spectrogram
    ref = torch.stft(torch.from_numpy(x), 512, 353, window=torch.hann_window(512, dtype=torch.float64),
                     center=True, pad_mode="constant", return_complex=True).abs()
    np.testing.assert_allclose(ours, np.log(ref.numpy() + 1e-7), atol=1e-4)


def test_cremad_prepare_load_and_resume(tmp_path: Path) -> None:
    raw = fx.cremad_raw(tmp_path / "raw")
    out = tmp_path / "out"
    assert prepare_cremad(raw, out) == {"train": 18, "test": 6}
    spec = np.load(out / "audio" / "10train_NEU_0.npy")
    assert spec.shape == (257, 188) and spec.dtype == np.float32
    # 16 kHz 0.5 s input: resampled to 22,050 Hz, tiled x3 then to 3 s; same as doing it by hand
    np.testing.assert_allclose(spec, audio_features(raw / "AudioWAV" / "10train_NEU_0.wav",
                                                    22050, 3.0, 3, 512, 353))
    assert sorted(p.name for p in (out / "frames" / "10train_NEU_0").iterdir()) == [
        "00000.jpg", "00001.jpg"]
    ds = make_dataset(CremadConfig(root=str(out), expect_canonical=False, image_size=16,
                                   val_fraction=0.34))
    assert ds.input_shapes == {"audio": (1, 257, 188), "visual": (1, 3, 16, 16)}
    # resumable: existing outputs are kept, a deleted one is rebuilt
    stamp = (out / "audio" / "10train_NEU_0.npy").stat().st_mtime_ns
    (out / "audio" / "10test_ANG_0.npy").unlink()
    prepare_cremad(raw, out)
    assert (out / "audio" / "10train_NEU_0.npy").stat().st_mtime_ns == stamp
    assert (out / "audio" / "10test_ANG_0.npy").is_file()
    assert not list(out.rglob("*.partial*"))


def test_cremad_split_lists_required_or_seeded(tmp_path: Path) -> None:
    raw = fx.cremad_raw(tmp_path / "raw")
    for f in ("train.csv", "test.csv"):
        (raw / f).unlink()
    with pytest.raises(FileNotFoundError, match="--make-split"):
        prepare_cremad(raw, tmp_path / "out")
    # clip names carry the emotion in their third field, as in CREMA-D (1001_DFA_ANG_XX)
    for wav in (raw / "AudioWAV").glob("*.wav"):
        prefix, emotion, k = wav.stem.split("_")
        wav.rename(wav.with_name(f"{prefix}_{k}_{emotion}_XX.wav"))
        (raw / "Image-01-FPS" / wav.stem).rename(raw / "Image-01-FPS" / f"{prefix}_{k}_{emotion}_XX")
    a = prepare_cremad(raw, tmp_path / "a", make_split_seed=0)
    prepare_cremad(raw, tmp_path / "b", make_split_seed=0)
    assert a == {"train": 18, "test": 6}
    assert (tmp_path / "a" / "test.csv").read_text() == (tmp_path / "b" / "test.csv").read_text()


def test_cremad_missing_raw_media(tmp_path: Path) -> None:
    raw = fx.cremad_raw(tmp_path / "raw")
    (raw / "AudioWAV" / "10test_SAD_0.wav").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing audio file .*10test_SAD_0\.wav"):
        prepare_cremad(raw, tmp_path / "out")
    raw2 = fx.cremad_raw(tmp_path / "raw2")
    import shutil

    shutil.rmtree(raw2 / "Image-01-FPS" / "10test_SAD_0")
    with pytest.raises(FileNotFoundError, match="no frames for clip '10test_SAD_0'"):
        prepare_cremad(raw2, tmp_path / "out2")
    (raw2 / "AudioWAV" / "10test_HAP_0.wav").write_bytes(b"RIFF....junk")
    from dus_env.data.media import MediaError

    with pytest.raises(MediaError, match=r"10test_HAP_0\.wav"):
        prepare_cremad(raw2, tmp_path / "out3")


def test_kinetics_sounds_prepare_from_ogm_ge_lists(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    from scipy.io import wavfile

    classes = kinetics_sounds_classes()
    lines = {"my_train.txt": [], "my_test.txt": []}
    for c, name in enumerate(classes):
        for split, n in (("my_train.txt", 2), ("my_test.txt", 1)):
            for k in range(n):
                clip = f"yt{c}_{split[3:5]}{k}_0_10"
                lines[split].append(f"{clip},{c},{name.replace('_', ' ')}")
                (raw / "audio").mkdir(parents=True, exist_ok=True)
                wavfile.write(raw / "audio" / f"{clip}.wav", 8000,
                              (np.sin(np.arange(4000) * 0.1 * (c + 1)) * 1e4).astype(np.int16))
                fx._frames(raw / "visual" / clip, 3, seed=c)
    for name, rows in lines.items():
        (raw / name).write_text("\n".join(rows) + "\n")
    counts = prepare_kinetics_sounds(raw, tmp_path / "out", seconds=1.0)
    assert counts == {"train": 62, "test": 31}
    assert (tmp_path / "out" / "classes.txt").read_text().split() == list(classes)
    ds = make_dataset(KineticsSoundsConfig(root=str(tmp_path / "out"), image_size=16,
                                           val_fraction=0.5))
    assert ds.input_shapes["audio"] == (1, 257, 63)
    (raw / "my_test.txt").write_text("ytX,0,strumming guitar\n")
    with pytest.raises(DatasetError, match="unknown label 'strumming guitar'"):
        prepare_kinetics_sounds(raw, tmp_path / "out2", seconds=1.0)


def test_twitter_and_sarcasm_prepare(tmp_path: Path) -> None:
    tw_raw = fx.twitter_layout(tmp_path / "tw_raw")
    (tw_raw / "images").rename(tw_raw / "twitter2015_images")  # as TomBERT ships them
    assert prepare_twitter2015(tw_raw, tmp_path / "tw") == {"train": 6, "dev": 3, "test": 3}
    ds = make_dataset(Twitter2015Config(root=str(tmp_path / "tw"), image_size=16,
                                        expect_canonical=False))
    assert len(ds.split("train")) == 6

    sc_raw = tmp_path / "sc_raw"
    (sc_raw / "text").mkdir(parents=True)
    fx.sarcasm_layout(tmp_path / "sc_json")
    for split, fname in (("train", "train.txt"), ("valid", "valid2.txt"), ("test", "test2.txt")):
        recs = json.loads((tmp_path / "sc_json" / f"{split}.json").read_text())
        (sc_raw / "text" / fname).write_text("".join(
            repr([r["image"].removesuffix(".png"), r["text"], 0, r["label"]]) + "\n" for r in recs))
    (tmp_path / "sc_json" / "images").rename(sc_raw / "dataset_image")
    for img in (sc_raw / "dataset_image").iterdir():
        img.rename(img.with_suffix(".jpg"))
    assert prepare_sarcasm(sc_raw, tmp_path / "sc") == {"train": 4, "valid": 2, "test": 2}
    ds = make_dataset(SarcasmConfig(root=str(tmp_path / "sc"), image_size=16,
                                    expect_canonical=False))
    assert ds.split("test").labels.tolist() == [0, 1]
    (sc_raw / "text" / "test2.txt").write_text("not a list\n")
    with pytest.raises(DatasetError, match=r"test2\.txt:1"):
        prepare_sarcasm(sc_raw, tmp_path / "sc2")


def test_horn_schunck_recovers_a_shift() -> None:
    yy, xx = np.mgrid[:24, :24]
    blob = lambda dx, dy: np.exp(-((xx - 10 - dx) ** 2 + (yy - 12 - dy) ** 2) / 8.0)  # noqa: E731
    flow = horn_schunck(blob(0, 0), blob(0, 1))
    mask = blob(0, 0) > 0.2
    assert abs(flow[..., 0][mask].mean()) < 0.1 and 0.7 < flow[..., 1][mask].mean() < 1.3


def test_nvgesture_prepare_with_flow(tmp_path: Path) -> None:
    raw = fx.nvgesture_raw(tmp_path / "raw")
    out = tmp_path / "out"
    assert prepare_nvgesture(raw, out, n_frames=3, size=24) == {"train": 50, "test": 25}
    flow = np.load(out / "flow" / "train" / "0.npy")
    assert flow.shape == (3, 24, 24, 2) and flow.dtype == np.float16
    rgb = np.load(out / "rgb" / "train" / "0.npy")
    mask = rgb[0, ..., 0] > 50
    assert flow[0, ..., 0][mask].mean() > 0.5  # the blob moves right
    assert np.load(out / "depth" / "test" / "3.npy").shape == (3, 24, 24)
    assert not (out / "_frames").exists()
    ds = make_dataset(NVGestureConfig(root=str(out), expect_canonical=False, val_fraction=0.5))
    assert ds.input_shapes == {"rgb": (3, 3, 24, 24), "depth": (3, 1, 24, 24),
                               "flow": (3, 2, 24, 24)}


def test_cli_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = fx.cremad_raw(tmp_path / "raw")
    assert main(["cremad", "--raw", str(raw), "--out", str(tmp_path / "out"),
                 "--seconds", "1"]) == 0
    text = capsys.readouterr().out
    assert "wrote" in text and "loaded with the cremad reader" in text
    assert "'audio': (1, 257, 63)" in text
    assert main(["features", "--preset", "cremad", "--out", str(tmp_path / "f.npz"),
                 "--set", f"data.root={tmp_path / 'out'}", "--set", "data.expect_canonical=false",
                 "--set", "data.image_size=16", "--set", "model.feature_dim=4",
                 "--set", "data.val_fraction=0.34"]) == 0
    assert "cremad_features" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["cremad", "--raw", str(raw)])
