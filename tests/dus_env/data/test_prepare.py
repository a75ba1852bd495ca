"""Preprocessing scripts on tiny generated raw downloads: outputs, resumability, errors, CLI."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.support import fixtures_real as fx
from tests.support.faults import interrupt_on_call
from dus_agents.cli import common as cli
from dus_env.config import (
    CremadConfig, KineticsSoundsConfig, NVGestureConfig, SarcasmConfig, Twitter2015Config,
)
from dus_env.data import make_dataset
from dus_env.data.audiovisual import kinetics_sounds_classes
from dus_env.data.flow import horn_schunck
from dus_env.data.manifest import DatasetError
from dus_env.data.media import MediaError, log_spectrogram
from dus_env.data.prepare import (
    audio_features, check_prepared, prepare, prepare_cremad, prepare_kinetics_sounds,
    prepare_nvgesture, prepare_sarcasm, prepare_twitter2015, staging_folder,
)
from dus_agents.cli.prepare import (
    COMMANDS, AudioVisualArgs, CremadArgs, FeaturesArgs, KineticsSoundsArgs, NVGestureArgs,
    PrepareArgs, SarcasmArgs, Twitter2015Args, build_parser, main,
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



def test_nvgesture_videos_of_the_same_take_in_two_classes_keep_their_own_frames(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the raw layout names a take subjectY_rZ inside every class folder: frames ffmpeg
    # extracted from class_01's videos were reused for class_02's take of the same name
    fx.fake_ffmpeg(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    raw = fx.nvgesture_raw(tmp_path / "raw")
    colours = {1: (250, 0, 0), 2: (0, 0, 250)}
    for c, colour in colours.items():
        folder = raw / "Video_data" / f"class_{c:02d}" / "subject0_rtr"
        for stream in ("sk_color", "sk_depth"):
            shutil.rmtree(folder / stream)
            fx.fake_video(folder / f"{stream}.avi", colour)
    lines = (raw / fx.NV_LISTS["train"]).read_text().splitlines()
    lines = [ln.replace(":1:7", ":0:2") for ln in lines]  # the fake videos have two frames
    (raw / fx.NV_LISTS["train"]).write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    prepare_nvgesture(raw, out, n_frames=2, size=8)
    for c, colour in colours.items():
        k = lines.index(next(ln for ln in lines if f"class_{c:02d}/subject0_rtr " in ln))
        rgb = np.load(out / "rgb" / "train" / f"{k}.npy")
        np.testing.assert_allclose(rgb.reshape(-1, 3).mean(axis=0), colour, atol=2)


def test_nvgesture_flow_of_a_still_scene_is_zero(tmp_path: Path) -> None:
    # the flow pair went through two greyscale conversions (mean of RGB, then PIL's "L"),
    # so a still coloured scene moved by up to 1.5 pixels a frame
    raw = fx.nvgesture_raw(tmp_path / "raw")
    yy, xx = np.mgrid[:24, :24]
    blob = np.exp(-((xx - 12) ** 2 + (yy - 12) ** 2) / 20.0)  # a red blob on green, not moving
    still = np.stack([blob * 250, (1 - blob) * 200, np.full_like(blob, 30)], -1).astype(np.uint8)
    for frame in (raw / "Video_data").rglob("sk_color/*.jpg"):
        frame.unlink()
        Image.fromarray(still).save(frame.with_suffix(".png"))
    out = tmp_path / "out"
    prepare_nvgesture(raw, out, n_frames=3, size=24)
    assert np.abs(np.load(out / "flow" / "train" / "0.npy").astype(np.float32)).max() == 0.0


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


# --------------------------------------------------------------------------- hostile-user review
# Exit statuses: 2 for a bad command line (one line, nothing read or written), 1 for bad data
# (one line naming the file; --out absent or as it was, the work so far in OUT.partial).


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``main(argv)``, SystemExit included."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    except KeyboardInterrupt:  # not turned into exit status 130: fail the test, not the session
        code = "KeyboardInterrupt escaped main()"
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_line(err: str) -> str:
    """The single stderr line of a failed run (and that there is exactly one, no traceback)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and lines[0].startswith("python -m dus_agents.cli.prepare: error: ")
    return lines[0]


def _tree(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file under ``root``: (inode, mtime, bytes), to compare a folder before and after."""
    return {str(p.relative_to(root)): (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(root.rglob("*")) if p.is_file()}


def _cremad(raw: Path, out: Path, *extra: str) -> list[str]:
    return ["cremad", "--raw", str(raw), "--out", str(out), "--seconds", "1", *extra]


# ---- item 1: the toolkit, one dataclass per sub-command
def test_cli_is_one_dataclass_per_subcommand() -> None:
    assert issubclass(CremadArgs, AudioVisualArgs) and issubclass(KineticsSoundsArgs, AudioVisualArgs)
    for cls in (AudioVisualArgs, Twitter2015Args, SarcasmArgs, NVGestureArgs):
        assert issubclass(cls, PrepareArgs)
    assert set(COMMANDS) == {"cremad", "kinetics_sounds", "twitter2015", "sarcasm", "nvgesture",
                             "features"}
    sub = next(a for a in build_parser()._actions if a.dest == "dataset")
    for name, cls in COMMANDS.items():
        flags = {s for a in sub.choices[name]._actions for s in a.option_strings} - {"-h", "--help"}
        expected = {cli.flag_name(f.name) for f in dataclasses.fields(cls)}
        expected |= {f"--no-{f.name}" for f in dataclasses.fields(cls) if f.type in (bool, "bool")}
        assert flags == expected, name
    assert {f.name for f in dataclasses.fields(PrepareArgs)} == {"raw", "out", "check"}
    assert {f.name for f in dataclasses.fields(AudioVisualArgs)} - {"raw", "out", "check"} == {
        "sample_rate", "seconds", "n_fft", "hop"}
    assert {f.name for f in dataclasses.fields(FeaturesArgs)} == {
        "preset", "out", "set", "weights", "seed", "batch_size", "device"}
    # the defaults of the old parser are kept (Kinetics-Sounds: 10 s; NVGesture: 16 x 112)
    assert KineticsSoundsArgs(raw="r", out="o").seconds == 10.0
    assert CremadArgs(raw="r", out="o").seconds == 3.0
    assert (NVGestureArgs(raw="r", out="o").frames, NVGestureArgs(raw="r", out="o").size) == (16, 112)


def test_cli_help_lists_every_flag(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["cremad", "--help"], capsys)
    assert code == 0
    for flag in ("--raw RAW", "--out OUT", "--check, --no-check", "--sample-rate N", "--seconds X",
                 "--n-fft N", "--hop N", "--make-split SEED", "(default: 353)"):
        assert flag in out
    code, out, _ = _run(["features", "--help"], capsys)
    assert code == 0 and "--set KEY=VALUE" in out and "--weights KIND=PATH" in out


def test_cli_check_and_no_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = fx.cremad_raw(tmp_path / "raw")
    code, out, _ = _run(_cremad(raw, tmp_path / "a", "--check"), capsys)
    assert code == 0 and "loaded with the cremad reader" in out and "decoded all" in out
    code, out, _ = _run(_cremad(raw, tmp_path / "b", "--no-check"), capsys)  # as before
    assert code == 0 and "wrote" in out and "loaded with" not in out
    assert _tree(tmp_path / "a").keys() == _tree(tmp_path / "b").keys()
    assert not staging_folder(tmp_path / "a").exists() and not staging_folder(tmp_path / "b").exists()


@pytest.mark.parametrize("argv, needle", [
    (["cremad", "--raw", "R"], "the following arguments are required: --out"),
    (["cremad", "--out", "O"], "the following arguments are required: --raw"),
    (["cremad", "--raw", "R", "--out", "O", "--bogus"], "unrecognized arguments: --bogus"),
    (["cremad", "--raw", "R", "--out", "O", "--hop", "x"], "argument --hop: invalid int value: 'x'"),
    (["nvgesture", "--raw", "R", "--out", "O", "--flow", "hs"], "invalid choice: 'hs'"),
    (["cremadd", "--raw", "R", "--out", "O"], "invalid choice: 'cremadd'"),
    ([], "the following arguments are required: DATASET"),
    (["features", "--out", "F.npz"], "the following arguments are required: --preset"),
])
def test_cli_usage_errors_are_one_line(argv: list[str], needle: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(argv, capsys)
    assert code == 2
    line = _one_line(err)
    assert needle in line and "--help" in line and "usage:" not in err


# ---- item 2: validation up front, before anything is written
def _bad_cases(tmp: Path) -> list[tuple[list[str], list[str]]]:
    raw = fx.cremad_raw(tmp / "raw")
    nv = fx.nvgesture_raw(tmp / "nvraw")
    (tmp / "file.txt").write_text("not a folder")
    (tmp / "empty").mkdir()
    out = str(tmp / "out")
    c = lambda *a: ["cremad", "--raw", str(raw), "--out", out, *a]  # noqa: E731
    n = lambda *a: ["nvgesture", "--raw", str(nv), "--out", out, *a]  # noqa: E731
    return [
        (["cremad", "--raw", str(tmp / "file.txt"), "--out", out],
         [f"--raw={tmp / 'file.txt'} is a file, not a folder", "AudioWAV/"]),
        (["cremad", "--raw", str(tmp / "nowhere"), "--out", out],
         [f"--raw={tmp / 'nowhere'} does not exist", "train.csv"]),
        (["cremad", "--raw", str(tmp / "empty"), "--out", out],
         [f"--raw={tmp / 'empty'} is an empty folder",
          "expected the raw cremad download: AudioWAV/<clip>.wav", "train.csv and test.csv"]),
        (["twitter2015", "--raw", str(tmp / "empty"), "--out", out],
         ["is an empty folder", "train.tsv, dev.tsv, test.tsv"]),
        (["nvgesture", "--raw", str(raw), "--out", out],
         ["has no nvgesture_train_correct_cvpr2016_v2.lst"]),
        (["cremad", "--raw", "", "--out", out], ["--raw='' is empty"]),
        (c("--hop", "0"), ["--hop=0 is out of range; valid range: [1, "]),
        (c("--n-fft", "0"), ["--n-fft=0 is out of range; valid range: [2, "]),
        (c("--sample-rate", "0"), ["--sample-rate=0 is out of range; valid range: [1000, "]),
        (c("--seconds", "0"), ["--seconds=0.0 is out of range; valid range: (0, "]),
        (c("--seconds", "-1"), ["--seconds=-1.0 is out of range; valid range: (0, "]),
        (c("--seconds", "nan"), ["--seconds=nan is out of range"]),
        (c("--seconds", "inf"), ["--seconds=inf is out of range"]),
        (c("--make-split", "-1"), ["--make-split=-1 is out of range; valid range: [0, "]),
        (n("--frames", "0"), ["--frames=0 is out of range; valid range: [1, "]),
        (n("--size", "0"), ["--size=0 is out of range; valid range: [8, "]),
        (["cremad", "--raw", str(raw), "--out", str(tmp / "file.txt")],
         [f"--out={tmp / 'file.txt'} is a file; give the folder to write"]),
        (["cremad", "--raw", str(raw), "--out", str(tmp / "file.txt" / "sub")],
         [f"--out={tmp / 'file.txt' / 'sub'} is inside the file {tmp / 'file.txt'}"]),
        (["cremad", "--raw", str(raw), "--out", str(raw)], ["is the --raw folder"]),
        (["features", "--preset", "cremad", "--out", str(tmp / "f.npz"), "--batch-size", "0"],
         ["--batch-size=0 is out of range; valid range: [1, inf]"]),
        (["features", "--preset", "cremad", "--out", str(tmp)], [f"--out={tmp} is a folder"]),
        (["features", "--preset", "cremad", "--out", str(tmp / "file.txt" / "f.npz")],
         ["is inside the file"]),
        (["features", "--preset", "cremadd", "--out", str(tmp / "f.npz")],
         ["--preset='cremadd' is not valid; valid choices", "Did you mean 'cremad'?"]),
        (["features", "--preset", "cremad", "--out", str(tmp / "f.npz"), "--set", "data.nope=1"],
         ["--set: unknown config key 'data.nope'"]),
        (["features", "--preset", "cremad", "--out", str(tmp / "f.npz"), "--weights", "resnet18"],
         ["--weights='resnet18': expected KIND=PATH"]),
        (["features", "--preset", "cremad", "--out", str(tmp / "f.npz"), "--device", "gpu"],
         ["--device='gpu' is not a torch device"]),
    ]


def test_cli_refuses_bad_values_up_front(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv, needles in _bad_cases(tmp_path):
        before = sorted(p.name for p in tmp_path.iterdir())
        code, out, err = _run(argv, capsys)
        assert code == 2, (argv, err)
        line = _one_line(err)
        for needle in needles:
            assert needle in line, (argv, line)
        assert out == ""
        assert sorted(p.name for p in tmp_path.iterdir()) == before, argv  # nothing written


def test_cli_missing_split_lists_name_make_split(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    raw = fx.cremad_raw(tmp_path / "raw")
    (raw / "test.csv").unlink()
    code, _, err = _run(_cremad(raw, tmp_path / "out"), capsys)
    assert code == 2 and "has no train.csv and test.csv (or pass --make-split SEED)" in _one_line(err)
    assert not (tmp_path / "out").exists()


# ---- item 3: decoding failures while preparing: one line naming the file, no partial output
def _assert_data_error(code: int, err: str, out: Path, *needles: str) -> str:
    assert code == 1, err
    line = _one_line(err)
    for needle in needles:
        assert needle in line, line
    assert not out.exists(), "a failed run must not leave a partial --out folder"
    stage = staging_folder(out)
    assert not stage.exists() or not list(stage.rglob("*.partial"))  # no half-written file kept
    return line


@pytest.mark.parametrize("damage, needle", [
    (lambda raw: fx.garble(raw / "AudioWAV" / "10test_HAP_0.wav"), "cannot decode WAV file"),
    (lambda raw: fx.truncate(raw / "AudioWAV" / "10test_HAP_0.wav", 0.3), "it is truncated"),
    (lambda raw: fx.truncate(raw / "Image-01-FPS" / "10test_HAP_0" / "00001.jpg"), "cannot decode image"),
    (lambda raw: fx.corrupt_png(raw / "Image-01-FPS" / "10test_HAP_0" / "00001.jpg"), "cannot decode image"),
])
def test_cli_corrupt_raw_audio_or_frame(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        damage, needle: str) -> None:
    raw = fx.cremad_raw(tmp_path / "raw")
    bad = damage(raw)
    out = tmp_path / "out"
    code, _, err = _run(_cremad(raw, out), capsys)
    line = _assert_data_error(code, err, out, needle, str(bad), f"{out} was not created")
    assert str(staging_folder(out)) in line  # where the work so far is kept
    # the clip with the bad file was not half-written: no spectrogram or no frame folder for it
    stage = staging_folder(out)
    assert not (stage / "frames" / "10test_HAP_0").exists() or not (
        stage / "audio" / "10test_HAP_0.npy").exists()
    # fixing the raw file and rerunning resumes from the staged work and publishes
    shutil.rmtree(raw)
    fx.cremad_raw(raw)
    code, text, err = _run(_cremad(raw, out), capsys)
    assert code == 0, err
    assert "decoded all" in text and not stage.exists()
    assert sorted(p.name for p in (out / "frames" / "10test_HAP_0").iterdir()) == ["00000.jpg", "00001.jpg"]


@pytest.mark.parametrize("dataset", ["twitter2015", "sarcasm"])
def test_cli_corrupt_raw_image(tmp_path: Path, capsys: pytest.CaptureFixture[str], dataset: str) -> None:
    if dataset == "twitter2015":
        raw = fx.twitter_layout(tmp_path / "raw")
        bad = fx.truncate(raw / "images" / "7.jpg")
    else:
        raw = fx.sarcasm_layout(tmp_path / "raw")
        bad = fx.corrupt_png(raw / "images" / "6.png")
    out = tmp_path / "out"
    code, _, err = _run([dataset, "--raw", str(raw), "--out", str(out)], capsys)
    _assert_data_error(code, err, out, "cannot decode image", str(bad))
    assert not (staging_folder(out) / "images" / bad.name).exists()  # never copied


def test_cli_corrupt_nvgesture_frame(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = fx.nvgesture_raw(tmp_path / "raw")
    bad = fx.truncate(raw / "Video_data" / "class_01" / "subject0_rtr" / "sk_color" / "00003.jpg")
    out = tmp_path / "out"
    code, _, err = _run(["nvgesture", "--raw", str(raw), "--out", str(out), "--frames", "3",
                         "--size", "24"], capsys)
    _assert_data_error(code, err, out, "cannot decode image", str(bad))


def test_cli_corrupt_video(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                           monkeypatch: pytest.MonkeyPatch) -> None:
    fx.fake_ffmpeg(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    raw = fx.cremad_raw(tmp_path / "raw")
    for clip in ("10test_HAP_0", "10test_SAD_0"):  # these two clips come as videos
        shutil.rmtree(raw / "Image-01-FPS" / clip)
        fx.fake_video(raw / "VideoFlash" / f"{clip}.flv")
    out = tmp_path / "ok"
    code, _, err = _run(_cremad(raw, out), capsys)
    assert code == 0, err
    assert sorted(p.name for p in (out / "frames" / "10test_HAP_0").iterdir()) == ["00001.jpg", "00002.jpg"]
    bad = fx.garble(raw / "VideoFlash" / "10test_SAD_0.flv")
    out = tmp_path / "out"
    code, _, err = _run(_cremad(raw, out), capsys)
    line = _assert_data_error(code, err, out, f"cannot decode video {bad}", "exited with status 1",
                              "Invalid data found when processing input")
    assert "CalledProcessError" not in line
    assert not (staging_folder(out) / "frames" / "10test_SAD_0").exists()
    assert not list(staging_folder(out).rglob("*.partial"))


def test_cli_failure_leaves_an_existing_out_as_it_was(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    raw = fx.cremad_raw(tmp_path / "raw")
    out = tmp_path / "out"
    assert _run(_cremad(raw, out), capsys)[0] == 0
    (out / "notes.txt").write_text("mine")  # not part of the layout: never touched
    before = _tree(out)
    # a new clip whose WAV is corrupt: the old code rewrote OUT/train.csv with it, then crashed
    with (raw / "train.csv").open("a") as handle:
        handle.write("10train_NEU_9,NEU\n")
    fx.garble(raw / "AudioWAV" / "10train_NEU_9.wav")
    shutil.copytree(raw / "Image-01-FPS" / "10train_NEU_0", raw / "Image-01-FPS" / "10train_NEU_9")
    code, _, err = _run(_cremad(raw, out), capsys)
    assert code == 1
    line = _one_line(err)
    assert "10train_NEU_9.wav" in line and f"{out} was left as it was" in line
    assert _tree(out) == before
    # repaired: the rerun keeps every earlier output (same inode, same mtime) and adds the clip
    shutil.copy(raw / "AudioWAV" / "10train_NEU_0.wav", raw / "AudioWAV" / "10train_NEU_9.wav")
    code, _, err = _run(_cremad(raw, out), capsys)
    assert code == 0, err
    after = _tree(out)
    for name in ("audio/10train_NEU_0.npy", "frames/10train_NEU_0/00000.jpg", "notes.txt"):
        assert after[name] == before[name]
    assert "audio/10train_NEU_9.npy" in after and "10train_NEU_9,NEU" in (out / "train.csv").read_text()
    assert not staging_folder(out).exists()


def test_cli_refuses_to_mix_outputs_made_with_other_options(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a rerun with other options kept the old outputs (existing files are never rebuilt) and
    # added new ones: a published folder of 1 s and 2 s spectrograms, which the check passed
    raw = fx.cremad_raw(tmp_path / "raw")
    out = tmp_path / "out"
    assert _run(_cremad(raw, out), capsys)[0] == 0
    assert json.loads((out / "prepare.json").read_text())["options"]["seconds"] == 1.0
    before = _tree(out)
    code, _, err = _run(_cremad(raw, out)[:-2] + ["--seconds", "2"], capsys)
    assert code == 1 and _tree(out) == before
    assert (f"{out} was prepared with other settings (seconds: 1.0 there, 2.0 now)"
            in _one_line(err))
    assert _run(_cremad(raw, out), capsys)[0] == 0  # the same options: resumed, same bytes
    assert {k: v[2] for k, v in _tree(out).items()} == {k: v[2] for k, v in before.items()}
    # a failed run's staging folder: resumed with the same options only
    fresh = tmp_path / "fresh"
    wav = raw / "AudioWAV" / "10test_ANG_0.wav"
    good = wav.read_bytes()
    fx.garble(wav)
    assert _run(_cremad(raw, fresh), capsys)[0] == 1 and staging_folder(fresh).is_dir()
    wav.write_bytes(good)
    code, _, err = _run(_cremad(raw, fresh)[:-2] + ["--seconds", "2"], capsys)
    assert code == 1 and not fresh.exists()
    assert f"{staging_folder(fresh)} was prepared with other settings" in _one_line(err)
    assert _run(_cremad(raw, fresh), capsys)[0] == 0
    shapes = {np.load(p).shape for p in (fresh / "audio").iterdir()}
    assert shapes == {(257, 63)} and not staging_folder(fresh).exists()


def test_cli_bad_list_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = fx.cremad_raw(tmp_path / "raw")
    (raw / "test.csv").write_bytes(b"\xff\xfe\x00binary")
    code, _, err = _run(_cremad(raw, tmp_path / "out"), capsys)
    _assert_data_error(code, err, tmp_path / "out", f"{raw / 'test.csv'} is not a UTF-8 text file")
    (raw / "test.csv").write_text("../../escape,NEU\n")  # a clip name must not leave OUT
    code, _, err = _run(_cremad(raw, tmp_path / "out"), capsys)
    _assert_data_error(code, err, tmp_path / "out", "is not a plain file name")
    assert not (tmp_path / "escape.npy").exists()
    sc = fx.sarcasm_layout(tmp_path / "sc")
    (sc / "valid.json").write_text("[{\"image\": 1")
    code, _, err = _run(["sarcasm", "--raw", str(sc), "--out", str(tmp_path / "sc_out")], capsys)
    _assert_data_error(code, err, tmp_path / "sc_out", f"{sc / 'valid.json'}:1: invalid JSON")
    tw = fx.twitter_layout(tmp_path / "tw")  # a field past the csv module's limit: a traceback
    with (tw / "dev.tsv").open("a") as handle:
        handle.write(f"99\t0\t0.jpg\t{'x' * 200_000}\tthe city\n")
    code, _, err = _run(["twitter2015", "--raw", str(tw), "--out", str(tmp_path / "tw_out")],
                        capsys)
    _assert_data_error(code, err, tmp_path / "tw_out",
                       f"{tw / 'dev.tsv'}:5: field larger than field limit")


# ---- item 4: the final check decodes every media file before publishing
def test_cli_check_decodes_every_prepared_file(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    raw = fx.cremad_raw(tmp_path / "raw")
    out = tmp_path / "out"
    assert _run(_cremad(raw, out), capsys)[0] == 0
    # a frame in OUT damaged after an earlier run: the resumed run keeps it (it exists), and
    # before this review its check passed; it was found only by a later verify=True load
    bad = fx.truncate(out / "frames" / "10train_SAD_1" / "00001.jpg")
    before = _tree(out)
    code, _, err = _run(_cremad(raw, out), capsys)
    assert code == 1
    line = _one_line(err)
    assert f"cannot decode image {bad}" in line and f"delete {bad.parent} and rerun" in line
    assert _tree(out) == before  # nothing published
    code, text, _ = _run(_cremad(raw, out, "--no-check"), capsys)  # the check is what decodes:
    assert code == 0 and "loaded with" not in text                  # without it the run passes
    shutil.rmtree(bad.parent)  # as the message says
    code, text, err = _run(_cremad(raw, out), capsys)
    assert code == 0, err
    assert "decoded all 72 media files" in text  # 24 spectrograms + 48 frames
    assert not staging_folder(out).exists()
    from dus_env.data.media import load_image

    load_image(bad, 8)  # rebuilt from the raw frame


def test_cli_check_decodes_nvgesture_arrays(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = fx.nvgesture_raw(tmp_path / "raw")
    out = tmp_path / "out"
    argv = ["nvgesture", "--raw", str(raw), "--out", str(out), "--frames", "3", "--size", "24"]
    code, text, err = _run(argv, capsys)
    assert code == 0 and "decoded all 225 media files" in text, err
    bad = fx.truncate(out / "flow" / "test" / "4.npy")
    code, _, err = _run(argv, capsys)
    assert code == 1 and f"cannot read array file {bad}" in _one_line(err)


def test_check_prepared_decodes_images_and_frames(tmp_path: Path) -> None:
    tw = fx.twitter_layout(tmp_path / "tw")
    assert check_prepared("twitter2015", tw)["decoded"] == 12
    bad = fx.corrupt_png(tw / "images" / "3.jpg")
    with pytest.raises(MediaError, match=f"cannot decode image {bad}"):
        check_prepared("twitter2015", tw)
    av = fx.cremad_prepared(tmp_path / "av")
    assert check_prepared("cremad", av)["decoded"] == 24 + 48
    shutil.copytree(av / "frames" / "cliptrain_NEU_0", av / "frames" / "unused")
    bad = fx.truncate(av / "frames" / "unused" / "00001.jpg")  # listed nowhere: still decoded
    with pytest.raises(MediaError, match=f"cannot decode image {bad}"):
        check_prepared("cremad", av)
    assert not bad.parent.exists()  # removed, so that a rerun of prepare rebuilds it


def test_prepare_publishes_only_after_the_check(tmp_path: Path) -> None:
    raw = fx.cremad_raw(tmp_path / "raw")
    out = tmp_path / "out"
    counts, summary = prepare("cremad", raw, out, seconds=1.0)
    assert counts == {"train": 18, "test": 6} and summary["decoded"] == 72
    assert summary["input_shapes"]["audio"] == (1, 257, 63)
    fx.truncate(raw / "AudioWAV" / "10test_ANG_0.wav")
    (out / "audio" / "10test_ANG_0.npy").unlink()
    before = _tree(out)
    with pytest.raises(MediaError, match="10test_ANG_0.wav"):
        prepare("cremad", raw, out, seconds=1.0)
    assert _tree(out) == before


def test_cli_end_to_end_subprocess_errors_are_one_line(tmp_path: Path) -> None:
    raw = fx.cremad_raw(tmp_path / "raw")
    fx.garble(raw / "AudioWAV" / "10train_NEU_0.wav")
    for argv, status in ((["--hop", "0"], 2), ([], 1)):
        proc = subprocess.run(
            [sys.executable, "-m", "dus_agents.cli.prepare", *_cremad(raw, tmp_path / "out"), *argv],
            capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode == status, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
        assert not (tmp_path / "out").exists()


def test_library_module_run_as_a_script_names_the_command(tmp_path: Path) -> None:
    """The command line moved to dus_agents.cli.prepare: the old spelling says where, writes
    nothing and fails."""
    proc = subprocess.run([sys.executable, "-m", "dus_env.data.prepare", "cremad", "--raw",
                           str(tmp_path / "raw"), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 1 and proc.stdout == ""
    assert "`dus-prepare`" in proc.stderr and "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_cli_interrupted_run_leaves_no_out(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import dus_env.data.prepare as prep

    raw = fx.cremad_raw(tmp_path / "raw")
    out = tmp_path / "out"
    real = prep.audio_features
    interrupted, _ = interrupt_on_call(real, 5)
    monkeypatch.setattr(prep, "audio_features", interrupted)
    code, _, err = _run(_cremad(raw, out), capsys)
    assert code == 130 and err.strip() == "python -m dus_agents.cli.prepare: interrupted"
    assert not out.exists() and len(list((staging_folder(out) / "audio").iterdir())) == 4
    monkeypatch.setattr(prep, "audio_features", real)
    code, text, err = _run(_cremad(raw, out), capsys)  # resumes from the 4 staged clips
    assert code == 0 and "decoded all 72" in text, err
    assert not staging_folder(out).exists()


def test_cli_out_relative_and_layout_conflicts(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    raw = fx.cremad_raw(tmp_path / "raw")
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    code, _, err = _run(["cremad", "--raw", str(raw), "--out", ".", "--seconds", "1"], capsys)
    assert code == 0, err
    assert (tmp_path / "here" / "train.csv").is_file() and not (tmp_path / "here.partial").exists()
    out = tmp_path / "out"
    out.mkdir()
    (out / "audio").write_text("a file where the layout has a folder")
    code, _, err = _run(_cremad(raw, out), capsys)
    assert code == 1
    assert f"{out / 'audio'} is a file, but the prepared cremad layout has a folder" in _one_line(err)
    assert sorted(p.name for p in out.iterdir()) == ["audio"] and not staging_folder(out).exists()
    code, _, err = _run(["cremad", "--raw", str(raw), "--out", "/"], capsys)
    assert code == 2 and "is the filesystem root" in _one_line(err)
