"""Preprocessing: raw downloads -> the layouts the readers expect (docs/datasets.md).

    python -m dus_env.data.prepare cremad          --raw RAW --out OUT
    python -m dus_env.data.prepare kinetics_sounds --raw RAW --out OUT
    python -m dus_env.data.prepare twitter2015     --raw RAW --out OUT
    python -m dus_env.data.prepare sarcasm         --raw RAW --out OUT
    python -m dus_env.data.prepare nvgesture       --raw RAW --out OUT [--frames 16 --size 112]
    python -m dus_env.data.prepare features --preset cremad --set data.root=OUT --out F.npz

Every step is deterministic (seeded where anything is drawn) and resumable: an output that
exists is kept, and each file is written to a temporary name and renamed, so an interrupted
run never leaves a half-written file behind. At the end the prepared folder is loaded with
its reader, so a layout problem is reported here, not at training time.

This module is the package's one script: only :func:`main` prints and draws progress bars
(tqdm); the ``prepare_*`` functions take an optional ``progress`` wrapper and return counts.
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from dus_env.data.audiovisual import CREMAD_CLASSES, kinetics_sounds_classes
from dus_env.data.manifest import DatasetError
from dus_env.files import atomic_write, atomic_writer
from dus_env.data.media import (
    fixed_length, list_frames, log_spectrogram, read_wav, resample,
    uniform_indices,
)

T = TypeVar("T")
Progress = Callable[[Iterable[T], int, str], Iterable[T]]


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


def _extract_frames(video: Path, out: Path, fps: float | None) -> None:
    """Decode a video to ``out/00000.jpg ...`` with ffmpeg (needed only for raw videos)."""
    if shutil.which("ffmpeg") is None:
        raise FileNotFoundError(
            f"{video} needs decoding but ffmpeg is not on PATH; install ffmpeg or extract the "
            f"frames yourself (docs/datasets.md)"
        )
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    cmd = ["ffmpeg", "-loglevel", "error", "-i", str(video)]
    if fps is not None:
        cmd += ["-vf", f"fps={fps}"]
    subprocess.run([*cmd, "-q:v", "2", str(tmp / "%05d.jpg")], check=True)
    os.replace(tmp, out)


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
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) not in (2, 3) or not parts[0]:
            raise DatasetError(f"{path}:{lineno}: expected 'clip,label', got {line!r}")
        clip = parts[0]
        for suffix in (".flv", ".mp4", ".wav"):
            clip = clip.removesuffix(suffix)
        rows.append((clip, parts[-1]))
    return rows


def make_split(clips: Sequence[tuple[str, str]], test_fraction: float,
               seed: int) -> dict[str, list[tuple[str, str]]]:
    """A stratified, seeded train / test split (when no official list is at hand)."""
    from dus_env.data.manifest import stratified_holdout

    labels = np.asarray([label for _, label in clips])
    train, test = stratified_holdout(labels, test_fraction, np.random.default_rng(seed))
    return {"train": [clips[i] for i in train], "test": [clips[i] for i in test]}


def prepare_audiovisual(
    raw: Path, out: Path, *, audio_dir: str, frame_dirs: Sequence[str], video_dir: str | None,
    lists: dict[str, Sequence[str]], classes: Sequence[str], sample_rate: int, seconds: float,
    tile: int, n_fft: int, hop: int, fps: float | None, make_split_seed: int | None,
    label_from_name: Callable[[str], str] | None = None, progress: Progress = _no_progress,
) -> dict[str, int]:
    """Spectrograms and frames for every listed clip; returns clips written per split."""
    raw, out = Path(raw), Path(out)
    if not raw.is_dir():
        raise FileNotFoundError(f"raw folder {raw} does not exist")
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
                    frames.mkdir(parents=True, exist_ok=True)
                    for f in list_frames(source):
                        _copy(f, frames / f.name)
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


def prepare_cremad(raw: Path, out: Path, *, make_split_seed: int | None = None,
                   progress: Progress = _no_progress, **audio: Any) -> dict[str, int]:
    """CREMA-D: OGM-GE's 1-fps frames and log STFT (22,050 Hz, x3 tiled, 3 s, n_fft 512, hop 353)."""
    params = {"sample_rate": 22050, "seconds": 3.0, "tile": 3, "n_fft": 512, "hop": 353, **audio}
    return prepare_audiovisual(
        raw, out, audio_dir="AudioWAV", frame_dirs=("Image-01-FPS",), video_dir="VideoFlash",
        lists={"train": ("train.csv",), "test": ("test.csv",)}, classes=CREMAD_CLASSES,
        fps=1.0, make_split_seed=make_split_seed, label_from_name=lambda n: n.split("_")[2],
        progress=progress, **params,
    )


def prepare_kinetics_sounds(raw: Path, out: Path, *, progress: Progress = _no_progress,
                            **audio: Any) -> dict[str, int]:
    """Kinetics-Sounds: frames as given, log STFT of 10 s at 22,050 Hz (n_fft 512, hop 353)."""
    params = {"sample_rate": 22050, "seconds": 10.0, "tile": 1, "n_fft": 512, "hop": 353, **audio}
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
        _copy(src, out / name)


def prepare_twitter2015(raw: Path, out: Path, *, progress: Progress = _no_progress) -> dict[str, int]:
    """Twitter2015 (TomBERT release): copy train/dev/test.tsv and the images they name."""
    raw, out = Path(raw), Path(out)
    sources = [raw / "twitter2015_images", raw / "images", raw]
    counts = {}
    for name in ("train.tsv", "dev.tsv", "test.tsv"):
        src = raw / name
        if not src.is_file():
            raise FileNotFoundError(f"missing {src}")
        with src.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
        header = [h.split(" ")[-1].lower() for h in rows[0]]
        if "imageid" not in header:
            raise DatasetError(f"{src}:1: header {rows[0]} has no ImageID column")
        col = header.index("imageid")
        _copy_images([r[col] for r in rows[1:] if len(r) > col], sources, out / "images",
                     progress, name)
        _copy(src, out / name)
        counts[name.split(".")[0]] = len(rows) - 1
    return counts


def _sarcasm_records(path: Path) -> list[dict[str, Any]]:
    """Records of feiLinX's text files: one Python list literal per line, [id, text, ..., label]."""
    records = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            fields = ast.literal_eval(line)
            records.append({"image": f"{fields[0]}.jpg", "text": str(fields[1]),
                            "label": int(fields[-1])})
        except (ValueError, SyntaxError, IndexError, TypeError):
            raise DatasetError(f"{path}:{lineno}: expected ['id', 'text', ..., label]") from None
    return records


def prepare_sarcasm(raw: Path, out: Path, *, progress: Progress = _no_progress) -> dict[str, int]:
    """Sarcasm: JSON records (copied, or converted from feiLinX's text/*.txt) and images."""
    raw, out = Path(raw), Path(out)
    sources = [raw / "dataset_image", raw / "images", raw]
    counts = {}
    for split, candidates in {"train": ("train.json", "text/train.txt"),
                              "valid": ("valid.json", "text/valid2.txt", "text/valid.txt"),
                              "test": ("test.json", "text/test2.txt", "text/test.txt")}.items():
        src = next((raw / c for c in candidates if (raw / c).is_file()), None)
        if src is None:
            raise FileNotFoundError(f"no {split} split in {raw}: looked for {list(candidates)}")
        records = (json.loads(src.read_text(encoding="utf-8")) if src.suffix == ".json"
                   else _sarcasm_records(src))
        _copy_images([r["image"] for r in records], sources, out / "images", progress, split)
        _write_text(out / f"{split}.json", json.dumps(records, ensure_ascii=False, indent=1))
        counts[split] = len(records)
    return counts


# --------------------------------------------------------------------------- NVGesture
NV_LISTS = ("nvgesture_train_correct_cvpr2016_v2.lst", "nvgesture_test_correct_cvpr2016_v2.lst")


def _stream_frames(folder: Path, stream: str, cache: Path) -> list[Path]:
    frames_dir = folder / stream
    if frames_dir.is_dir():
        return list_frames(frames_dir)
    video = folder / f"{stream}.avi"
    if not video.is_file():
        raise FileNotFoundError(f"missing {frames_dir}/ (extracted frames) and {video}")
    target = cache / folder.name / stream
    if not target.is_dir():
        _extract_frames(video, target, None)
    return list_frames(target)


def _load_resized(paths: Sequence[Path], size: int, mode: str) -> np.ndarray:
    from PIL import Image

    out = []
    for p in paths:
        with Image.open(p) as img:
            out.append(np.asarray(img.convert(mode).resize((size, size), Image.BILINEAR)))
    return np.stack(out)


def prepare_nvgesture(raw: Path, out: Path, *, n_frames: int = 16, size: int = 112,
                      flow: str = "horn_schunck", progress: Progress = _no_progress) -> dict[str, int]:
    """RGB, depth and optical flow per clip of the official lists.

    Frames ``[start, end)`` of each stream (0-based, from the list line) are sampled uniformly
    to ``n_frames`` and resized to ``size``; flow at frame ``i`` is computed from RGB frames
    ``i`` and ``i + 1`` (grayscale) with ``flow`` (horn_schunck, or farneback with OpenCV).
    """
    from dus_env.data.flow import FLOW_METHODS
    from dus_env.data.nvgesture import parse_line

    raw, out = Path(raw), Path(out)
    method = FLOW_METHODS[flow]
    counts = {}
    for split, fname in zip(("train", "test"), NV_LISTS):
        src = raw / fname
        if not src.is_file():
            raise FileNotFoundError(f"missing official list {src}")
        lines = [ln for ln in src.read_text().splitlines() if ln.strip()]
        for k, line in enumerate(progress(lines, len(lines), split)):
            targets = {m: out / m / split / f"{k}.npy" for m in ("rgb", "depth", "flow")}
            if all(t.exists() for t in targets.values()):
                continue
            fields = parse_line(line)
            folder = raw / fields["path"]
            cache = out / "_frames" / split
            _, c_start, c_end = fields["color"].split(":")[-3:]
            _, d_start, d_end = fields["depth"].split(":")[-3:]
            color = _stream_frames(folder, "sk_color", cache)[int(c_start): int(c_end)]
            depth = _stream_frames(folder, "sk_depth", cache)[int(d_start): int(d_end)]
            if len(color) < 2 or not depth:
                raise DatasetError(f"{src}:{k + 1}: {folder} has too few frames in the range")
            idx = uniform_indices(len(color), n_frames)
            rgb = _load_resized([color[i] for i in idx], size, "RGB")
            nxt = _load_resized([color[min(i + 1, len(color) - 1)] for i in idx], size, "L")
            gray = rgb.mean(axis=-1) / 255.0
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
def prepare_features(preset: str, out: Path, *, overrides: Sequence[str] = (),
                     weights: Sequence[str] = (), seed: int = 0, batch_size: int = 32,
                     device: str = "cpu", progress: Progress | None = None) -> dict[str, Any]:
    """Frozen-encoder features of the preset's dataset (see :mod:`dus_env.data.features`)."""
    import dataclasses

    from dus_env.config import config_from_dict, config_to_dict, get_preset, overrides_from_pairs
    from dus_env.data import make_dataset
    from dus_env.data.features import extract_features, save_features

    cfg = config_from_dict(overrides_from_pairs(overrides), base=get_preset(preset))
    if weights:
        pairs = tuple(tuple(w.split("=", 1)) for w in weights)
        cfg = cfg.replace(model=dataclasses.replace(cfg.model, weights=cfg.model.weights + pairs))
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


# --------------------------------------------------------------------------- CLI
def _tqdm_progress(items: Iterable[T], total: int, desc: str) -> Iterable[T]:
    from tqdm import tqdm

    return tqdm(items, total=total, desc=desc, unit="item", leave=False)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dus_env.data.prepare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="dataset", required=True)
    for name in ("cremad", "kinetics_sounds", "twitter2015", "sarcasm", "nvgesture"):
        p = sub.add_parser(name, help=f"prepare {name} (docs/datasets.md)")
        p.add_argument("--raw", type=Path, required=True, help="the raw download folder")
        p.add_argument("--out", type=Path, required=True, help="the prepared folder to write")
        p.add_argument("--no-check", action="store_true", help="skip loading the result")
        if name in ("cremad", "kinetics_sounds"):
            p.add_argument("--sample-rate", type=int, help="audio sample rate (Hz)")
            p.add_argument("--seconds", type=float, help="audio length (s)")
            p.add_argument("--n-fft", type=int, help="STFT window")
            p.add_argument("--hop", type=int, help="STFT hop")
        if name == "cremad":
            p.add_argument("--make-split", type=int, metavar="SEED",
                           help="no train.csv/test.csv: make a seeded stratified 90/10 split")
        if name == "nvgesture":
            p.add_argument("--frames", type=int, default=16, help="frames per clip")
            p.add_argument("--size", type=int, default=112, help="frame side (pixels)")
            p.add_argument("--flow", choices=("horn_schunck", "farneback"), default="horn_schunck")
    p = sub.add_parser("features", help="precompute frozen-encoder features to one .npz")
    p.add_argument("--preset", required=True, help="a benchmark preset, e.g. cremad")
    p.add_argument("--out", type=Path, required=True, help="the .npz file to write")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="config override, e.g. data.root=/data/cremad (repeatable)")
    p.add_argument("--weights", action="append", default=[], metavar="KIND=PATH",
                   help="local pretrained weights, e.g. resnet18=/w/resnet18.pth (repeatable)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="cpu")
    return parser


def _say(line: str) -> None:
    """The command line's own output (the library functions above stay quiet)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.dataset == "features":
        meta = prepare_features(args.preset, args.out, overrides=args.set, weights=args.weights,
                                seed=args.seed, batch_size=args.batch_size, device=args.device,
                                progress=_tqdm_progress)
        _say(f"wrote {args.out}: {meta['dataset']} features of {meta['modalities']} "
              f"({meta['encoders']}); train with preset {args.preset}_features and "
              f"data.path={args.out}")
        return 0
    audio = {k: v for k, v in (("sample_rate", getattr(args, "sample_rate", None)),
                               ("seconds", getattr(args, "seconds", None)),
                               ("n_fft", getattr(args, "n_fft", None)),
                               ("hop", getattr(args, "hop", None))) if v is not None}
    common = {"progress": _tqdm_progress}
    if args.dataset == "cremad":
        counts = prepare_cremad(args.raw, args.out, make_split_seed=args.make_split, **common,
                                **audio)
    elif args.dataset == "kinetics_sounds":
        counts = prepare_kinetics_sounds(args.raw, args.out, **common, **audio)
    elif args.dataset == "twitter2015":
        counts = prepare_twitter2015(args.raw, args.out, **common)
    elif args.dataset == "sarcasm":
        counts = prepare_sarcasm(args.raw, args.out, **common)
    else:
        counts = prepare_nvgesture(args.raw, args.out, n_frames=args.frames, size=args.size,
                                   flow=args.flow, **common)
    _say(f"{args.dataset}: wrote {args.out} ({', '.join(f'{s} {n}' for s, n in counts.items())})")
    if not args.no_check:
        from dus_env.config import DATA_CONFIGS
        from dus_env.data import make_dataset

        kwargs: dict[str, Any] = {"root": str(args.out)}
        if "expect_canonical" in DATA_CONFIGS[args.dataset].__dataclass_fields__:
            kwargs["expect_canonical"] = False
        dataset = make_dataset(DATA_CONFIGS[args.dataset](**kwargs))
        _say(f"loaded with the {args.dataset} reader: {dataset.counts()}, "
              f"input shapes {dataset.input_shapes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
