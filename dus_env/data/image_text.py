"""One reader for the image-text benchmarks: Twitter2015 and Sarcasm.

Layouts (docs/datasets.md has the trees and file counts)::

    Twitter2015 (TomBERT release)            Sarcasm (JSON records)
    <root>/train.tsv, dev.tsv, test.tsv      <root>/train.json, valid.json, test.json
    <root>/images/<ImageID>                  <root>/images/<image>

A ``.tsv`` has a header row; the columns are found by name (``Label`` / ``#1 Label``,
``String`` / ``#3 String``, ``ImageID`` / ``#2 ImageID``); when a second ``String`` column holds
the target entity (TomBERT), it replaces ``$T$`` in the sentence. A ``.json`` file is a list of
``{"image": ..., "text": ..., "label": ...}`` records. Labels are class indices (0..2 or 0..1).

The modalities are ``image`` (float32 ``(3, S, S)``, ImageNet-normalised, decoded on demand) and
``text`` (int64 token ids ``(max_length,)``, 0-padded, tokenised once at load time with the
built-in hashing tokenizer or a local Hugging Face tokenizer).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from dus_env.config import SarcasmConfig, Twitter2015Config
from dus_env.data.base import require_config
from dus_env.data.manifest import (
    DatasetError, Item, LazyDataset, LazySplit, Problems, check_classes, check_counts, check_items,
    read_text, require_file, resolve_root, tsv_rows,
)
from dus_env.data.media import hash_tokenize, hf_tokenize, load_image

TWITTER_CLASSES: tuple[str, ...] = ("negative", "neutral", "positive")
SARCASM_CLASSES: tuple[str, ...] = ("not_sarcastic", "sarcastic")


@dataclass(frozen=True)
class ImageTextSpec:
    """What differs between the image-text benchmarks."""

    name: str
    env_var: str
    classes: tuple[str, ...]
    split_files: dict[str, str]
    canonical_counts: dict[str, int]


TWITTER2015 = ImageTextSpec(
    "twitter2015", "DUS_TWITTER2015_ROOT", TWITTER_CLASSES,
    {"train": "train.tsv", "val": "dev.tsv", "test": "test.tsv"},
    {"train": 3179, "val": 1122, "test": 1037},
)
SARCASM = ImageTextSpec(
    "sarcasm", "DUS_SARCASM_ROOT", SARCASM_CLASSES,
    {"train": "train.json", "val": "valid.json", "test": "test.json"},
    {"train": 19816, "val": 2410, "test": 2409},
)


def _column(header: list[str], name: str, path: Path) -> list[int]:
    found = [i for i, h in enumerate(header) if h.split(" ")[-1].strip().lower() == name.lower()]
    if not found:
        raise ValueError(f"{path}:1: header {header} has no {name!r} column")
    return found


def _parse_label(value: object, n_classes: int) -> int:
    label = int(str(value).strip())
    if not 0 <= label < n_classes:
        raise ValueError(f"label {value!r} is not a class index in 0..{n_classes - 1}")
    return label


def parse_tsv(path: Path, split: str, spec: ImageTextSpec, images: Path,
              problems: Problems) -> list[tuple[Item, str]]:
    """(item, text) rows of a TomBERT-style ``.tsv``."""
    rows = tsv_rows(path, read_text(path, "a TomBERT-style .tsv"))
    if not rows:
        raise ValueError(f"{path}:1: empty file, expected a header row")
    try:
        label_col = _column(rows[0], "Label", path)[0]
        image_col = _column(rows[0], "ImageID", path)[0]
        text_cols = _column(rows[0], "String", path)
    except ValueError as exc:
        raise DatasetError(str(exc)) from None
    out = []
    width = len(rows[0])
    for lineno, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        source = f"{path}:{lineno}"
        if len(row) != width:
            problems.report(split, source, f"expected {width} tab-separated fields, got {len(row)}")
            continue
        try:
            label = _parse_label(row[label_col], len(spec.classes))
        except ValueError as exc:
            problems.report(split, source, str(exc))
            continue
        text = row[text_cols[0]]
        if len(text_cols) > 1:
            text = text.replace("$T$", row[text_cols[1]])
        image_id = row[image_col].strip()
        out.append((Item(image_id, label, {"image": images / image_id}, source), text))
    return out


def parse_json(path: Path, split: str, spec: ImageTextSpec, images: Path,
               problems: Problems) -> list[tuple[Item, str]]:
    """(item, text) records of a JSON list of ``{image, text, label}``."""
    try:
        records = json.loads(read_text(path, "a JSON list of records"))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    if not isinstance(records, list):
        raise DatasetError(f"{path}: expected a JSON list of records, got {type(records).__name__}")
    out = []
    for k, rec in enumerate(records):
        source = f"{path}:record {k}"
        if not isinstance(rec, dict) or not {"image", "text", "label"} <= set(rec):
            problems.report(split, source, f"expected keys image, text, label; got {rec!r:.80}")
            continue
        try:
            label = _parse_label(rec["label"], len(spec.classes))
        except ValueError as exc:
            problems.report(split, source, str(exc))
            continue
        image = str(rec["image"]).strip()
        out.append((Item(image, label, {"image": images / image}, source), str(rec["text"])))
    return out


def load_image_text(config: Twitter2015Config | SarcasmConfig, spec: ImageTextSpec) -> LazyDataset:
    """The image-text dataset ``spec`` in ``config.root``."""
    root = resolve_root(config.root, spec.name, spec.env_var)
    images = root / "images"
    if not images.is_dir():
        raise FileNotFoundError(f"missing image folder {images} (layout: docs/datasets.md)")
    problems = Problems(config.on_error)
    parse = parse_json if spec.split_files["train"].endswith(".json") else parse_tsv
    parsed = {}
    for split, fname in spec.split_files.items():
        path = require_file(root / fname, f"{spec.name} {split} split file")
        parsed[split] = parse(path, split, spec, images, problems)
    if config.expect_canonical:
        check_counts({s: len(r) + sum(1 for k in problems.skipped if k.split == s)
                      for s, r in parsed.items()}, spec.canonical_counts, spec.name)

    def image(item: Item) -> torch.Tensor:
        return load_image(item.media["image"], config.image_size)

    verify = {"image": lambda p: load_image(p, 8)} if config.verify else None
    splits = {}
    for split, pairs in parsed.items():
        texts = {id(item): text for item, text in pairs}
        kept = check_items(split, [item for item, _ in pairs], problems, verify)
        kept_texts = [texts[id(item)] for item in kept]
        if config.tokenizer is None:
            tokens = hash_tokenize(kept_texts, config.max_length)
        else:
            tokens = hf_tokenize(kept_texts, config.max_length, config.tokenizer)
        splits[split] = LazySplit(tuple(kept), {"image": image}, {"text": tokens})
    check_classes("train", splits["train"].items, spec.classes, root / spec.split_files["train"])
    return LazyDataset(
        name=spec.name, modalities=("image", "text"), class_names=spec.classes, splits=splits,
        root=root, skipped=tuple(problems.skipped),
    )


def load_twitter2015(config: Twitter2015Config) -> LazyDataset:
    """Twitter2015: 3 sentiment classes, TomBERT's train / dev / test."""
    require_config("load_twitter2015", config, Twitter2015Config)
    return load_image_text(config, TWITTER2015)


def load_sarcasm(config: SarcasmConfig) -> LazyDataset:
    """Sarcasm: 2 classes, train / valid / test JSON records."""
    require_config("load_sarcasm", config, SarcasmConfig)
    return load_image_text(config, SARCASM)
