"""Shared machinery of the file-backed readers: data roots, validation, skips, lazy splits.

A reader parses its split files into :class:`Item` rows (sample id, label, media paths, the file
and line each came from), hands them to :func:`check_items` (missing media, optional decoding)
and wraps the survivors in a :class:`LazyDataset`, whose splits decode media on demand in
:meth:`LazySplit.get`. Problems are either raised with the file (and line) named, or, with
``on_error="skip"``, dropped, counted and reported in :attr:`LazyDataset.skipped` and one
``UserWarning``: never a silently different dataset.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from dus_env.data.base import SPLITS
from dus_env.errors import DatasetError, MediaError

DOCS = "docs/datasets.md"


def resolve_root(configured: str | None, dataset: str, env_var: str) -> Path:
    """The data folder: ``configured``, else ``$env_var``, else ``$DUS_DATA_ROOT/<dataset>``.

    Raises ``FileNotFoundError`` saying which of these was used and how to prepare the data.
    """
    if configured is not None:
        root, origin = Path(configured).expanduser(), "data.root"
    elif os.environ.get(env_var):
        root, origin = Path(os.environ[env_var]).expanduser(), f"${env_var}"
    elif os.environ.get("DUS_DATA_ROOT"):
        root = Path(os.environ["DUS_DATA_ROOT"]).expanduser() / dataset
        origin = "$DUS_DATA_ROOT/" + dataset
    else:
        raise FileNotFoundError(
            f"no data folder for {dataset!r}: set data.root, or the environment variable "
            f"{env_var}, or DUS_DATA_ROOT (which must contain {dataset}/). Create it with "
            f"`dus-prepare {dataset} --raw RAW --out DIR` ({DOCS})."
        )
    if not root.is_dir():
        raise FileNotFoundError(
            f"{dataset} data folder {root} (from {origin}) does not exist. Create it with "
            f"`dus-prepare {dataset} --raw RAW --out {root}` ({DOCS})."
        )
    return root


def read_text(path: Path, expected: str = "a UTF-8 text file") -> str:
    """The text of a split / list / class file, or :class:`DatasetError` naming it when it is
    not UTF-8 text (``expected`` says what it should be)."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path} is not a UTF-8 text file ({exc.reason} at byte "
                           f"{exc.start}); expected {expected}") from None


def tsv_rows(path: Path, text: str) -> list[list[str]]:
    """The tab-separated rows of ``text`` (read from ``path``), unquoted as TomBERT writes them;
    a row the csv module refuses (e.g. a field past its size limit) is a :class:`DatasetError`
    naming the file and line."""
    import csv
    import io

    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
    try:
        return list(reader)
    except csv.Error as exc:
        raise DatasetError(f"{path}:{reader.line_num}: {exc}") from None


def require_file(path: Path, what: str) -> Path:
    """``path`` if it is a file, else ``FileNotFoundError`` naming it and ``what`` it is."""
    if not path.is_file():
        raise FileNotFoundError(f"missing {what}: {path} (layout: {DOCS})")
    return path


@dataclass(frozen=True)
class Skip:
    """One sample left out of the dataset, and why."""

    split: str
    source: str
    """``file:line`` of the row, or the media file."""
    reason: str


@dataclass(frozen=True)
class Item:
    """One parsed row of a split file."""

    key: str
    """Sample id (clip name, image id, list index)."""
    label: int
    media: Mapping[str, Path]
    """Modality -> file or folder holding that modality of this sample."""
    source: str
    """``file:line`` the row came from (for error messages)."""


class Problems:
    """Collects row- and file-level problems under the ``raise`` / ``skip`` policy."""

    def __init__(self, on_error: str) -> None:
        self.on_error = on_error
        self.skipped: list[Skip] = []

    def report(self, split: str, source: str, reason: str, exc: type[Exception] = DatasetError) -> None:
        if self.on_error == "raise":
            raise exc(f"{source}: {reason} (pass data.on_error='skip' to drop such samples)")
        self.skipped.append(Skip(split, source, reason))


def check_items(
    split: str,
    items: Sequence[Item],
    problems: Problems,
    verify: Mapping[str, Callable[[Path], object]] | None,
) -> list[Item]:
    """Items whose media all exist (and decode, when ``verify`` maps modality -> decoder)."""
    kept = []
    for item in items:
        ok = True
        for modality, path in item.media.items():
            if not path.exists():
                problems.report(split, item.source,
                                f"missing {modality} file {path} of sample {item.key!r}",
                                FileNotFoundError)
                ok = False
                break
            if verify is not None:
                try:
                    verify[modality](path)
                except MediaError as exc:
                    problems.report(split, item.source, str(exc), MediaError)
                    ok = False
                    break
        if ok:
            kept.append(item)
    return kept


def check_classes(split: str, items: Sequence[Item], class_names: Sequence[str], where: Path) -> None:
    """Every class must occur in the train split (else the class list and the data disagree)."""
    present = {it.label for it in items}
    missing = [c for i, c in enumerate(class_names) if i not in present]
    if missing:
        raise DatasetError(
            f"{where}: the {split} split has samples of {len(present)} of the "
            f"{len(class_names)} expected classes; none of {missing}"
        )


def check_counts(split_counts: Mapping[str, int], canonical: Mapping[str, int], dataset: str) -> None:
    """Row counts of the split files must equal the published ones (``expect_canonical``)."""
    bad = {s: n for s, n in split_counts.items() if s in canonical and n != canonical[s]}
    if bad:
        detail = ", ".join(f"{s}: {n} rows (expected {canonical[s]:,})" for s, n in bad.items())
        raise DatasetError(
            f"{dataset} split files differ from the canonical split: {detail}. Set "
            f"data.expect_canonical=False to use a different split on purpose."
        )


def stratified_holdout(labels: np.ndarray, fraction: float,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held-out) sorted indices: ``round(fraction * n)`` of each class held out, at least
    one for every class with two or more samples (so tiny datasets still get every class)."""
    kept: list[int] = []
    held: list[int] = []
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        idx = idx[rng.permutation(len(idx))]
        n_out = max(1, int(round(fraction * len(idx)))) if len(idx) >= 2 else 0
        n_out = min(n_out, len(idx) - 1) if len(idx) >= 2 else 0
        held.extend(idx[:n_out].tolist())
        kept.extend(idx[n_out:].tolist())
    return np.sort(np.asarray(kept, dtype=np.int64)), np.sort(np.asarray(held, dtype=np.int64))


def carve_val(items: list[Item], fraction: float, seed: int) -> tuple[list[Item], list[Item]]:
    """(train, val): a stratified, seeded validation split carved out of the train items."""
    labels = np.asarray([it.label for it in items])
    train_idx, val_idx = stratified_holdout(labels, fraction, np.random.default_rng(seed))
    if len(val_idx) == 0:
        raise DatasetError(
            f"val_fraction={fraction} of {len(items)} train samples leaves an empty split"
        )
    return [items[i] for i in train_idx], [items[i] for i in val_idx]


Loader = Callable[[Item], torch.Tensor]


@dataclass(frozen=True, eq=False)
class LazySplit:
    """A split whose media are decoded when :meth:`get` asks for them.

    ``preloaded`` holds modalities kept in memory (token ids); ``loaders`` decode the others.
    """

    items: tuple[Item, ...]
    loaders: Mapping[str, Loader]
    preloaded: Mapping[str, torch.Tensor] = field(default_factory=dict)

    @property
    def labels(self) -> torch.Tensor:
        return torch.tensor([it.label for it in self.items], dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.items)

    def get(self, modality: str, indices: np.ndarray | torch.Tensor) -> torch.Tensor:
        rows = torch.as_tensor(indices, dtype=torch.long)
        if modality in self.preloaded:
            return self.preloaded[modality][rows]
        if modality not in self.loaders:
            raise KeyError(f"unknown modality {modality!r}; valid choices: {sorted(self.loaders)}")
        load = self.loaders[modality]
        tensors = [load(self.items[int(i)]) for i in rows]
        shapes = {tuple(t.shape) for t in tensors}
        if len(shapes) > 1:
            detail = ", ".join(f"{self.items[int(i)].media[modality]}: {tuple(t.shape)}"
                               for i, t in zip(rows, tensors))
            raise DatasetError(f"{modality} samples differ in shape (re-run prepare): {detail}")
        return torch.stack(tensors)


@dataclass(frozen=True, eq=False)
class LazyDataset:
    """A file-backed multimodal dataset (implements :class:`MultimodalDataset`)."""

    name: str
    modalities: tuple[str, ...]
    class_names: tuple[str, ...]
    splits: Mapping[str, LazySplit]
    root: Path
    skipped: tuple[Skip, ...] = ()
    """Samples dropped under ``on_error='skip'`` (empty under ``raise``)."""

    def __post_init__(self) -> None:
        for s in SPLITS:
            if len(self.splits[s]) == 0:
                raise DatasetError(f"{self.name}: the {s} split of {self.root} is empty")
        if self.skipped:
            warnings.warn(
                f"{self.name}: skipped {len(self.skipped)} sample(s) with problems "
                f"(first: {self.skipped[0].source}: {self.skipped[0].reason}); see dataset.skipped",
                UserWarning, stacklevel=3,
            )

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @functools.cached_property
    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        train = self.splits["train"]
        return {m: tuple(train.get(m, [0]).shape[1:]) for m in self.modalities}

    def split(self, name: str) -> LazySplit:
        if name not in self.splits:
            raise ValueError(f"unknown split {name!r}; valid choices: {list(SPLITS)}")
        return self.splits[name]

    def counts(self) -> dict[str, int]:
        """Samples per split."""
        return {s: len(self.splits[s]) for s in SPLITS}
