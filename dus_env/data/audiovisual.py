"""One reader for the audio-visual benchmarks: CREMA-D and Kinetics-Sounds.

Both use the layout ``dus-prepare {cremad,kinetics_sounds}`` writes
(docs/datasets.md has the full tree and file counts)::

    <root>/train.csv, test.csv, [val.csv]   rows "clip,label" (no header; OGM-GE's
                                            "clip,<n>,label" rows are accepted too)
    <root>/[classes.txt]                    Kinetics-Sounds: must equal the shipped list
    <root>/audio/<clip>.npy                 float32 log-magnitude spectrogram (F, T)
    <root>/frames/<clip>/<00000>.jpg ...    frames (1 fps for CREMA-D), sorted by name

The modalities are ``audio`` (float32 ``(1, F, T)``) and ``visual`` (float32
``(n_frames, 3, S, S)``, uniformly spaced frames, ImageNet-normalised). Without ``val.csv`` a
stratified, seeded validation split is carved from train; the test split is never touched.
The two datasets differ only in their :class:`AVSpec`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch

from dus_env.config import CremadConfig, KineticsSoundsConfig
from dus_env.data.base import require_config
from dus_env.data.manifest import (
    DatasetError, Item, LazyDataset, LazySplit, Problems, carve_val, check_classes, check_counts,
    check_items, read_text, require_file, resolve_root,
)
from dus_env.data.media import ArrayFile, load_frames, verify_frames

CREMAD_CLASSES: tuple[str, ...] = ("NEU", "HAP", "SAD", "FEA", "DIS", "ANG")
"""CREMA-D emotions in OGM-GE's index order."""


def kinetics_sounds_classes() -> tuple[str, ...]:
    """The 31 shipped Kinetics-Sounds classes (data/files/kinetics_sounds_classes.txt)."""
    text = resources.files("dus_env.data").joinpath("files", "kinetics_sounds_classes.txt")
    return tuple(
        line.strip() for line in text.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )


@dataclass(frozen=True)
class AVSpec:
    """What differs between the audio-visual benchmarks."""

    name: str
    env_var: str
    classes: Callable[[], tuple[str, ...]]
    normalize_label: Callable[[str], str]
    canonical_counts: dict[str, int] = field(default_factory=dict)
    check_class_file: bool = False


CREMAD = AVSpec(
    name="cremad", env_var="DUS_CREMAD_ROOT", classes=lambda: CREMAD_CLASSES,
    normalize_label=lambda s: s.strip().upper(), canonical_counts={"train": 6698, "test": 744},
)
KINETICS_SOUNDS = AVSpec(
    name="kinetics_sounds", env_var="DUS_KS_ROOT", classes=kinetics_sounds_classes,
    normalize_label=lambda s: s.strip().lower().replace(" ", "_"), check_class_file=True,
)
SPLIT_FILES: dict[str, str] = {"train": "train.csv", "val": "val.csv", "test": "test.csv"}
AUDIO = ArrayFile("(F, T)", "float")
"""A prepared clip's log-spectrogram (``audio/<clip>.npy``), checked when it is read."""


def parse_split_file(path: Path, split: str, spec: AVSpec, root: Path,
                     class_index: dict[str, int], problems: Problems) -> list[Item]:
    """Rows of one split file; malformed rows are reported with file and line."""
    items, seen = [], set()
    for lineno, line in enumerate(read_text(path, "lines 'clip,label'").splitlines(), start=1):
        if not line.strip():
            continue
        source = f"{path}:{lineno}"
        parts = [p.strip() for p in line.split(",")]
        if len(parts) not in (2, 3) or not parts[0]:
            problems.report(split, source, f"expected 'clip,label', got {line!r}")
            continue
        clip, label = parts[0], spec.normalize_label(parts[-1])
        if label not in class_index:
            problems.report(split, source, f"unknown label {parts[-1]!r}; the {len(class_index)} "
                            f"classes are {list(class_index)}")
            continue
        if clip in seen:
            problems.report(split, source, f"clip {clip!r} appears twice")
            continue
        seen.add(clip)
        media = {"audio": root / "audio" / f"{clip}.npy", "visual": root / "frames" / clip}
        items.append(Item(clip, class_index[label], media, source))
    return items


def _check_class_file(root: Path, classes: tuple[str, ...], spec: AVSpec) -> None:
    path = root / "classes.txt"
    if not path.is_file():
        return
    found = [spec.normalize_label(x) for x in read_text(path, "one class name a line").splitlines()
             if x.strip()]
    if sorted(found) != sorted(classes):
        raise DatasetError(
            f"{path} lists {len(found)} classes but {spec.name} has {len(classes)}: "
            f"extra {sorted(set(found) - set(classes))}, missing {sorted(set(classes) - set(found))}"
        )


def load_audiovisual(config: CremadConfig | KineticsSoundsConfig, spec: AVSpec) -> LazyDataset:
    """The dataset ``spec`` in ``config.root`` (see the module docstring for the layout)."""
    root = resolve_root(config.root, spec.name, spec.env_var)
    classes = spec.classes()
    class_index = {c: i for i, c in enumerate(classes)}
    if spec.check_class_file:
        _check_class_file(root, classes, spec)
    problems = Problems(config.on_error)
    rows: dict[str, list[Item]] = {}
    for split in ("train", "test", "val"):
        path = root / SPLIT_FILES[split]
        if split == "val" and not path.exists():
            continue
        require_file(path, f"{spec.name} {split} split file")
        rows[split] = parse_split_file(path, split, spec, root, class_index, problems)
    if getattr(config, "expect_canonical", False):
        check_counts({s: len(r) + sum(1 for k in problems.skipped if k.split == s)
                      for s, r in rows.items()}, spec.canonical_counts, spec.name)

    def audio(item: Item) -> torch.Tensor:
        return torch.from_numpy(AUDIO(item.media["audio"]).astype("float32"))[None]

    def visual(item: Item) -> torch.Tensor:
        return load_frames(item.media["visual"], config.n_frames, config.image_size)

    verify = {"audio": AUDIO, "visual": verify_frames} if config.verify else None
    checked = {s: check_items(s, r, problems, verify) for s, r in rows.items()}
    check_classes("train", checked["train"], classes, root / SPLIT_FILES["train"])
    if "val" not in checked:
        checked["train"], checked["val"] = carve_val(checked["train"], config.val_fraction,
                                                     config.split_seed)
    loaders = {"audio": audio, "visual": visual}
    return LazyDataset(
        name=spec.name, modalities=("audio", "visual"), class_names=classes,
        splits={s: LazySplit(tuple(checked[s]), loaders) for s in ("train", "val", "test")},
        root=root, skipped=tuple(problems.skipped),
    )


def load_cremad(config: CremadConfig) -> LazyDataset:
    """CREMA-D: 6 emotions, OGM-GE's 6,698 / 744 split plus a seeded validation split."""
    require_config("load_cremad", config, CremadConfig)
    return load_audiovisual(config, CREMAD)


def load_kinetics_sounds(config: KineticsSoundsConfig) -> LazyDataset:
    """Kinetics-Sounds: the 31 shipped classes, any split with every class in train."""
    require_config("load_kinetics_sounds", config, KineticsSoundsConfig)
    return load_audiovisual(config, KINETICS_SOUNDS)
