"""NVGesture (RGB + depth + optical flow, 25 gestures) from the official ``.lst`` split files.

Layout written by ``dus-prepare nvgesture`` (docs/datasets.md)::

    <root>/nvgesture_train_correct_cvpr2016_v2.lst    official lists (1,050 / 482 lines)
    <root>/nvgesture_test_correct_cvpr2016_v2.lst
    <root>/{rgb,depth,flow}/{train,test}/<k>.npy      clip of line k (0-based) of that list

``rgb`` is uint8 ``(T, H, W, 3)``, ``depth`` uint8 ``(T, H, W)``, ``flow`` float16
``(T, H, W, 2)`` (pixels per frame, from consecutive RGB frames). The reader returns float32
``(T, C, H, W)`` per modality: RGB ImageNet-normalised, depth scaled to about [-2, 2], flow
divided by 20 and clipped to [-1, 1]. A line reads
``path:./Video_data/class_01/subject13_r0 depth:sk_depth:113:227 color:sk_color:113:227 ...
label:1`` (labels 1..25 become classes 0..24).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dus_env.config import NVGestureConfig
from dus_env.data.base import require_config
from dus_env.data.manifest import (
    Item, LazyDataset, LazySplit, Problems, carve_val, check_classes, check_counts, check_items,
    read_text, require_file, resolve_root,
)
from dus_env.data.media import IMAGENET_MEAN, IMAGENET_STD, ArrayFile, uniform_indices

N_CLASSES: int = 25
LIST_FILES: dict[str, str] = {
    "train": "nvgesture_train_correct_cvpr2016_v2.lst",
    "test": "nvgesture_test_correct_cvpr2016_v2.lst",
}
CANONICAL_COUNTS: dict[str, int] = {"train": 1050, "test": 482}
MODALITIES: tuple[str, ...] = ("rgb", "depth", "flow")
ARRAYS: dict[str, ArrayFile] = {
    "rgb": ArrayFile("(T, H, W, 3)", "uint8"),
    "depth": ArrayFile("(T, H, W)", "uint8"),
    "flow": ArrayFile("(T, H, W, 2)", "float"),
}
"""What ``dus-prepare nvgesture`` writes per clip and modality, checked when a file is read."""
FLOW_SCALE: float = 20.0


def parse_line(line: str) -> dict[str, str]:
    """``key:value`` fields of one ``.lst`` line (value keeps its own colons)."""
    fields = {}
    for token in line.split():
        key, sep, value = token.partition(":")
        if not sep:
            raise ValueError(f"field {token!r} is not key:value")
        fields[key] = value
    missing = [k for k in ("path", "depth", "color", "label") if k not in fields]
    if missing:
        raise ValueError(f"missing fields {missing}")
    return fields


def parse_list(path: Path, split: str, root: Path, problems: Problems) -> tuple[list[Item], int]:
    """Items of one ``.lst`` file and its number of non-empty lines."""
    items, k = [], 0
    for lineno, line in enumerate(read_text(path, "the official .lst").splitlines(), start=1):
        if not line.strip():
            continue
        source, index = f"{path}:{lineno}", k
        k += 1
        try:
            fields = parse_line(line)
            label = int(fields["label"])
            if not 1 <= label <= N_CLASSES:
                raise ValueError(f"label {label} is not in 1..{N_CLASSES}")
        except ValueError as exc:
            problems.report(split, source, f"{exc} in {line.strip()!r}")
            continue
        media = {m: root / m / split / f"{index}.npy" for m in MODALITIES}
        items.append(Item(fields["path"], label - 1, media, source))
    return items, k


def _frames(x: np.ndarray, n_frames: int | None) -> np.ndarray:
    return x if n_frames is None else x[uniform_indices(len(x), n_frames)]


def load_nvgesture(config: NVGestureConfig) -> LazyDataset:
    """NVGesture in ``config.root``: official train / test plus a seeded validation split."""
    require_config("load_nvgesture", config, NVGestureConfig)
    root = resolve_root(config.root, "nvgesture", "DUS_NVGESTURE_ROOT")
    problems = Problems(config.on_error)
    rows, counts = {}, {}
    for split, fname in LIST_FILES.items():
        path = require_file(root / fname, f"NVGesture {split} list")
        rows[split], counts[split] = parse_list(path, split, root, problems)
    if config.expect_canonical:
        check_counts(counts, CANONICAL_COUNTS, "nvgesture")
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    def rgb(item: Item) -> torch.Tensor:
        x = torch.from_numpy(_frames(ARRAYS["rgb"](item.media["rgb"]), config.n_frames).copy())
        return (x.permute(0, 3, 1, 2).float() / 255.0 - mean) / std

    def depth(item: Item) -> torch.Tensor:
        x = torch.from_numpy(_frames(ARRAYS["depth"](item.media["depth"]), config.n_frames).copy())
        return (x[:, None].float() / 255.0 - 0.5) / 0.25

    def flow(item: Item) -> torch.Tensor:
        x = torch.from_numpy(_frames(ARRAYS["flow"](item.media["flow"]), config.n_frames).astype(np.float32))
        return (x.permute(0, 3, 1, 2) / FLOW_SCALE).clamp(-1.0, 1.0)

    verify = ARRAYS if config.verify else None
    checked = {s: check_items(s, r, problems, verify) for s, r in rows.items()}
    check_classes("train", checked["train"], [f"gesture_{i + 1}" for i in range(N_CLASSES)],
                  root / LIST_FILES["train"])
    checked["train"], checked["val"] = carve_val(checked["train"], config.val_fraction,
                                                 config.split_seed)
    loaders = {"rgb": rgb, "depth": depth, "flow": flow}
    return LazyDataset(
        name="nvgesture", modalities=MODALITIES,
        class_names=tuple(f"gesture_{i + 1}" for i in range(N_CLASSES)),
        splits={s: LazySplit(tuple(checked[s]), loaders) for s in ("train", "val", "test")},
        root=root, skipped=tuple(problems.skipped),
    )
