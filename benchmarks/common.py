"""What every benchmark shares: its flags, its start-up, its statistics and its JSON.

* :class:`BenchArgs`: the base of each benchmark's dataclass of flags (``--out``, ``--smoke``,
  ``--threads``); :func:`parse` turns ``argv`` into one with :mod:`dus_agents.cli.common` and applies the
  class's ``SMOKE`` settings under ``--smoke``; :func:`run` is the ``python -m`` entry point;
* :func:`setup`: threads (torch, the BLAS/OpenMP pools of this process and of the processes it
  starts) and logging to stderr in one format; :func:`logger` names a benchmark's logger;
* :func:`mean_ci` (Student-t interval of the mean, from
  :func:`dus_agents.evaluation.stats.t_interval`, the project's one implementation) and
  :func:`median_spread` (median, quartiles, min, max: timing ratios);
* :func:`write_json`: NaN to null, strict JSON, written atomically (:mod:`dus_env.files`);
* :func:`machine_info`: the machine a benchmark ran on (recorded in its JSON);
* :func:`worker_pool`: a process pool whose workers end with it, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import math
import os
import platform
import signal
import statistics
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from dus_agents.cli import common as cli
from dus_env.files import atomic_write

ROOT = Path(__file__).resolve().parents[1]
"""The repository checkout (``python -m benchmarks.NAME`` runs from here)."""
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
"""Environment variables that size the BLAS/OpenMP pools of the processes a benchmark starts."""
LOG_FORMAT = "%(asctime)s %(name)s: %(message)s"
"""The one log line format (stderr); stdout carries the reports and ``smoke ok``."""

A = TypeVar("A", bound="BenchArgs")


# --------------------------------------------------------------------------- flags
@dataclasses.dataclass
class BenchArgs:
    """The flags every benchmark has; a benchmark's own dataclass subclasses this one."""

    out: str = dataclasses.field(default="", metadata={"metavar": "PATH"})
    """JSON output path; empty: print only."""
    smoke: bool = False
    """Seconds-long self-check: tiny preset, tiny budgets; checks that the output parses."""
    threads: int = 1
    """CPU threads: torch's and the BLAS/OpenMP pools' (the linear probes), in this process
    and in the processes it starts; small models run fastest on 1."""

    SMOKE: ClassVar[dict[str, Any]] = {}
    """Field values ``--smoke`` sets, over the command line's."""


def _module_name(module: str) -> str:
    """``benchmarks.NAME`` for a module name, ``__main__`` (``python -m``) included."""
    spec = getattr(sys.modules.get(module), "__spec__", None)
    return spec.name if spec is not None and spec.name else module


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The module docstring as written, each flag's default after its help."""


def build_parser(cls: type[BenchArgs]) -> argparse.ArgumentParser:
    """``cls``'s parser: prog ``python -m benchmarks.NAME``, the module docstring as the
    description; fields with ``metadata={"hidden": True}`` are left out of ``--help``."""
    name = _module_name(cls.__module__)
    parser = cli.build_parser(cls, prog=f"python -m {name}",
                              description=sys.modules[cls.__module__].__doc__)
    parser.formatter_class = _Formatter
    hidden = {f.name for f in dataclasses.fields(cls) if f.metadata.get("hidden")}
    for action in parser._actions:
        if action.dest in hidden:
            action.help = argparse.SUPPRESS
    return parser


def parse(cls: type[A], argv: Sequence[str] | None = None) -> A:
    """An instance of ``cls`` from ``argv`` (``sys.argv[1:]`` when None); under ``--smoke``
    the class's ``SMOKE`` values replace the parsed ones. Checked before any work (a
    :class:`dus_env.errors.UsageError` otherwise): every ``--preset`` / ``--*-preset`` names a
    preset, and ``--out`` is a file path that can be written, so a run of minutes does not end
    by losing its result."""
    args, _ = cli.parse(cls, argv, build_parser(cls))
    if args.smoke and cls.SMOKE:
        args = dataclasses.replace(args, **cls.SMOKE)
    check_args(args)
    return args


def check_args(args: BenchArgs) -> None:
    """The checks of :func:`parse` on parsed flags: presets named, ``--out`` writable."""
    from dus_env.config import PRESETS

    for f in dataclasses.fields(args):
        value = getattr(args, f.name)
        if (f.name == "preset" or f.name.endswith("_preset")) and isinstance(value, str):
            cli.check_option(cli.flag_name(f.name), value, PRESETS)
    if args.out:
        cli.check_output_file("--out", args.out)


def run(main: Callable[[Sequence[str] | None], Any], argv: Sequence[str] | None = None) -> int:
    """The ``python -m benchmarks.NAME`` entry point: ``main(argv)``; exit status 0 unless
    ``main`` returns an int; a :class:`dus_env.errors.UsageError` is one line on stderr and
    exit status 2."""
    def call(a: Sequence[str] | None) -> int:
        result = main(a)
        return result if isinstance(result, int) and not isinstance(result, bool) else 0

    if threading.current_thread() is not threading.main_thread():
        return cli.run(call, argv, prog=f"python -m {_module_name(main.__module__)}")
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        return cli.run(call, argv, prog=f"python -m {_module_name(main.__module__)}")
    finally:
        signal.signal(signal.SIGTERM, previous)


def _terminated(signum: int, frame: Any) -> None:
    """SIGTERM in a benchmark's main process: unwind like an exception (exit status 143), so
    its pools end their workers and what it finished stays written."""
    raise SystemExit(128 + signum)


def _start_worker(initializer: Callable[..., Any] | None, initargs: tuple[Any, ...]) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a worker told to end ends
    if initializer is not None:
        initializer(*initargs)


@contextlib.contextmanager
def worker_pool(jobs: int, initializer: Callable[..., Any] | None = None,
                initargs: tuple[Any, ...] = ()) -> Iterator[ProcessPoolExecutor]:
    """A ``ProcessPoolExecutor`` of ``jobs`` workers (each running ``initializer(*initargs)``
    first) that ends with the block: on a normal exit it waits for the workers; on an
    exception, Ctrl-C or SIGTERM (:func:`run` turns it into ``SystemExit(143)``) it drops the
    tasks not started and terminates the workers at once, so none computes on orphaned."""
    pool = ProcessPoolExecutor(jobs, initializer=_start_worker,
                               initargs=(initializer, tuple(initargs)))
    try:
        yield pool
    except BaseException:
        workers = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.join(timeout=10)
        raise
    pool.shutdown()


# --------------------------------------------------------------------------- start-up
class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (pytest swaps it per test)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


_limits: Any = None  # the threadpoolctl limit of this process, kept alive


PAIRED_REWARDS = ("paired", "paired_best")
"""The rewards a benchmark can score paired episodes by: the final validation accuracy, or the
best so far (what model selection on validation keeps), minus the reference run's."""


check_option = cli.check_option  # the benchmarks' choice flags, as every script's


def logger(name: str) -> logging.Logger:
    """The logger of benchmark ``name`` (``benchmarks.NAME``; :func:`setup` configures it)."""
    return logging.getLogger(f"benchmarks.{name}")


def setup(args: BenchArgs, verbose: bool = True) -> None:
    """Threads and logging for a benchmark run (idempotent).

    ``--threads`` sets torch's intra-op threads, limits the BLAS/OpenMP pools already loaded in
    this process (threadpoolctl) and sets :data:`THREAD_VARS`, so pools loaded later and the
    processes this one starts use as many (on a shared 2-core machine, oversubscribed linear
    probes run ~40x slower). Log records of ``benchmarks.*`` go to stderr in
    :data:`LOG_FORMAT`, at INFO (``verbose``) or WARNING."""
    global _limits
    cli.check_at_least("--threads", args.threads, 1, cli.MAX_THREADS)
    for var in THREAD_VARS:
        os.environ[var] = str(args.threads)
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    _limits = threadpool_limits(limits=args.threads)
    root = logging.getLogger("benchmarks")
    if not any(isinstance(h, _StderrHandler) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter(LOG_FORMAT, datefmt="%H:%M:%S"))
        root.addHandler(handler)
        root.propagate = False
    root.setLevel(logging.INFO if verbose else logging.WARNING)


# --------------------------------------------------------------------------- statistics
def mean_ci(values: Iterable[float], confidence: float = 0.95) -> dict[str, Any]:
    """Mean, sample std and the two-sided Student-t interval of the mean, JSON-ready:
    ``{"mean", "std", "ci_low", "ci_high", "n"}``, None where undefined (n < 2). Built on
    :func:`dus_agents.evaluation.stats.t_interval` (non-finite values are dropped there)."""
    from dus_agents.evaluation.stats import t_interval

    iv = t_interval(values, confidence)
    return finite_or_none({"mean": iv.mean, "std": iv.std, "ci_low": iv.low,
                           "ci_high": iv.high, "n": iv.n})


def median_spread(values: Sequence[float], *, with_n: bool = True,
                  with_values: bool = False) -> dict[str, Any]:
    """Median, quartiles ``q1``/``q3``, ``min``, ``max`` of timings or timing ratios (plus
    ``n`` and, with ``with_values``, the values themselves)."""
    import numpy as np

    q1, q3 = (float(v) for v in np.percentile(values, [25, 75]))
    out: dict[str, Any] = {"median": statistics.median(values), "q1": q1, "q3": q3,
                           "min": min(values), "max": max(values)}
    if with_n:
        out["n"] = len(values)
    if with_values:
        out["values"] = list(values)
    return out


# --------------------------------------------------------------------------- output
def finite_or_none(obj: Any) -> Any:
    """``obj`` with every non-finite float (in dicts, lists, tuples) replaced by None."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_none(v) for v in obj]
    return obj


def write_json(out: str | os.PathLike | None, payload: Any, indent: int = 1,
               default: Callable[[Any], Any] | None = None) -> str:
    """``payload`` as strict JSON (NaN and infinities as null); written atomically to ``out``
    (parent folders created) unless ``out`` is empty. Returns the text."""
    text = json.dumps(finite_or_none(payload), indent=indent, allow_nan=False, default=default)
    if out:
        atomic_write(out, text + "\n")
    return text


def earlier_run(out: str, resume: bool) -> dict[str, Any] | None:
    """``--resume``: the JSON an earlier run wrote to ``out`` (None when not resuming or there
    is none yet); an unreadable one is a usage error naming the file."""
    if not (resume and out and Path(out).is_file()):
        return None
    from dus_env.errors import UsageError

    try:
        return json.loads(Path(out).read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"--resume: cannot read {out}: {exc}") from None


def interval_text(iv: dict[str, Any] | None, digits: int = 2, scale: float = 1.0) -> str:
    """An interval (``t_interval(...).as_dict()`` shape) as ``+1.23 [+0.10, +2.36]``, each value
    times ``scale`` (100: fractions as points); the mean alone when it has no bounds (n < 2),
    ``n/a`` when there is no mean."""
    if not iv or iv.get("mean") is None:
        return "n/a"
    if iv.get("low") is None:
        return f"{scale * iv['mean']:+.{digits}f}"
    return (f"{scale * iv['mean']:+.{digits}f} [{scale * iv['low']:+.{digits}f}, "
            f"{scale * iv['high']:+.{digits}f}]")


def command_line(argv: Sequence[str]) -> str:
    """A recorded ``sys.argv`` as a reader would type it: ``python -m benchmarks.NAME ...``
    for a benchmark module (``python -m`` records the file's absolute path), else as is."""
    if not argv:
        return ""
    head = Path(argv[0])
    if head.suffix == ".py" and head.parent.name == "benchmarks":
        return " ".join([f"python -m benchmarks.{head.stem}", *argv[1:]])
    return " ".join(argv)


def cpu_model() -> str:
    """The CPU's model name as /proc/cpuinfo gives it ("" where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def machine_info() -> dict[str, Any]:
    """CPU model and count, Python, torch and platform versions, GPU presence."""
    import torch

    return {
        "cpu_model": cpu_model(), "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": platform.python_version(), "torch": torch.__version__,
        "platform": platform.platform(), "gpu": bool(torch.cuda.is_available()),
        "torch_threads": torch.get_num_threads(),
    }
