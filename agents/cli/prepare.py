"""dus-prepare: raw downloads -> the layouts the readers expect (docs/datasets.md).

    dus-prepare cremad          --raw RAW --out OUT [--make-split SEED]
    dus-prepare kinetics_sounds --raw RAW --out OUT
    dus-prepare twitter2015     --raw RAW --out OUT
    dus-prepare sarcasm         --raw RAW --out OUT
    dus-prepare nvgesture       --raw RAW --out OUT [--frames 16 --size 112]
    dus-prepare features --preset cremad --set data.root=OUT --out F.npz

(``python -m dus_agents.cli.prepare`` is the same command.) The work is done by
:mod:`dus_env.data.prepare`, which stays quiet: this script checks the command line, draws the
progress bars (tqdm) and prints the outcome.

Exit status: 0 on success; 2 for a bad command line (one line on stderr, checked before
anything is read or written: flags, value ranges, the ``--raw`` folder and its expected files,
the ``--out`` path); 1 for bad data found while preparing or checking (one line naming the
file; ``OUT`` absent or unchanged).
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import math
import os
import shutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from dus_agents.cli import common as cli
from dus_env.data.prepare import (
    CREMAD_SECONDS, DOCS, FLOW_CHOICES, HOP, KINETICS_SOUNDS_SECONDS, N_FFT, NV_LISTS,
    SAMPLE_RATE, SARCASM_SPLITS, features_config, prepare, prepare_features, staging_folder,
)
from dus_env.errors import DatasetError, MediaError, UsageError, check_range

T = TypeVar("T")


# --------------------------------------------------------------------------- CLI: sub-commands
@dataclass(frozen=True)
class PrepareArgs:
    """The flags every dataset sub-command shares."""

    raw: str
    """The raw download folder (its layout: docs/datasets.md)."""
    out: str
    """The prepared folder to write (created if missing; an earlier run's folder is resumed:
    its outputs are kept)."""
    check: bool = True
    """Before publishing OUT, load it with the dataset's reader and decode every media file
    in it (--no-check skips that)."""


@dataclass(frozen=True)
class AudioVisualArgs(PrepareArgs):
    """The audio-visual datasets: log-magnitude STFT of the audio, frames copied as given."""

    sample_rate: int = SAMPLE_RATE
    """Audio sample rate (Hz) the WAVs are resampled to."""
    seconds: float = CREMAD_SECONDS
    """Audio length (s): the clip is tiled, then cut to this."""
    n_fft: int = N_FFT
    """STFT window (samples); the spectrogram has n_fft // 2 + 1 rows."""
    hop: int = HOP
    """STFT hop (samples) between spectrogram columns."""


@dataclass(frozen=True)
class CremadArgs(AudioVisualArgs):
    """CREMA-D: OGM-GE's 1-fps frames and log STFT (22,050 Hz, x3 tiled, 3 s, n_fft 512,
    hop 353 -> 257 x 188)."""

    make_split: int | None = field(default=None, metadata={"metavar": "SEED"})
    """No train.csv / test.csv: make a seeded stratified 90/10 split from the emotion in each
    clip name (not the canonical split; set data.expect_canonical=False)."""


@dataclass(frozen=True)
class KineticsSoundsArgs(AudioVisualArgs):
    """Kinetics-Sounds: the 31 shipped classes; log STFT of 10 s at 22,050 Hz (257 x 625)."""

    seconds: float = KINETICS_SOUNDS_SECONDS
    """Audio length (s): the clip is tiled, then cut to this."""


@dataclass(frozen=True)
class Twitter2015Args(PrepareArgs):
    """Twitter2015 (TomBERT release): train/dev/test.tsv and the images they name."""


@dataclass(frozen=True)
class SarcasmArgs(PrepareArgs):
    """Sarcasm: JSON records (copied, or converted from feiLinX's text/*.txt) and images."""


@dataclass(frozen=True)
class NVGestureArgs(PrepareArgs):
    """NVGesture: RGB, depth and optical flow per clip of the official lists."""

    frames: int = 16
    """Frames per clip, sampled uniformly from each stream's [start, end) range."""
    size: int = 112
    """Frame side (pixels) after resizing."""
    flow: str = field(default="horn_schunck", metadata={"metavar": "METHOD",
                                                         "choices": FLOW_CHOICES})
    """Optical flow: horn_schunck (numpy + scipy) or farneback (OpenCV: pip install
    'dus-env[flow]')."""


@dataclass(frozen=True)
class FeaturesArgs:
    """Precompute frozen-encoder features of a preset's dataset into one .npz file."""

    preset: str
    """A benchmark preset, e.g. cremad."""
    out: str = field(metadata={"metavar": "F.npz"})
    """The .npz file to write (replaced atomically)."""
    set: list[str] = field(default_factory=list, metadata={"metavar": "KEY=VALUE"})
    """Config override, e.g. data.root=/data/cremad (repeatable)."""
    weights: list[str] = field(default_factory=list, metadata={"metavar": "KIND=PATH"})
    """Local pretrained weights, e.g. resnet18=/w/resnet18.pth (repeatable)."""
    seed: int = 0
    """Seed of the encoders' initialisation (the global RNG is untouched)."""
    batch_size: int = 32
    """Samples per encoder forward pass."""
    device: str = "cpu"
    """Torch device of the encoders, e.g. cpu, cuda, cuda:1."""


COMMANDS: dict[str, type] = {
    "cremad": CremadArgs, "kinetics_sounds": KineticsSoundsArgs,
    "twitter2015": Twitter2015Args, "sarcasm": SarcasmArgs, "nvgesture": NVGestureArgs,
    "features": FeaturesArgs,
}
"""Sub-command -> the dataclass of its flags (one flag per field; help from its docstring)."""


# Generic: a candidate for dus_agents/cli/common.py (one dataclass per sub-command).
class _OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are raised as :class:`UsageError` (``cli.run`` prints one line
    ``prog: error: ...``; plain argparse prints the usage block first)."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(f"{message} (see {self.prog} --help)")


def _subcommand_parser(commands: Mapping[str, type], *, prog: str, description: str | None = None,
                       dest: str = "command", only: str | None = None) -> argparse.ArgumentParser:
    """A parser with one sub-command per dataclass of ``commands`` (flags from
    :func:`cli.build_parser`; its docstring is the sub-command's help). Fields without a
    default are required flags; ``metadata={"choices": ...}`` restricts a field's values.
    ``only``: give only that sub-command its flags (the others are listed, not built: reading
    the field docstrings costs ~50 ms per dataclass)."""
    parser = _OneLineParser(prog=prog, description=description,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest=dest, required=True, metavar=dest.upper(),
                                parser_class=_OneLineParser)
    for name, cls in commands.items():
        doc = inspect.getdoc(cls) or ""
        if only is not None and name != only:
            sub.add_parser(name, help=doc.split("\n\n")[0])
            continue
        template = cli.build_parser(cls, prog=f"{prog} {name}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for action in template._actions:
            f = fields.get(action.dest)
            if f is None:
                continue
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                action.required, action.default = True, argparse.SUPPRESS
            if f.metadata.get("choices"):
                action.choices = tuple(f.metadata["choices"])
        sub.add_parser(name, parents=[template], add_help=False, help=doc.split("\n\n")[0],
                       description=doc, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    return parser


def _parse_subcommand(parser: argparse.ArgumentParser, commands: Mapping[str, type],
                      argv: Sequence[str] | None, dest: str = "command") -> tuple[str, Any]:
    """(the sub-command, an instance of its dataclass) from ``argv``."""
    values = vars(parser.parse_args(list(sys.argv[1:] if argv is None else argv)))
    name = values.pop(dest)
    return name, commands[name](**values)


def _prog() -> str:
    invoked = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return "dus-prepare" if invoked == "dus-prepare" else "python -m dus_agents.cli.prepare"


def build_parser(prog: str | None = None, only: str | None = None) -> argparse.ArgumentParser:
    """The ``dus-prepare`` parser: one sub-command per dataclass of :data:`COMMANDS` (``only``:
    just that one with its flags)."""
    return _subcommand_parser(COMMANDS, prog=prog or _prog(), description=__doc__,
                              dest="dataset", only=only)


# --------------------------------------------------------------------------- CLI: validation
RAW_EXPECTED: dict[str, str] = {
    "cremad": "AudioWAV/<clip>.wav, Image-01-FPS/<clip>/*.jpg (or VideoFlash/<clip>.flv with "
              "ffmpeg on PATH), train.csv and test.csv (or --make-split SEED)",
    "kinetics_sounds": "audio/<clip>.wav, frames/<clip>/*.jpg or visual/<clip>/*.jpg (or "
                       "video/<clip>.mp4 with ffmpeg on PATH), train.csv and test.csv (or "
                       "my_train.txt and my_test.txt) [, val.csv]",
    "twitter2015": "train.tsv, dev.tsv, test.tsv and twitter2015_images/ (or images/)",
    "sarcasm": "text/train.txt, text/valid2.txt, text/test2.txt (or train.json, valid.json, "
               "test.json) and dataset_image/ (or images/)",
    "nvgesture": f"{NV_LISTS[0]}, {NV_LISTS[1]} and Video_data/class_XX/subjectY_rZ/ with "
                 f"sk_color/ and sk_depth/ frame folders (or sk_color.avi, sk_depth.avi)",
}
"""What each raw download holds (the error messages quote it)."""


def _range(flag: str, value: float, low: float, high: float = math.inf, *,
           low_inclusive: bool = True, high_inclusive: bool = True) -> None:
    """:func:`dus_env.errors.check_range` as a :class:`UsageError` naming the flag."""
    try:
        check_range(flag, value, low, high, low_inclusive=low_inclusive,
                    high_inclusive=high_inclusive)
    except ValueError as exc:
        raise UsageError(str(exc).rstrip(".")) from None


def _raw_requirements(name: str, raw: Path, args: Any) -> list[tuple[str, bool]]:
    """(what, present) for the entries the raw ``name`` download must hold."""
    has = lambda *paths: any((raw / p).exists() for p in paths)  # noqa: E731
    if name == "cremad":
        return [("AudioWAV/ folder", (raw / "AudioWAV").is_dir()),
                ("train.csv and test.csv (or pass --make-split SEED)",
                 args.make_split is not None or (has("train.csv") and has("test.csv"))),
                ("Image-01-FPS/ or VideoFlash/ folder", has("Image-01-FPS", "VideoFlash"))]
    if name == "kinetics_sounds":
        return [("audio/ folder", (raw / "audio").is_dir()),
                ("train.csv or my_train.txt", has("train.csv", "my_train.txt")),
                ("test.csv or my_test.txt", has("test.csv", "my_test.txt")),
                ("frames/, visual/ or video/ folder", has("frames", "visual", "video"))]
    if name == "twitter2015":
        return [(f, has(f)) for f in ("train.tsv", "dev.tsv", "test.tsv")]
    if name == "sarcasm":
        return [(" or ".join(c), has(*c)) for c in SARCASM_SPLITS.values()]
    return [(f, has(f)) for f in NV_LISTS]


def _check_raw(name: str, raw: Path, args: Any) -> None:
    expected = f"expected the raw {name} download: {RAW_EXPECTED[name]} ({DOCS})"
    if not raw.exists():
        raise UsageError(f"--raw={raw} does not exist; {expected}")
    if not raw.is_dir():
        raise UsageError(f"--raw={raw} is a file, not a folder; {expected}")
    try:
        empty = next(raw.iterdir(), None) is None
    except OSError as exc:
        raise UsageError(f"--raw={raw} cannot be read ({exc.strerror})") from None
    if empty:
        raise UsageError(f"--raw={raw} is an empty folder; {expected}")
    missing = [what for what, present in _raw_requirements(name, raw, args) if not present]
    if missing:
        raise UsageError(f"--raw={raw} has no {missing[0]}; {expected}")
    videos = {"cremad": (("Image-01-FPS",), "VideoFlash"),
              "kinetics_sounds": (("frames", "visual"), "video")}
    if name in videos and shutil.which("ffmpeg") is None:
        frames, video = videos[name]
        if (raw / video).is_dir() and not any((raw / d).is_dir() for d in frames):
            raise UsageError(f"--raw={raw} has videos ({video}/) but no extracted frames "
                             f"({' or '.join(d + '/' for d in frames)}), and ffmpeg is not on "
                             f"PATH; install ffmpeg or extract the frames ({DOCS})")


def _existing_ancestor(path: Path) -> Path:
    probe = path
    while not os.path.lexists(probe) and probe != probe.parent:
        probe = probe.parent
    return probe


def _check_out_path(flag: str, out: Path, *, folder: bool) -> None:
    """``out`` can be written: not a file (folder) / not a folder (file), not inside a file,
    its nearest existing folder writable."""
    what = "the folder to write (it is created if missing)" if folder else "the file to write"
    if folder and out.exists() and not out.is_dir():
        raise UsageError(f"{flag}={out} is a file; give {what}")
    if not folder and out.is_dir():
        raise UsageError(f"{flag}={out} is a folder; give {what}, e.g. {out / 'features.npz'}")
    ancestor = _existing_ancestor(out if not out.exists() else out.parent)
    if not ancestor.is_dir():
        raise UsageError(f"{flag}={out} is inside the file {ancestor}, which cannot hold "
                         f"anything; give a path whose parents are folders")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UsageError(f"{flag}={out}: the folder {ancestor} is not writable")
    if folder and out.is_dir() and not os.access(out, os.W_OK | os.X_OK):
        raise UsageError(f"{flag}={out}: the folder is not writable")


def _path_flag(flag: str, value: str) -> Path:
    if not value.strip():
        raise UsageError(f"{flag}={value!r} is empty; give a path")
    path = Path(os.path.abspath(Path(value).expanduser()))
    if not path.name:
        raise UsageError(f"{flag}={value!r} is the filesystem root; give a folder below it")
    return path


def _validate(name: str, args: PrepareArgs, raw: Path, out: Path) -> dict[str, Any]:
    """Check every flag of a dataset sub-command; the options for its ``prepare_*``."""
    cli.require("PIL", "media", f"prepare {name} (decoding images)")
    cli.require("scipy", "media", f"prepare {name}")
    options: dict[str, Any] = {}
    if isinstance(args, AudioVisualArgs):
        cli.check_at_least("--sample-rate", args.sample_rate, 1000, 384000)
        _range("--seconds", args.seconds, 0, 3600, low_inclusive=False)
        if round(args.seconds * args.sample_rate) < 1:
            raise UsageError(f"--seconds={args.seconds} is less than one sample at "
                             f"--sample-rate={args.sample_rate}; valid range: "
                             f"[{1 / args.sample_rate:g}, 3600]")
        cli.check_at_least("--n-fft", args.n_fft, 2, 65536)
        cli.check_at_least("--hop", args.hop, 1, 65536)
        options.update(sample_rate=args.sample_rate, seconds=args.seconds, n_fft=args.n_fft,
                       hop=args.hop)
    if isinstance(args, CremadArgs):
        if args.make_split is not None:
            cli.check_at_least("--make-split", args.make_split, 0, 2**32 - 1)
        options["make_split_seed"] = args.make_split
    if isinstance(args, NVGestureArgs):
        cli.check_at_least("--frames", args.frames, 1, 1024)
        cli.check_at_least("--size", args.size, 8, 1024)
        if args.flow == "farneback":
            cli.require("cv2", "flow", "--flow farneback")
        options.update(n_frames=args.frames, size=args.size, flow=args.flow)
    _check_raw(name, raw, args)
    _check_out_path("--out", out, folder=True)
    if out.exists() and raw.resolve() == out.resolve():
        raise UsageError(f"--out={out} is the --raw folder; write the prepared folder elsewhere")
    stage = staging_folder(out)
    if os.path.lexists(stage) and not stage.is_dir():
        raise UsageError(f"--out={out}: {stage}, where prepare stages its work, is a file; "
                         f"remove it or choose another --out")
    return options


def _check_device(device: str) -> None:
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise UsageError(f"--device={device!r} is not a torch device; valid: cpu, cuda, "
                         f"cuda:N") from None
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise UsageError(f"--device={device!r}: no CUDA device is available; use cpu")
        if dev.index is not None and dev.index >= n:
            raise UsageError(f"--device={device!r}: valid CUDA devices: cuda:0..cuda:{n - 1}")
    elif dev.type not in ("cpu", "mps"):
        raise UsageError(f"--device={device!r} is not supported; valid: cpu, cuda, cuda:N")


# --------------------------------------------------------------------------- CLI: main
def _tqdm_progress(items: Iterable[T], total: int, desc: str) -> Iterable[T]:
    try:
        from tqdm import tqdm
    except ImportError:  # progress bars are optional (the 'agents' extra installs tqdm)
        return items
    # no bar when stderr is not a terminal (logs, pipes): only the one-line messages land there
    return tqdm(items, total=total, desc=desc, unit="item", leave=False, disable=None)


def _say(line: str) -> None:
    """The command line's own output (the library functions above stay quiet)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _fail(message: str) -> int:
    """A data problem: one line on stderr, exit status 1."""
    print(f"{_prog()}: error: {message}", file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """``dus-prepare``: 0 on success; 1 when the data is bad (one line naming the file; OUT
    absent or as it was); a bad command line is one line on stderr and ``SystemExit(2)``,
    before anything is read or written."""
    return cli.run(_main, argv, prog=_prog())


def _main(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = argv[0] if argv and argv[0] in COMMANDS else None
    parser = build_parser(only=chosen or "")
    name, args = _parse_subcommand(parser, COMMANDS, argv, dest="dataset")
    if name == "features":
        return _features(args)
    raw, out = _path_flag("--raw", args.raw), _path_flag("--out", args.out)
    options = _validate(name, args, raw, out)
    stage = staging_folder(out)
    try:
        counts, summary = prepare(name, raw, out, check=args.check, progress=_tqdm_progress,
                                  **options)
    except (DatasetError, MediaError, OSError) as exc:
        left = "was not created" if not out.exists() else "was left as it was"
        kept = f"; the work done so far is in {stage}, a rerun resumes" if stage.exists() else ""
        return _fail(f"{cli.one_line(exc)} ({out} {left}{kept})")
    _say(f"{name}: wrote {out} ({', '.join(f'{s} {n}' for s, n in counts.items())})")
    if summary is not None:
        _say(f"loaded with the {name} reader: {summary['counts']}, input shapes "
             f"{summary['input_shapes']}; decoded all {summary['decoded']} media files")
    return 0


def _features(args: FeaturesArgs) -> int:
    out = _path_flag("--out", args.out)
    _check_out_path("--out", out, folder=False)
    cli.check_at_least("--seed", args.seed, 0, 2**32 - 1)
    cli.check_at_least("--batch-size", args.batch_size, 1)
    for w in args.weights:
        _, sep, path = w.partition("=")
        if sep and path.strip() and not Path(path.strip()).expanduser().exists():
            raise UsageError(f"--weights={w!r}: {path.strip()} does not exist")
    _check_device(args.device)
    for flag, given in (("--set", ()), ("--weights", args.weights)):
        try:
            features_config(args.preset, args.set, given)
        except (ValueError, TypeError) as exc:
            text = cli.one_line(exc)
            raise UsageError(f"--{text}" if text.startswith("preset=") else
                             text if text.startswith("--") else f"{flag}: {text}") from None
    existed = out.exists()
    try:
        meta = prepare_features(args.preset, out, overrides=args.set, weights=args.weights,
                                seed=args.seed, batch_size=args.batch_size, device=args.device,
                                progress=_tqdm_progress)
    except (DatasetError, MediaError, OSError) as exc:
        return _fail(f"{cli.one_line(exc)} ({out} "
                     f"{'was left as it was' if existed else 'was not written'})")
    _say(f"wrote {out}: {meta['dataset']} features of {meta['modalities']} "
         f"({meta['encoders']}); train with preset {args.preset}_features and "
         f"data.path={out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
