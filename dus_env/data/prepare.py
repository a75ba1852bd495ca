"""Preprocessing: raw downloads -> the layouts the readers expect (docs/datasets.md).

Its command line is ``dus-prepare`` (:mod:`dus_agents.cli.prepare`; one sub-command per
dataset, and ``features``).

Every step is deterministic (seeded where anything is drawn) and resumable: an output that
exists is kept, and each file is written to a temporary name and renamed. :func:`prepare` works
in ``OUT.partial`` beside ``OUT`` (an existing ``OUT`` is mirrored there first by hard links, so
nothing is rebuilt), then checks the result: it loads it with the dataset's reader and decodes
every media file it holds (``check=False`` skips that); only then is it moved into ``OUT``. A
failure mid-way leaves ``OUT`` absent or as it was, and the work done so far in
``OUT.partial``, from which a rerun with the same options resumes (the options are recorded in
``prepare.json``; other ones are refused rather than mixed with the kept outputs). Raw images and frames are decoded before they are
copied, so a corrupt one is reported with its raw path.

Nothing here prints: :func:`prepare`, :func:`check_prepared` and the ``prepare_*`` functions
take an optional ``progress`` wrapper, return counts and raise :class:`DatasetError` or
:class:`MediaError` naming the file. The ``prepare_*`` functions write into their ``out`` folder
directly (resumable); :func:`prepare` adds the staging, check and publish steps.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import errno
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from dus_env.data.audiovisual import AUDIO, CREMAD_CLASSES, kinetics_sounds_classes
from dus_env.data.media import (
    fixed_length, list_frames, load_image, log_spectrogram, read_image, read_wav,
    resample, uniform_indices,
)
from dus_env.data.manifest import read_text, tsv_rows
from dus_env.data.nvgesture import ARRAYS as NV_ARRAYS
from dus_env.errors import DatasetError, MediaError
from dus_env.files import atomic_write, atomic_writer

T = TypeVar("T")
Progress = Callable[[Iterable[T], int, str], Iterable[T]]

DOCS = "docs/datasets.md"
SAMPLE_RATE, N_FFT, HOP = 22050, 512, 353
"""OGM-GE's audio recipe: 22,050 Hz, STFT window 512, hop 353."""
CREMAD_SECONDS, KINETICS_SOUNDS_SECONDS = 3.0, 10.0
FLOW_CHOICES: tuple[str, ...] = ("horn_schunck", "farneback")


def _no_progress(items: Iterable[T], total: int, desc: str) -> Iterable[T]:
    return items


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_writer(path, "wb") as handle:
        np.save(handle, array)


def _copy(src: Path, dst: Path) -> None:
    with open(src, "rb") as source, atomic_writer(dst, "wb") as handle:
        shutil.copyfileobj(source, handle)


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, text)


def _read_text(path: Path) -> str:
    """The text of a list / split file, or :class:`DatasetError` when it is not UTF-8 text."""
    return read_text(path, f"the list as downloaded ({DOCS})")


def _plain_name(name: str, where: str) -> str:
    """``name`` if it is a plain file name (it becomes a path under OUT), else DatasetError."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise DatasetError(f"{where}: {name!r} is not a plain file name (no folders, no '..')")
    return name


def decode_image(path: Path) -> None:
    """Decode an image fully (:class:`MediaError` naming it when it cannot be)."""
    load_image(path, 8)


def _copy_image(src: Path, dst: Path) -> None:
    """Copy an image after decoding it, so a corrupt raw file is reported by its raw path."""
    decode_image(src)
    _copy(src, dst)


def _copy_frames(source: Path, target: Path) -> None:
    """Copy a clip's frame folder as a whole: every frame is decoded first, the copies go to a
    hidden temporary folder renamed to ``target`` at the end (never a half-copied clip)."""
    frames = list_frames(source)
    if not frames:
        raise MediaError(f"frame folder {source} holds no .jpg/.png frames")
    for frame in frames:
        decode_image(frame)
    tmp = target.with_name(f".{target.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for frame in frames:
            _copy(frame, tmp / frame.name)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _extract_frames(video: Path, out: Path, fps: float | None) -> None:
    """Decode a video to ``out/00001.jpg ...`` with ffmpeg (needed only for raw videos);
    :class:`MediaError` naming the video when ffmpeg cannot decode it."""
    if shutil.which("ffmpeg") is None:
        raise FileNotFoundError(
            f"{video} needs decoding but ffmpeg is not on PATH; install ffmpeg or extract the "
            f"frames yourself ({DOCS})"
        )
    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(video)]
    if fps is not None:
        cmd += ["-vf", f"fps={fps}"]
    try:
        done = subprocess.run([*cmd, "-q:v", "2", str(tmp / "%05d.jpg")], capture_output=True,
                              text=True, errors="replace", check=False)
        if done.returncode != 0:
            lines = [ln.strip() for ln in done.stderr.splitlines() if ln.strip()]
            raise MediaError(f"cannot decode video {video}: ffmpeg exited with status "
                             f"{done.returncode}" + (f" ({lines[-1]})" if lines else ""))
        if not list_frames(tmp):
            raise MediaError(f"cannot decode video {video}: ffmpeg wrote no frames")
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# --------------------------------------------------------------------------- audio-visual
def audio_features(wav: Path, sample_rate: int, seconds: float, tile: int, n_fft: int,
                   hop: int) -> np.ndarray:
    """Resampled, tiled, fixed-length audio -> log-magnitude STFT ``(n_fft//2+1, T)``."""
    x, rate = read_wav(wav)
    x = fixed_length(resample(x, rate, sample_rate), int(round(seconds * sample_rate)), tile)
    return log_spectrogram(x, n_fft, hop)


def read_list(path: Path) -> list[tuple[str, str]]:
    """``(clip, label)`` rows of a ``clip,label`` or ``clip,<n>,label`` list (file:line errors)."""
    rows = []
    for lineno, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) not in (2, 3) or not parts[0]:
            raise DatasetError(f"{path}:{lineno}: expected 'clip,label', got {line!r}")
        clip = parts[0]
        for suffix in (".flv", ".mp4", ".wav"):
            clip = clip.removesuffix(suffix)
        rows.append((_plain_name(clip, f"{path}:{lineno}: clip"), parts[-1]))
    return rows


def make_split(clips: Sequence[tuple[str, str]], test_fraction: float,
               seed: int) -> dict[str, list[tuple[str, str]]]:
    """A stratified, seeded train / test split (when no official list is at hand)."""
    from dus_env.data.manifest import stratified_holdout

    labels = np.asarray([label for _, label in clips])
    train, test = stratified_holdout(labels, test_fraction, np.random.default_rng(seed))
    return {"train": [clips[i] for i in train], "test": [clips[i] for i in test]}


def _check_raw_folder(raw: Path) -> None:
    if not raw.exists():
        raise FileNotFoundError(f"raw folder {raw} does not exist")
    if not raw.is_dir():
        raise NotADirectoryError(f"raw folder {raw} is a file, not a folder")


def prepare_audiovisual(
    raw: Path, out: Path, *, audio_dir: str, frame_dirs: Sequence[str], video_dir: str | None,
    lists: dict[str, Sequence[str]], classes: Sequence[str], sample_rate: int, seconds: float,
    tile: int, n_fft: int, hop: int, fps: float | None, make_split_seed: int | None,
    label_from_name: Callable[[str], str] | None = None, progress: Progress = _no_progress,
) -> dict[str, int]:
    """Spectrograms and frames for every listed clip; returns clips written per split."""
    raw, out = Path(raw), Path(out)
    _check_raw_folder(raw)
    splits: dict[str, list[tuple[str, str]]] = {}
    for split, names in lists.items():
        found = [raw / n for n in names if (raw / n).is_file()]
        if found:
            splits[split] = read_list(found[0])
    if "train" not in splits or "test" not in splits:
        if make_split_seed is None or label_from_name is None:
            raise FileNotFoundError(
                f"{raw} has no split lists ({lists['train']} and {lists['test']}); copy the "
                f"official lists there, or pass --make-split SEED for a seeded stratified split "
                f"(not the canonical one)"
            )
        wavs = sorted((raw / audio_dir).glob("*.wav"))
        if not wavs:
            raise FileNotFoundError(f"--make-split: no .wav files in {raw / audio_dir}")
        splits = make_split([(w.stem, label_from_name(w.stem)) for w in wavs], 0.1,
                            make_split_seed)
    known = set(classes)
    counts = {}
    for split, rows in splits.items():
        for clip, label in rows:
            if label not in known and label.replace(" ", "_").lower() not in known:
                raise DatasetError(f"{split} list: clip {clip!r} has unknown label {label!r}")
        _write_text(out / f"{split}.csv", "".join(f"{c},{label}\n" for c, label in rows))
        for clip, _ in progress(rows, len(rows), split):
            target = out / "audio" / f"{clip}.npy"
            if not target.exists():
                wav = raw / audio_dir / f"{clip}.wav"
                if not wav.is_file():
                    raise FileNotFoundError(f"missing audio file {wav} (listed in {split})")
                _save_npy(target, audio_features(wav, sample_rate, seconds, tile, n_fft, hop))
            frames = out / "frames" / clip
            if not frames.is_dir():
                source = next((raw / d / clip for d in frame_dirs if (raw / d / clip).is_dir()), None)
                if source is not None:
                    _copy_frames(source, frames)
                elif video_dir is not None and list((raw / video_dir).glob(f"{clip}.*")):
                    video = sorted((raw / video_dir).glob(f"{clip}.*"))[0]
                    _extract_frames(video, frames, fps)
                else:
                    raise FileNotFoundError(
                        f"no frames for clip {clip!r}: expected a folder {raw / frame_dirs[0] / clip}"
                        + (f" or a video in {raw / video_dir}" if video_dir else "")
                    )
        counts[split] = len(rows)
    return counts


def _cremad_label(name: str) -> str:
    parts = name.split("_")
    if len(parts) < 3:
        raise DatasetError(f"--make-split: clip name {name!r} has no emotion field (CREMA-D "
                           f"names read ACTOR_SENTENCE_EMOTION_LEVEL, e.g. 1001_DFA_ANG_XX)")
    return parts[2]


def prepare_cremad(raw: Path, out: Path, *, make_split_seed: int | None = None,
                   progress: Progress = _no_progress, **audio: Any) -> dict[str, int]:
    """CREMA-D: OGM-GE's 1-fps frames and log STFT (22,050 Hz, x3 tiled, 3 s, n_fft 512, hop 353)."""
    params = {"sample_rate": SAMPLE_RATE, "seconds": CREMAD_SECONDS, "tile": 3, "n_fft": N_FFT,
              "hop": HOP, **audio}
    return prepare_audiovisual(
        raw, out, audio_dir="AudioWAV", frame_dirs=("Image-01-FPS",), video_dir="VideoFlash",
        lists={"train": ("train.csv",), "test": ("test.csv",)}, classes=CREMAD_CLASSES,
        fps=1.0, make_split_seed=make_split_seed, label_from_name=_cremad_label,
        progress=progress, **params,
    )


def prepare_kinetics_sounds(raw: Path, out: Path, *, progress: Progress = _no_progress,
                            **audio: Any) -> dict[str, int]:
    """Kinetics-Sounds: frames as given, log STFT of 10 s at 22,050 Hz (n_fft 512, hop 353)."""
    params = {"sample_rate": SAMPLE_RATE, "seconds": KINETICS_SOUNDS_SECONDS, "tile": 1,
              "n_fft": N_FFT, "hop": HOP, **audio}
    counts = prepare_audiovisual(
        raw, out, audio_dir="audio", frame_dirs=("frames", "visual"), video_dir="video",
        lists={"train": ("train.csv", "my_train.txt"), "val": ("val.csv",),
               "test": ("test.csv", "my_test.txt")},
        classes=kinetics_sounds_classes(), fps=1.0, make_split_seed=None, progress=progress,
        **params,
    )
    _write_text(out / "classes.txt", "\n".join(kinetics_sounds_classes()) + "\n")
    return counts


# --------------------------------------------------------------------------- image-text
def _copy_images(names: Iterable[str], sources: Sequence[Path], out: Path,
                 progress: Progress, desc: str) -> None:
    names = list(names)
    for name in progress(names, len(names), desc):
        if (out / name).exists():
            continue
        src = next((s / name for s in sources if (s / name).is_file()), None)
        if src is None:
            raise FileNotFoundError(f"missing image {name!r} in {[str(s) for s in sources]}")
        _copy_image(src, out / name)


def prepare_twitter2015(raw: Path, out: Path, *, progress: Progress = _no_progress) -> dict[str, int]:
    """Twitter2015 (TomBERT release): copy train/dev/test.tsv and the images they name."""
    raw, out = Path(raw), Path(out)
    _check_raw_folder(raw)
    sources = [raw / "twitter2015_images", raw / "images", raw]
    counts = {}
    for name in ("train.tsv", "dev.tsv", "test.tsv"):
        src = raw / name
        if not src.is_file():
            raise FileNotFoundError(f"missing {src}")
        rows = tsv_rows(src, _read_text(src))
        if not rows:
            raise DatasetError(f"{src} is empty; expected a header row with an ImageID column")
        header = [h.split(" ")[-1].lower() for h in rows[0]]
        if "imageid" not in header:
            raise DatasetError(f"{src}:1: header {rows[0]} has no ImageID column")
        col = header.index("imageid")
        images = [_plain_name(r[col].strip(), f"{src}:{k}: ImageID")
                  for k, r in enumerate(rows[1:], start=2) if len(r) > col]
        _copy_images(images, sources, out / "images", progress, name)
        _copy(src, out / name)
        counts[name.split(".")[0]] = len(rows) - 1
    return counts


def _sarcasm_records(path: Path) -> list[dict[str, Any]]:
    """Records of feiLinX's text files: one Python list literal per line, [id, text, ..., label]."""
    records = []
    for lineno, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            fields = ast.literal_eval(line)
            records.append({"image": f"{fields[0]}.jpg", "text": str(fields[1]),
                            "label": int(fields[-1])})
        except (ValueError, SyntaxError, IndexError, TypeError, KeyError, MemoryError,
                RecursionError):
            raise DatasetError(f"{path}:{lineno}: expected ['id', 'text', ..., label]") from None
    return records


def _sarcasm_json(path: Path) -> list[dict[str, Any]]:
    """Records of a ``[{"image", "text", "label"}, ...]`` JSON file (file:record errors)."""
    try:
        records = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    if not isinstance(records, list):
        raise DatasetError(f"{path}: expected a JSON list of records, got {type(records).__name__}")
    for k, rec in enumerate(records):
        if not isinstance(rec, dict) or not isinstance(rec.get("image"), str):
            raise DatasetError(f"{path}: record {k}: expected {{'image': NAME, 'text': ..., "
                               f"'label': ...}}, got {rec!r:.80}")
    return records


def prepare_sarcasm(raw: Path, out: Path, *, progress: Progress = _no_progress) -> dict[str, int]:
    """Sarcasm: JSON records (copied, or converted from feiLinX's text/*.txt) and images."""
    raw, out = Path(raw), Path(out)
    _check_raw_folder(raw)
    sources = [raw / "dataset_image", raw / "images", raw]
    counts = {}
    for split, candidates in SARCASM_SPLITS.items():
        src = next((raw / c for c in candidates if (raw / c).is_file()), None)
        if src is None:
            raise FileNotFoundError(f"no {split} split in {raw}: looked for {list(candidates)}")
        records = _sarcasm_json(src) if src.suffix == ".json" else _sarcasm_records(src)
        names = [_plain_name(str(r["image"]).strip(), f"{src}: record {k}: image")
                 for k, r in enumerate(records)]
        _copy_images(names, sources, out / "images", progress, split)
        _write_text(out / f"{split}.json", json.dumps(records, ensure_ascii=False, indent=1))
        counts[split] = len(records)
    return counts


SARCASM_SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("train.json", "text/train.txt"),
    "valid": ("valid.json", "text/valid2.txt", "text/valid.txt"),
    "test": ("test.json", "text/test2.txt", "text/test.txt"),
}


# --------------------------------------------------------------------------- NVGesture
NV_LISTS = ("nvgesture_train_correct_cvpr2016_v2.lst", "nvgesture_test_correct_cvpr2016_v2.lst")


def _stream_frames(folder: Path, stream: str, cache: Path) -> list[Path]:
    """The frames of one stream of a clip: its extracted frame folder, else frames ffmpeg
    extracts from its ``.avi`` into ``cache`` (a folder of this clip's own: clips of different
    classes share their ``subjectY_rZ`` folder name)."""
    frames_dir = folder / stream
    if frames_dir.is_dir():
        return list_frames(frames_dir)
    video = folder / f"{stream}.avi"
    if not video.is_file():
        raise FileNotFoundError(f"missing {frames_dir}/ (extracted frames) and {video}")
    target = cache / stream
    if not target.is_dir():
        _extract_frames(video, target, None)
    return list_frames(target)


def _load_resized(paths: Sequence[Path], size: int, mode: str) -> np.ndarray:
    return np.stack([read_image(p, size, mode) for p in paths])


def _nv_ranges(fields: dict[str, str], where: str) -> tuple[slice, slice]:
    """The 0-based ``[start, end)`` frame ranges of the color and depth streams of a line."""
    try:
        ranges = []
        for stream in ("color", "depth"):
            _, start, end = fields[stream].split(":")[-3:]
            ranges.append(slice(int(start), int(end)))
    except (KeyError, ValueError):
        raise DatasetError(f"{where}: expected color:sk_color:START:END and "
                           f"depth:sk_depth:START:END fields") from None
    return ranges[0], ranges[1]


def prepare_nvgesture(raw: Path, out: Path, *, n_frames: int = 16, size: int = 112,
                      flow: str = "horn_schunck", progress: Progress = _no_progress) -> dict[str, int]:
    """RGB, depth and optical flow per clip of the official lists.

    Frames ``[start, end)`` of each stream (0-based, from the list line) are sampled uniformly
    to ``n_frames`` and resized to ``size``; flow at frame ``i`` is computed from RGB frames
    ``i`` and ``i + 1`` (grayscale) with ``flow`` (horn_schunck, or farneback with OpenCV).
    """
    from dus_env.data.flow import FLOW_METHODS
    from dus_env.data.nvgesture import parse_line
    from dus_env.errors import check_choice

    raw, out = Path(raw), Path(out)
    _check_raw_folder(raw)
    check_choice("flow", flow, FLOW_METHODS)
    method = FLOW_METHODS[flow]
    counts = {}
    for split, fname in zip(("train", "test"), NV_LISTS):
        src = raw / fname
        if not src.is_file():
            raise FileNotFoundError(f"missing official list {src}")
        lines = [ln for ln in _read_text(src).splitlines() if ln.strip()]
        for k, line in enumerate(progress(lines, len(lines), split)):
            targets = {m: out / m / split / f"{k}.npy" for m in ("rgb", "depth", "flow")}
            if all(t.exists() for t in targets.values()):
                continue
            where = f"{src}:{k + 1}"
            try:
                fields = parse_line(line)
            except ValueError as exc:
                raise DatasetError(f"{where}: {exc} in {line.strip()!r}") from None
            folder = raw / fields["path"]
            cache = out / "_frames" / split / str(k)
            c_range, d_range = _nv_ranges(fields, where)
            color = _stream_frames(folder, "sk_color", cache)[c_range]
            depth = _stream_frames(folder, "sk_depth", cache)[d_range]
            if len(color) < 2 or not depth:
                raise DatasetError(f"{where}: {folder} has too few frames in the range")
            idx = uniform_indices(len(color), n_frames)
            rgb = _load_resized([color[i] for i in idx], size, "RGB")
            # both frames of a flow pair through the same greyscale conversion: a still
            # scene has zero flow
            gray = _load_resized([color[i] for i in idx], size, "L") / 255.0
            nxt = _load_resized([color[min(i + 1, len(color) - 1)] for i in idx], size, "L")
            flows = np.stack([method(g, n / 255.0) for g, n in zip(gray, nxt)])
            _save_npy(targets["rgb"], rgb.astype(np.uint8))
            _save_npy(targets["depth"],
                      _load_resized([depth[i] for i in uniform_indices(len(depth), n_frames)],
                                    size, "L").astype(np.uint8))
            _save_npy(targets["flow"], flows.astype(np.float16))
        _copy(src, out / fname)
        counts[split] = len(lines)
    shutil.rmtree(out / "_frames", ignore_errors=True)
    return counts


# --------------------------------------------------------------------------- features
def features_config(preset: str, overrides: Sequence[str] = (), weights: Sequence[str] = ()) -> Any:
    """The :class:`EnvConfig` of ``prepare features``: the preset, ``--set`` overrides and
    ``--weights KIND=PATH`` pairs (``ValueError`` / ``TypeError`` on a bad value)."""
    from dus_env.config import config_from_dict, get_preset, overrides_from_pairs

    cfg = config_from_dict(overrides_from_pairs(overrides), base=get_preset(preset))
    if weights:
        pairs = []
        for w in weights:
            kind, sep, path = w.partition("=")
            if not sep or not kind.strip() or not path.strip():
                raise ValueError(f"--weights={w!r}: expected KIND=PATH, e.g. "
                                 f"resnet18=/w/resnet18.pth")
            pairs.append((kind.strip(), path.strip()))
        cfg = cfg.replace(model=dataclasses.replace(cfg.model,
                                                    weights=cfg.model.weights + tuple(pairs)))
    return cfg


def prepare_features(preset: str, out: Path, *, overrides: Sequence[str] = (),
                     weights: Sequence[str] = (), seed: int = 0, batch_size: int = 32,
                     device: str = "cpu", progress: Progress | None = None) -> dict[str, Any]:
    """Frozen-encoder features of the preset's dataset (see :mod:`dus_env.data.features`)."""
    from dus_env.config import config_to_dict
    from dus_env.data import make_dataset
    from dus_env.data.features import extract_features, save_features

    cfg = features_config(preset, overrides, weights)
    dataset = make_dataset(cfg.data)
    arrays = extract_features(dataset, cfg.model, seed=seed, batch_size=batch_size,
                              device=device, progress=progress)
    meta = {
        "dataset": dataset.name, "modalities": list(dataset.modalities),
        "class_names": list(getattr(dataset, "class_names",
                                    [str(i) for i in range(dataset.n_classes)])),
        "encoders": {m: cfg.model.encoder_for(m) for m in dataset.modalities},
        "seed": seed, "data": config_to_dict(cfg.data), "model": config_to_dict(cfg.model),
    }
    save_features(out, arrays, meta)
    return meta


# --------------------------------------------------------------------------- stage, check, publish
PREPARERS: dict[str, Callable[..., dict[str, int]]] = {
    "cremad": prepare_cremad, "kinetics_sounds": prepare_kinetics_sounds,
    "twitter2015": prepare_twitter2015, "sarcasm": prepare_sarcasm,
    "nvgesture": prepare_nvgesture,
}
LAYOUTS: dict[str, tuple[str, ...]] = {
    "cremad": ("train.csv", "test.csv", "val.csv", "audio", "frames"),
    "kinetics_sounds": ("train.csv", "test.csv", "val.csv", "classes.txt", "audio", "frames"),
    "twitter2015": ("train.tsv", "dev.tsv", "test.tsv", "images"),
    "sarcasm": ("train.json", "valid.json", "test.json", "images"),
    "nvgesture": (*NV_LISTS, "rgb", "depth", "flow"),
}
"""The top-level entries of each prepared folder (what is mirrored, checked and published)."""
SETTINGS_FILE = "prepare.json"
"""Beside the layout: the dataset and options a prepared folder was made with. A rerun into
the same folder (or its staging folder) with other options is refused: it would keep the
outputs made with the old ones and mix them with new ones."""


def _check_settings(settings: dict[str, Any], out: Path, stage: Path) -> None:
    """Refuse a run whose settings differ from those ``stage`` or ``out`` was made with
    (folders prepared before the settings were recorded are accepted as they are)."""
    for folder, fix in ((stage, f"rerun with the same options to resume, or delete {stage} "
                                "to start over"),
                        (out, "give another --out, or delete it to rebuild it")):
        path = folder / SETTINGS_FILE
        if not path.is_file():
            continue
        try:
            recorded = json.loads(read_text(path, "JSON settings"))
        except ValueError:
            raise DatasetError(f"{path} is not the JSON settings prepare writes; delete it "
                               f"if {folder} holds what you expect") from None
        if recorded != settings:
            asked = settings.get("options", {})
            made = recorded.get("options", {}) if isinstance(recorded, dict) else recorded
            diff = {k: (made.get(k), asked.get(k)) for k in sorted(set(made) | set(asked))
                    if made.get(k) != asked.get(k)} if isinstance(made, dict) else {}
            shown = ", ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in diff.items())
            raise DatasetError(
                f"{folder} was prepared with other settings ({shown or recorded}); its outputs "
                f"would be kept and mixed with new ones: {fix}")


def staging_folder(out: Path) -> Path:
    """Where :func:`prepare` works before publishing to ``out``: ``OUT.partial`` beside it."""
    out = Path(os.path.abspath(out))
    if not out.name:
        raise ValueError(f"out={str(out)!r} is the filesystem root; give a folder below it")
    return out.with_name(out.name + ".partial")


def _link_missing(src: str | Path, dst: str | Path) -> str | Path:
    """Hard-link ``src`` to ``dst`` (copy where links are not supported) unless ``dst`` exists."""
    if not os.path.lexists(dst):
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)
    return dst


def _mirror(out: Path, stage: Path, names: Iterable[str]) -> None:
    """Mirror the layout entries of an existing ``out`` into ``stage`` by hard links, keeping
    what ``stage`` already holds (newer work of an interrupted run). Files are only ever
    replaced (new inode), never written in place, so ``out`` is untouched."""
    for name in names:
        src = out / name
        if src.is_dir():
            shutil.copytree(src, stage / name, copy_function=_link_missing, dirs_exist_ok=True)
        elif src.is_file():
            _link_missing(src, stage / name)


def _move(src: Path, dst: Path) -> None:
    try:
        os.replace(src, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        shutil.move(str(src), str(dst))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()


def _merge_into(src: Path, dst: Path) -> None:
    """Move every entry of ``src`` into ``dst`` that is not already there (the same file);
    a file of ``dst`` is only ever replaced by its rebuilt version, never deleted."""
    for entry in sorted(src.iterdir()):
        target = dst / entry.name
        if entry.is_dir() and not entry.is_symlink():
            if target.is_dir():
                _merge_into(entry, target)
            elif os.path.lexists(target):
                raise DatasetError(f"cannot publish {entry}: {target} is not a folder; move it "
                                   f"away and rerun")
            else:
                _move(entry, target)
        elif not (target.exists() and os.path.samefile(entry, target)):
            if target.is_dir():
                raise DatasetError(f"cannot publish {entry}: {target} is a folder; move it "
                                   f"away and rerun")
            _move(entry, target)


def _publish(stage: Path, out: Path) -> None:
    """``stage`` becomes ``out``: renamed when ``out`` is absent, else merged into it (only
    new or rebuilt files move; ``out``'s other entries are left alone)."""
    if not out.exists():
        _move(stage, out)
        return
    _merge_into(stage, out)
    shutil.rmtree(stage, ignore_errors=True)


def _media_units(dataset: str, root: Path) -> list[tuple[Path, Path, Callable[[Path], object]]]:
    """(file to decode, unit a rerun rebuilds as a whole, decoder) of every media file under
    ``root``; hidden names (temporary files) are skipped."""
    def visible(folder: Path) -> list[Path]:
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if not p.name.startswith("."))

    units: list[tuple[Path, Path, Callable[[Path], object]]] = []
    if dataset in ("cremad", "kinetics_sounds"):
        units += [(p, p, AUDIO) for p in visible(root / "audio") if p.suffix == ".npy"]
        for clip in visible(root / "frames"):
            frames = list_frames(clip) if clip.is_dir() else []
            if not frames:
                units.append((clip, clip, _no_frames))
            units += [(f, clip, decode_image) for f in frames]
    elif dataset in ("twitter2015", "sarcasm"):
        units += [(p, p, decode_image) for p in visible(root / "images") if p.is_file()]
    else:
        for modality in ("rgb", "depth", "flow"):
            for split in visible(root / modality):
                units += [(p, p, NV_ARRAYS[modality]) for p in visible(split)
                          if p.suffix == ".npy"]
    return units


def _no_frames(folder: Path) -> None:
    raise MediaError(f"frame folder {folder} holds no .jpg/.png frames")


def check_prepared(dataset: str, root: Path, *, origin: Path | None = None,
                   progress: Progress = _no_progress) -> dict[str, Any]:
    """Load ``root`` with the dataset's reader, then decode every media file in it.

    Returns the reader's split counts, input shapes and the number of files decoded. The first
    file that does not decode raises :class:`MediaError` naming it; it is removed from
    ``root`` (a staging folder), so a rerun rebuilds it. ``origin``: the folder ``root``
    mirrors; a bad file that came from there is named by its path there (delete it to have it
    rebuilt).
    """
    import warnings

    from dus_env.config import DATA_CONFIGS
    from dus_env.data import make_dataset

    root = Path(root)
    kwargs: dict[str, Any] = {"root": str(root)}
    if "expect_canonical" in DATA_CONFIGS[dataset].__dataclass_fields__:
        kwargs["expect_canonical"] = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        reader = make_dataset(DATA_CONFIGS[dataset](**kwargs), cache=False)  # layout only
    units = _media_units(dataset, root)
    for path, unit, decode in progress(units, len(units), "check"):
        try:
            decode(path)
        except MediaError as exc:
            earlier = None if origin is None else Path(origin) / path.relative_to(root)
            from_earlier = (earlier is not None and earlier.exists()
                            and os.path.samefile(earlier, path))
            _remove(unit)
            if from_earlier:
                assert origin is not None
                again = Path(origin) / unit.relative_to(root)
                raise MediaError(f"{str(exc).replace(str(root), str(origin))}; it was written by "
                                 f"an earlier run: delete {again} and rerun to rebuild it "
                                 f"from the raw files") from None
            raise MediaError(f"{exc}; removed it from {root}, rerun to rebuild it") from None
    return {"counts": reader.counts(), "input_shapes": reader.input_shapes,
            "decoded": len({p for p, _, _ in units})}


def prepare(dataset: str, raw: Path, out: Path, *, check: bool = True,
            progress: Progress = _no_progress, **options: Any) -> tuple[dict[str, int], dict | None]:
    """Prepare ``dataset`` from ``raw`` into ``out`` without ever leaving it half-written.

    The work happens in :func:`staging_folder` (``OUT.partial``; an existing ``out`` is
    mirrored there first by hard links, so its outputs are kept, not rebuilt); with ``check``
    the result is loaded with the reader and every media file decoded (:func:`check_prepared`);
    only then is it published to ``out``. On any failure ``out`` is absent or as it was and
    the staging folder keeps the work done, from which a rerun resumes. Returns (clips or
    records per split, the check's summary or None). ``options`` go to the ``prepare_*``
    function.
    """
    if dataset not in PREPARERS:
        raise ValueError(f"dataset={dataset!r} is not valid; valid choices: {list(PREPARERS)}")
    raw, out = Path(raw), Path(os.path.abspath(out))
    stage = staging_folder(out)
    for name in LAYOUTS[dataset]:  # what OUT holds must fit the layout before anything moves
        entry, is_file = out / name, "." in name
        if entry.exists() and entry.is_dir() == is_file:
            raise DatasetError(f"{entry} is a {'folder' if is_file else 'file'}, but the "
                               f"prepared {dataset} layout has a {'file' if is_file else 'folder'} "
                               f"there; move it away ({DOCS})")
    settings = json.loads(json.dumps({"dataset": dataset, "options": options}, default=str))
    _check_settings(settings, out, stage)
    stage.mkdir(parents=True, exist_ok=True)
    try:
        if out.is_dir():
            _mirror(out, stage, (*LAYOUTS[dataset], SETTINGS_FILE))
        if not (stage / SETTINGS_FILE).is_file():  # else it holds these settings (checked)
            atomic_write(stage / SETTINGS_FILE, json.dumps(settings, indent=1) + "\n")
        counts = PREPARERS[dataset](raw, stage, progress=progress, **options)
        summary = check_prepared(dataset, stage, origin=out, progress=progress) if check else None
    except BaseException:
        with contextlib.suppress(OSError):
            if [e.name for e in stage.iterdir()] == [SETTINGS_FILE]:
                (stage / SETTINGS_FILE).unlink()
            stage.rmdir()  # only when nothing else was written
        raise
    _publish(stage, out)
    return counts, summary


if __name__ == "__main__":  # run as a script: the command line lives in the scripts' layer
    raise SystemExit("python -m dus_env.data.prepare is the quiet library; its command line is "
                     "`dus-prepare` (or `python -m dus_agents.cli.prepare`)")
