"""Reference curves for the paired reward: validation accuracy of uniform sampling (or of DUS-H,
``reward.reference_policy="heuristic"``), per step.

The paired reward (``reward.name="paired"``) pays each step's validation-accuracy change
minus that of a *reference run*: the same task trained with uniform sampling from the same
episode seeds (same model initialisation, same sampler stream: common random numbers). Its
return telescopes to the final validation accuracy minus the reference's, so what every run
learns anyway and most of the seed noise cancel out.

A reference curve depends on the task's config (all of it but the reward's name and scales),
the two episode seeds, the data (where the config does not fix it: a file on disk), the code
that trains, the CPU kernels torch runs it on and torch's thread count; :func:`reference_key`
is all of that, as JSON.
Curves are computed once and kept in memory (:data:`MEMORY_CURVES` of them, shared by every env
of a process) and, with ``reward.reference_cache=FOLDER``, on disk: one JSON file per curve,
named by the hash of its key and holding the key itself. A folder written by another env
version, package version or torch build is refused (its ``cache.json`` says which), and an
entry whose stored key differs from the one asked for is refused naming the fields that differ.
The disk cache only saves time: a curve that cannot be written (a full disk, a read-only
folder) is used from memory, with a :class:`ReferenceCacheWarning`, and the episode goes on.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from dus_env import ENV_VERSION, __version__
from dus_env.config import EnvConfig, config_to_dict
from dus_env.files import atomic_write

CACHE_FORMAT = 1
MEMORY_CURVES = 4096
"""Reference curves kept in memory per process (a curve is a few dozen floats)."""
_MEMORY: OrderedDict[str, list[float]] = OrderedDict()
_LOCK = threading.Lock()


def code_versions() -> dict[str, Any]:
    """What a curve's numbers depend on besides the config and the seeds."""
    import torch

    return {"env_version": ENV_VERSION, "dus_env": __version__,
            "torch": torch.__version__, "cache_format": CACHE_FORMAT}


def reference_key(config: EnvConfig, model_seed: int, sampler_seed: int,
                  data: str | None = None) -> dict[str, Any]:
    """Everything the reference run's validation curve depends on, as JSON-ready values.

    ``data``: :func:`dus_env.data.data_fingerprint` of the dataset, for data kinds whose config
    does not fix the data (a file on disk); synthetic and mfeat data pass None (their keys are
    unchanged). A torch thread count other than 1 is recorded too: it changes the CPU kernels'
    summation order, so the numbers."""
    from dus_env.sampler import uniform_index  # torch, loaded when a curve is asked for
    from dus_env.seeding import cpu_capability

    cfg = config_to_dict(config)
    policy = cfg["reward"].get("reference_policy", "uniform")
    cfg["reward"] = {"val_subset_size": cfg["reward"]["val_subset_size"]}
    if policy != "uniform":  # uniform curves keep the keys (and cache files) they always had
        cfg["reward"]["reference_policy"] = policy
    cfg.pop("info_wall_time", None)
    if policy == "uniform":  # uniform sampling reads one grid value: the uniform one
        grid = cfg["sampler"].pop("multipliers", None)
        if grid and cfg["sampler"].get("action", "grid") == "grid":
            value = float(grid[uniform_index(grid)])
            if not math.isclose(value, 1.0):  # a grid without 1.0 (its middle value)
                cfg["sampler"]["uniform_multiplier"] = value
    # each CPU kernel path has its own entries: a folder shared by unlike CPUs (a Ray
    # cluster) never serves one path's curve to the other
    key = {"config": cfg, "seeds": [int(model_seed), int(sampler_seed)], **code_versions(),
           "torch_cpu_capability": cpu_capability()}
    if data is not None:
        key["data_fingerprint"] = data
    threads = torch_threads()
    if threads != 1:  # PPO's env workers run at 1 thread: the keys they always had
        key["torch_threads"] = threads
    return json.loads(json.dumps(key))  # tuples as lists, as a cache file holds them


def torch_threads() -> int:
    """torch's intra-op thread count (what the reference run computes with)."""
    import torch

    return int(torch.get_num_threads())


def _digest(key: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode("utf-8")).hexdigest()


def _differences(want: Any, got: Any, where: str = "") -> list[str]:
    if isinstance(want, dict) and isinstance(got, dict):
        out = []
        for k in sorted(set(want) | set(got)):
            out += _differences(want.get(k), got.get(k), f"{where}.{k}" if where else str(k))
        return out
    return [] if want == got else [f"{where}: {got!r} (cache) vs {want!r} (this env)"]


class ReferenceCacheWarning(RuntimeWarning):
    """A reference curve could not be written to the disk cache (it is still used)."""


class ReferenceCache:
    """The disk side of the reference curves: a folder of JSON files (see the module doc).

    Args:
        folder: the cache folder (created if missing).
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        manifest = self.folder / "cache.json"
        mine = code_versions()
        if manifest.is_file():
            try:
                theirs = json.loads(manifest.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise ValueError(f"reward.reference_cache={str(self.folder)!r}: its cache.json "
                                 f"is damaged ({exc}); remove the folder") from None
            diffs = _differences(mine, theirs)
            if diffs:
                raise ValueError(
                    f"reward.reference_cache={str(self.folder)!r} was written by other code "
                    f"and cannot be used here: " + "; ".join(diffs)
                    + "; point reward.reference_cache at another folder"
                )
        else:
            atomic_write(manifest, json.dumps(mine, indent=1) + "\n")

    def path(self, key: Mapping[str, Any]) -> Path:
        return self.folder / f"{_digest(key)}.json"

    def read(self, key: Mapping[str, Any], length: int | None = None) -> list[float] | None:
        """The curve stored for ``key`` (None when there is none); ``length``: the number of
        values a curve of this task has (steps per episode + 1). A damaged entry, or one whose
        curve is not that many accuracies in [0, 1] (None for a diverged value), is refused
        naming the file."""
        path = self.path(key)
        if not path.is_file():
            return None

        def damaged(why: object) -> ValueError:
            return ValueError(f"reference cache entry {str(path)!r} is damaged ({why}); remove it")

        try:
            entry = json.loads(path.read_text())
            stored, curve = entry["key"], entry["curve"]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
            raise damaged(exc) from None
        diffs = _differences(dict(key), stored)
        if diffs:
            raise ValueError(f"reference cache entry {str(path)!r} was computed for another run "
                             "and is refused: " + "; ".join(diffs[:5]))
        if not isinstance(curve, list) or (length is not None and len(curve) != length):
            raise damaged(f"its curve is {type(curve).__name__} of "
                          f"{len(curve) if isinstance(curve, list) else 'no'} values; expected "
                          f"a list of {length if length is not None else 'the'} accuracies")
        for value in curve:
            if value is not None and not (isinstance(value, (int, float))
                                          and not isinstance(value, bool)
                                          and 0.0 <= value <= 1.0):
                raise damaged(f"its curve holds {value!r}; expected accuracies in [0, 1]")
        return [float("nan") if v is None else float(v) for v in curve]

    def write(self, key: Mapping[str, Any], curve: list[float]) -> None:
        payload = {"key": dict(key),
                   "curve": [v if math.isfinite(v) else None for v in curve]}
        atomic_write(self.path(key), json.dumps(payload) + "\n")


def reference_curve(key: Mapping[str, Any], compute: Callable[[], list[float]],
                    cache: ReferenceCache | None = None, length: int | None = None
                    ) -> tuple[list[float], str]:
    """The curve for ``key``: from memory, else from ``cache`` (checked to hold ``length``
    accuracies), else ``compute()`` (then kept in both). Returns the curve and where it came
    from (``memory``, ``disk``, ``computed``)."""
    digest = _digest(key)
    with _LOCK:
        if digest in _MEMORY:
            _MEMORY.move_to_end(digest)
            return list(_MEMORY[digest]), "memory"
    curve, source = (cache.read(key, length) if cache is not None else None), "disk"
    if curve is None:
        curve, source = compute(), "computed"
        if cache is not None:
            try:
                cache.write(key, curve)
            except OSError as exc:  # the cache only saves time: the episode goes on
                warnings.warn(f"reference cache entry {str(cache.path(key))!r} could not be "
                              f"written ({type(exc).__name__}: {exc}); the curve is used from "
                              "memory and recomputed in other processes",
                              ReferenceCacheWarning, stacklevel=2)
    with _LOCK:
        _MEMORY[digest] = list(curve)
        while len(_MEMORY) > MEMORY_CURVES:
            _MEMORY.popitem(last=False)
    return list(curve), source


def clear_memory() -> None:
    """Forget the in-memory curves (tests, benchmarks of the cold path)."""
    with _LOCK:
        _MEMORY.clear()
