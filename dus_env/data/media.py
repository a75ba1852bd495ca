"""Decoding and preprocessing of media files: images, frames, WAV audio, spectrograms, text.

Only numpy, scipy and Pillow are used (no torchvision, torchaudio, librosa or OpenCV). Every
decoder raises :class:`MediaError` naming the file when it cannot be read, so a corrupt file
is never silently replaced by zeros.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dus_env.errors import MediaError

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png")

HASH_VOCAB_SIZE: int = 30522
"""Number of hash buckets of the built-in tokenizer."""
HASH_OFFSET: int = 1_000_000
"""Hashing-tokenizer ids lie in [HASH_OFFSET, HASH_OFFSET + HASH_VOCAB_SIZE), far above any
real vocabulary, so ids from one tokenizer fed to the other tokenizer's encoder fail loudly."""
PAD_ID: int = 0


# --------------------------------------------------------------------------- images
def read_image(path: Path, size: int, mode: str = "RGB") -> np.ndarray:
    """An image converted to Pillow ``mode`` and resized to ``size x size``, uint8.

    Every way a damaged file fails in Pillow is a :class:`MediaError` naming it: unreadable or
    truncated data (``OSError``, ``SyntaxError``), a text chunk past Pillow's limit
    (``ValueError``), and a header declaring more pixels than Pillow's decompression-bomb limit.
    """
    from PIL import Image

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert(mode).resize((size, size), Image.BILINEAR))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise MediaError(f"cannot decode image {path}: {exc}") from None


def load_image(path: Path, size: int) -> torch.Tensor:
    """An RGB image resized to ``size x size``, ImageNet-normalised, float32 ``(3, size, size)``."""
    arr = read_image(path, size).astype(np.float32) / 255.0
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float32)
    std = np.asarray(IMAGENET_STD, dtype=np.float32)
    return torch.from_numpy(((arr - mean) / std).transpose(2, 0, 1).copy())


def list_frames(folder: Path) -> list[Path]:
    """Image files of a frame folder, sorted by name (never in listing order)."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def uniform_indices(n_available: int, n_wanted: int) -> np.ndarray:
    """``n_wanted`` frame indices at the centres of equal segments of ``n_available`` frames.

    Deterministic; when fewer frames exist than wanted, frames repeat in order.
    """
    if n_available < 1:
        raise ValueError("no frames to sample from")
    return np.minimum(
        ((np.arange(n_wanted) + 0.5) * n_available / n_wanted).astype(np.int64), n_available - 1
    )


def load_frames(folder: Path, n_frames: int, size: int) -> torch.Tensor:
    """``n_frames`` uniformly spaced frames of a clip folder as float32 ``(T, 3, size, size)``."""
    frames = list_frames(folder)
    if not frames:
        raise MediaError(f"frame folder {folder} holds no .jpg/.png frames")
    return torch.stack([load_image(frames[i], size) for i in uniform_indices(len(frames), n_frames)])


def verify_frames(folder: Path) -> None:
    """Decode every frame of a clip folder (``MediaError`` naming the first bad one)."""
    frames = list_frames(folder)
    if not frames:
        raise MediaError(f"frame folder {folder} holds no .jpg/.png frames")
    for frame in frames:
        load_image(frame, 8)


# --------------------------------------------------------------------------- audio
def _check_npy_size(path: Path) -> None:
    """Refuse a ``.npy`` whose header declares more data than the file holds, before numpy
    allocates it (a 128-byte file can declare terabytes)."""
    from numpy.lib import format as npy

    with open(path, "rb") as handle:
        version = npy.read_magic(handle)
        if version == (1, 0):
            shape, _, dtype = npy.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, _, dtype = npy.read_array_header_2_0(handle)
        else:  # format 3.0 (unicode field names): np.load checks it
            return
        declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
        held = path.stat().st_size - handle.tell()
    if declared > held:
        raise ValueError(f"its header declares shape {tuple(shape)} of {dtype} ({declared:,} "
                         f"bytes) but the file holds {held:,} bytes of data")


def load_npy(path: Path) -> np.ndarray:
    """A ``.npy`` array, or :class:`MediaError` naming the file."""
    try:
        _check_npy_size(path)
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, MemoryError) as exc:
        raise MediaError(f"cannot read array file {path}: {exc}") from None


@dataclass(frozen=True)
class ArrayFile:
    """What a prepared media ``.npy`` must hold; calling it loads one and checks it, so a
    wrong file fails naming itself when read (or up front with ``data.verify``), not later in
    torch with no file named."""

    layout: str
    """The expected axes, e.g. ``"(T, H, W, 3)"``: one letter or a fixed size per axis."""
    dtype: str
    """``"uint8"`` or ``"float"`` (any floating type)."""

    def __call__(self, path: Path) -> np.ndarray:
        x = load_npy(path)
        axes = [a.strip() for a in self.layout.strip("()").split(",")]
        fixed = all(a == str(n) for a, n in zip(axes, x.shape) if a.isdigit())
        good_type = (x.dtype == np.uint8 if self.dtype == "uint8"
                     else np.issubdtype(x.dtype, np.floating))
        if x.ndim != len(axes) or not fixed or not good_type or 0 in x.shape:
            raise MediaError(f"array file {path} holds {x.dtype} of shape {x.shape}; expected "
                             f"{self.dtype} {self.layout} with no empty axis")
        if good_type and self.dtype == "float" and not np.isfinite(x).all():
            raise MediaError(f"array file {path} holds non-finite values (NaN or infinite)")
        return x


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Mono float64 samples in [-1, 1] and the sample rate of a WAV file (scipy)."""
    import warnings

    from scipy.io import wavfile

    try:
        with warnings.catch_warnings():
            # scipy reads a truncated file up to where it ends and only warns; that is a
            # corrupt file (its samples would be silently short), not a shorter clip
            warnings.filterwarnings("error", message=".*EOF prematurely",
                                    category=wavfile.WavFileWarning)
            rate, data = wavfile.read(path)
    except wavfile.WavFileWarning as exc:
        raise MediaError(f"cannot decode WAV file {path}: it is truncated ({exc})") from None
    except (OSError, ValueError, EOFError) as exc:
        raise MediaError(f"cannot decode WAV file {path}: {exc}") from None
    if int(rate) < 1:
        raise MediaError(f"WAV file {path} declares a sample rate of {rate} Hz")
    x = np.asarray(data)
    if x.dtype == np.uint8:  # 8-bit PCM is unsigned, silence at 128
        x = (x.astype(np.float64) - 128.0) / 128.0
    elif np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.float64) / float(np.iinfo(x.dtype).max)
    else:
        x = x.astype(np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if x.size == 0:
        raise MediaError(f"WAV file {path} holds no samples")
    if not np.isfinite(x).all():
        raise MediaError(f"WAV file {path} holds non-finite (NaN or infinite) samples")
    return x, int(rate)


def resample(x: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Polyphase resampling from ``rate`` to ``target`` Hz (scipy.signal.resample_poly)."""
    if rate == target:
        return x
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(rate, target)
    return resample_poly(x, target // g, rate // g)


def fixed_length(x: np.ndarray, n_samples: int, tile: int) -> np.ndarray:
    """Tile the signal ``tile`` times (more if still short), keep the first ``n_samples``."""
    reps = max(tile, -(-n_samples // len(x)))
    return np.tile(x, reps)[:n_samples]


def log_spectrogram(x: np.ndarray, n_fft: int = 512, hop: int = 353) -> np.ndarray:
    """``log(|STFT| + 1e-7)``, float32 ``(n_fft // 2 + 1, 1 + len(x) // hop)``.

    Centred frames (zero padding of ``n_fft // 2`` at both ends), periodic Hann window: the
    conventions of the OGM-GE CREMA-D pipeline (n_fft 512, hop 353 on 3 s at 22,050 Hz gives
    257 x 188).
    """
    x = np.clip(x, -1.0, 1.0)
    pad = n_fft // 2
    padded = np.pad(x, (pad, pad))
    n_frames = 1 + (len(padded) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    spec = np.abs(np.fft.rfft(padded[idx] * window, axis=1)).T
    return np.log(spec + 1e-7).astype(np.float32)


# --------------------------------------------------------------------------- text
_TOKEN = re.compile(r"[a-z0-9]+|[^\sa-z0-9]", re.IGNORECASE)


def hash_tokenize(texts: Sequence[str], max_length: int) -> torch.Tensor:
    """Built-in tokenizer: lower-cased words and symbols hashed (CRC32) to ids in
    ``[HASH_OFFSET, HASH_OFFSET + HASH_VOCAB_SIZE)``, padded with 0 / truncated to
    ``max_length``; int64 ``(N, L)``.

    Needs no vocabulary file, so image-text datasets work without transformers; pair it with
    the ``text_bag`` encoder. Stable across runs and machines.
    """
    out = np.zeros((len(texts), max_length), dtype=np.int64)
    for row, text in enumerate(texts):
        ids = [HASH_OFFSET + zlib.crc32(t.lower().encode()) % HASH_VOCAB_SIZE
               for t in _TOKEN.findall(text)][:max_length]
        out[row, : len(ids)] = ids
    return torch.from_numpy(out)


def hf_tokenize(texts: Sequence[str], max_length: int, tokenizer_dir: str) -> torch.Tensor:
    """Token ids from a local Hugging Face tokenizer folder (never downloaded); int64 ``(N, L)``."""
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise ImportError(
            "data.tokenizer needs the 'transformers' package: pip install 'dus-env[text]' "
            "(or set data.tokenizer=None to use the built-in hashing tokenizer)"
        ) from None
    if not Path(tokenizer_dir).is_dir():
        raise FileNotFoundError(f"data.tokenizer={tokenizer_dir!r} is not a folder")
    tok = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
    enc = tok(list(texts), padding="max_length", truncation=True, max_length=max_length,
              return_tensors="pt")
    if tok.pad_token_id != PAD_ID:
        raise ValueError(f"tokenizer {tokenizer_dir} pads with id {tok.pad_token_id}, expected 0")
    return enc["input_ids"].to(torch.int64)
