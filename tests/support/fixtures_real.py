"""Tiny generated instances of every benchmark layout (raw downloads and prepared folders).

Nothing is downloaded: WAVs are sine tones, frames and images are flat-coloured JPEGs/PNGs,
texts are short sentences, clips are small random arrays. Each generator returns the folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from dus_env.data.audiovisual import CREMAD_CLASSES, kinetics_sounds_classes

FRAME = 16


def _image(path: Path, seed: int, size: int = FRAME) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arr = (rng.random((size, size, 3)) * 255).astype(np.uint8)
    Image.fromarray(arr).save(path)


def _frames(folder: Path, n: int, seed: int) -> None:
    for k in range(n):
        _image(folder / f"{k:05d}.jpg", seed * 100 + k)


def _av_rows(classes: tuple[str, ...], per_class: dict[str, int], prefix: str) -> dict[str, list[tuple[str, str]]]:
    rows: dict[str, list[tuple[str, str]]] = {}
    for split, n in per_class.items():
        rows[split] = [(f"{prefix}{split}_{c}_{k}", c) for c in classes for k in range(n)]
    return rows


def write_av_prepared(root: Path, classes: tuple[str, ...], per_class: dict[str, int],
                      n_frames: int = 2, spec_shape: tuple[int, int] = (9, 7)) -> Path:
    """A prepared audio-visual folder (the layout the CREMA-D / KS reader reads)."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i, (split, rows) in enumerate(_av_rows(classes, per_class, "clip").items()):
        (root / f"{split}.csv").write_text("".join(f"{clip},{label}\n" for clip, label in rows))
        for j, (clip, _) in enumerate(rows):
            (root / "audio").mkdir(exist_ok=True)
            np.save(root / "audio" / f"{clip}.npy", rng.standard_normal(spec_shape).astype(np.float32))
            _frames(root / "frames" / clip, n_frames, seed=i * 1000 + j)
    return root


def cremad_prepared(root: Path) -> Path:
    return write_av_prepared(root, CREMAD_CLASSES, {"train": 3, "test": 1})


def kinetics_sounds_prepared(root: Path) -> Path:
    return write_av_prepared(root, kinetics_sounds_classes(), {"train": 2, "val": 1, "test": 1},
                             n_frames=3)


def cremad_raw(root: Path, rate: int = 16000, seconds: float = 0.5) -> Path:
    """Raw CREMA-D as downloaded, with frames already extracted at 1 fps (Image-01-FPS)."""
    rows = _av_rows(CREMAD_CLASSES, {"train": 3, "test": 1}, "10")
    from scipy.io import wavfile

    (root / "AudioWAV").mkdir(parents=True, exist_ok=True)
    t = np.arange(int(rate * seconds)) / rate
    for split, split_rows in rows.items():
        (root / f"{split}.csv").write_text("".join(f"{c},{label}\n" for c, label in split_rows))
        for j, (clip, _) in enumerate(split_rows):
            tone = 0.3 * np.sin(2 * np.pi * (200 + 50 * j) * t)
            wavfile.write(root / "AudioWAV" / f"{clip}.wav", rate, (tone * 32767).astype(np.int16))
            _frames(root / "Image-01-FPS" / clip, 2, seed=j)
    return root


TEXTS = ("what a great day $T$", "this is fine", "nothing works today", "love it", "meh")


def twitter_layout(root: Path, per_class: dict[str, int] | None = None) -> Path:
    """Twitter2015 as released by TomBERT (header row, tab-separated, target column)."""
    per_class = per_class or {"train": 2, "dev": 1, "test": 1}
    k = 0
    for split, n in per_class.items():
        lines = ["index\t#1 Label\t#2 ImageID\t#3 String\t#3 String"]
        for label in range(3):
            for _ in range(n):
                lines.append(f"{k}\t{label}\t{k}.jpg\t{TEXTS[k % len(TEXTS)]}\tthe city")
                _image(root / "images" / f"{k}.jpg", k)
                k += 1
        (root / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    return root


def sarcasm_layout(root: Path, per_class: dict[str, int] | None = None) -> Path:
    """Sarcasm as JSON lists of {image, text, label}."""
    per_class = per_class or {"train": 2, "valid": 1, "test": 1}
    k = 0
    for split, n in per_class.items():
        records = []
        for label in range(2):
            for _ in range(n):
                records.append({"image": f"{k}.png", "text": TEXTS[k % len(TEXTS)], "label": label})
                _image(root / "images" / f"{k}.png", k)
                k += 1
        (root / f"{split}.json").write_text(json.dumps(records, indent=1))
    return root


NV_LISTS = {"train": "nvgesture_train_correct_cvpr2016_v2.lst",
            "test": "nvgesture_test_correct_cvpr2016_v2.lst"}


def _nv_lines(per_class: dict[str, int]) -> dict[str, list[str]]:
    out = {}
    for split, n in per_class.items():
        out[split] = [
            f"path:./Video_data/class_{c:02d}/subject{k}_r{split[:2]} depth:sk_depth:1:7 "
            f"color:sk_color:1:7 duo_left:duo_left:1:7 label:{c}"
            for c in range(1, 26) for k in range(n)
        ]
    return out


def nvgesture_prepared(root: Path, n_frames: int = 4, size: int = 8) -> Path:
    rng = np.random.default_rng(0)
    for split, lines in _nv_lines({"train": 2, "test": 1}).items():
        (root / NV_LISTS[split]).parent.mkdir(parents=True, exist_ok=True)
        (root / NV_LISTS[split]).write_text("\n".join(lines) + "\n")
        for k in range(len(lines)):
            for m, shape, dtype in (("rgb", (n_frames, size, size, 3), np.uint8),
                                    ("depth", (n_frames, size, size), np.uint8),
                                    ("flow", (n_frames, size, size, 2), np.float16)):
                (root / m / split).mkdir(parents=True, exist_ok=True)
                x = rng.random(shape) * (255 if dtype == np.uint8 else 4)
                np.save(root / m / split / f"{k}.npy", x.astype(dtype))
    return root


def nvgesture_raw(root: Path, n_video_frames: int = 8, size: int = 24) -> Path:
    """Raw NVGesture with the .avi streams already extracted to frame folders (ffmpeg)."""
    root.mkdir(parents=True, exist_ok=True)
    for split, lines in _nv_lines({"train": 2, "test": 1}).items():
        (root / NV_LISTS[split]).write_text("\n".join(lines) + "\n")
        for j, line in enumerate(lines):
            folder = root / line.split()[0].split(":", 1)[1]
            yy, xx = np.mgrid[:size, :size]
            for f in range(n_video_frames):  # a bright blob moving right by one pixel per frame
                blob = np.exp(-((xx - 6 - f) ** 2 + (yy - 12) ** 2) / 8.0)
                rgb = (np.stack([blob] * 3, axis=-1) * 255).astype(np.uint8)
                for stream, img in (("sk_color", rgb), ("sk_depth", rgb[..., 0])):
                    (folder / stream).mkdir(parents=True, exist_ok=True)
                    Image.fromarray(img).save(folder / stream / f"{f:05d}.jpg")
    return root


# --------------------------------------------------------------------------- corrupt variants
def truncate(path: Path, keep: float = 0.5) -> Path:
    """Cut a file to its first ``keep`` fraction, as a download that stopped mid-way."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def garble(path: Path, junk: bytes = b"this is not a media file\n" * 4) -> Path:
    """Replace a file's bytes with junk under the same name."""
    path.write_bytes(junk)
    return path


def corrupt_png(path: Path) -> Path:
    """A file with a PNG signature and garbage after it."""
    return garble(path, b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 16)


FAKE_VIDEO = b"FAKEVIDEO"
"""The first bytes of a video :func:`fake_ffmpeg` decodes (to two JPEG frames)."""


def fake_video(path: Path, colour: tuple[int, int, int] | None = None) -> Path:
    """A 'video' the fake ffmpeg decodes; :func:`garble` it to get one it cannot. With
    ``colour``, every frame it decodes to is that one RGB colour."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(FAKE_VIDEO + (b"C" + bytes(colour) if colour else b"\x00" * 4)
                     + b"\x00" * 28)
    return path


def fake_ffmpeg(bin_dir: Path) -> Path:
    """An executable ``ffmpeg`` stand-in in ``bin_dir`` (CI installs no ffmpeg; put the folder
    first on PATH): ``ffmpeg ... -i VIDEO ... OUT/%05d.jpg`` writes two 16 x 16 JPEG frames when
    VIDEO starts with :data:`FAKE_VIDEO` (see :func:`fake_video`), and otherwise fails as ffmpeg does on a corrupt file
    (the message on stderr, exit status 1)."""
    import sys

    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "ffmpeg"
    script.write_text(f"""#!{sys.executable}
import sys
from pathlib import Path
args = sys.argv[1:]
video = Path(args[args.index("-i") + 1])
if not video.read_bytes().startswith({FAKE_VIDEO!r}):
    sys.stderr.write(f"{{video}}: Invalid data found when processing input\\n")
    sys.exit(1)
from PIL import Image
data = video.read_bytes()[len({FAKE_VIDEO!r}):]
for k in (1, 2):
    colour = tuple(data[1:4]) if data[:1] == b"C" else (40 * k, 80, 120)
    Image.new("RGB", (16, 16), colour).save(args[-1] % k)
""")
    script.chmod(0o755)
    return script
