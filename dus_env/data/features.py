"""Features mode: frozen-encoder features of any dataset in one compact ``.npz`` file.

``dus-prepare features --preset cremad --out cremad_features.npz`` runs each
modality's encoder (the preset's :class:`ModelConfig`, local pretrained weights from
``model.weights`` when given, else a seeded random initialisation) once over every split and
stores the pooled features as float16. :func:`load_features` (data kind ``features``) reads
the file back as an in-memory :class:`TensorDataset`, so the DUS environment trains small MLP
encoders on real data on a CPU in seconds per episode.

File layout (``numpy.savez_compressed``): ``{split}/{modality}`` float16 ``(N, D)``,
``{split}/labels`` int64 ``(N,)``, and ``meta``: a JSON string with the dataset name,
modalities, class names, encoder kinds, the seed and the source config.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dus_env.config import FeaturesConfig, ModelConfig
from dus_env.data.base import (
    SPLITS, MultimodalDataset, TensorDataset, TensorSplit, require_config, standardize,
)
from dus_env.data.manifest import DatasetError
from dus_env.files import atomic_writer
from dus_env.models.encoders import ENCODERS
from dus_env.seeding import torch_rng

FORMAT_VERSION = 1


def extract_features(
    dataset: MultimodalDataset,
    model_config: ModelConfig,
    *,
    seed: int = 0,
    batch_size: int = 32,
    device: str = "cpu",
    progress: Callable[[Iterable[Any], int, str], Iterable[Any]] | None = None,
) -> dict[str, np.ndarray]:
    """``{split}/{modality}`` feature arrays and ``{split}/labels`` of every split.

    Encoders are built under a seeded, forked torch RNG (the global generator is untouched),
    put in eval mode and run without gradients. ``progress(iterable, total, description)``
    may wrap the batch loop (the CLI passes tqdm).
    """
    arrays: dict[str, np.ndarray] = {}
    shapes = dataset.input_shapes
    for j, modality in enumerate(dataset.modalities):
        kind = model_config.encoder_for(modality)
        with torch_rng(seed + j, device):
            encoder = ENCODERS.load(kind)(tuple(shapes[modality]), model_config).to(device).eval()
        for split_name in SPLITS:
            split = dataset.split(split_name)
            starts = range(0, len(split), batch_size)
            if progress is not None:
                starts = progress(starts, len(starts), f"{split_name}/{modality}")
            chunks = []
            with torch.no_grad():
                for s in starts:
                    rows = np.arange(s, min(s + batch_size, len(split)))
                    chunks.append(encoder(split.get(modality, rows).to(device)).float().cpu())
            arrays[f"{split_name}/{modality}"] = torch.cat(chunks).numpy().astype(np.float16)
            arrays[f"{split_name}/labels"] = split.labels.numpy().astype(np.int64)
    return arrays


def save_features(path: str | Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
    """Write arrays and metadata atomically (a partial file never replaces a good one)."""
    path = Path(path)
    full_meta = {"format_version": FORMAT_VERSION, **meta}
    with atomic_writer(path, "wb") as handle:
        np.savez_compressed(handle, meta=np.array(json.dumps(full_meta)), **arrays)
    return path


def read_meta(path: str | Path) -> dict[str, Any]:
    """The metadata of a features file."""
    with np.load(path, allow_pickle=False) as stored:
        return json.loads(str(stored["meta"]))


def _check_meta(path: Path, meta: Any) -> dict[str, Any]:
    """The file's metadata, or a :class:`DatasetError` naming the file and the bad entry."""
    if not isinstance(meta, dict):
        raise DatasetError(f"{path} is not a features file written by prepare: its 'meta' entry "
                           f"is missing or not a JSON object")
    expected = {"dataset": "a string", "modalities": "a list of names",
                "class_names": "a list of at least 2 names"}
    ok = {"dataset": isinstance(meta.get("dataset"), str),
          "modalities": isinstance(meta.get("modalities"), list)
          and all(isinstance(m, str) for m in meta["modalities"]),
          "class_names": isinstance(meta.get("class_names"), list)
          and len(meta["class_names"]) >= 2}
    for key, good in ok.items():
        if not good:
            raise DatasetError(f"{path}: meta[{key!r}] = {meta.get(key)!r} is not "
                               f"{expected[key]}")
    return meta


def _check_arrays(path: Path, data: dict[str, np.ndarray], modalities: Iterable[str],
                  n_classes: int) -> None:
    """Every array the reader uses is present, with the layout prepare writes: a DatasetError
    naming the file and the entry, before a tensor is built."""
    def bad(key: str, what: str) -> DatasetError:
        return DatasetError(f"{path}: entry {key!r} {what}")

    for s in SPLITS:
        key = f"{s}/labels"
        if key not in data:
            raise bad(key, "is missing")
        labels = data[key]
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer) or not len(labels):
            raise bad(key, f"is {labels.dtype} of shape {labels.shape}; expected a non-empty "
                           "1-D integer array")
        if labels.min() < 0 or labels.max() >= n_classes:
            raise bad(key, f"holds labels in [{labels.min()}, {labels.max()}]; the file's "
                           f"{n_classes} classes need [0, {n_classes - 1}]")
    for m in modalities:
        widths = set()
        for s in SPLITS:
            key = f"{s}/{m}"
            if key not in data:
                raise bad(key, "is missing")
            x = data[key]
            if x.ndim != 2 or not np.issubdtype(x.dtype, np.floating):
                raise bad(key, f"is {x.dtype} of shape {x.shape}; expected a 2-D float array")
            n_labels = len(data[f"{s}/labels"])
            if len(x) != n_labels:
                raise bad(key, f"has {len(x)} rows but {s}/labels has {n_labels}")
            if not np.isfinite(x).all():
                raise bad(key, "holds non-finite values (NaN or infinite)")
            widths.add(x.shape[1])
        if len(widths) > 1:
            raise bad(f"*/{m}", f"has feature widths {sorted(widths)} across the splits")


def load_features(config: FeaturesConfig) -> TensorDataset:
    """The dataset stored in ``config.path`` (or ``$DUS_FEATURES_PATH``)."""
    require_config("load_features", config, FeaturesConfig)
    raw = config.path or os.environ.get("DUS_FEATURES_PATH")
    if not raw:
        raise FileNotFoundError(
            "no features file: set data.path or DUS_FEATURES_PATH; create one with "
            "`dus-prepare features --preset NAME --out FILE.npz`"
        )
    path = Path(raw).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"features file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as stored:
            meta = json.loads(str(stored["meta"])) if "meta" in stored.files else None
            data = {k: stored[k] for k in stored.files if k != "meta"}
    except Exception as exc:  # noqa: BLE001
        # a damaged zip fails in a dozen ways (BadZipFile, zlib.error, LZMAError, struct.error,
        # NotImplementedError for an unknown method, RuntimeError for 'encrypted', ...); reading
        # it runs no code (allow_pickle=False), so each is just "not a features file"
        raise DatasetError(f"{path} is not a features file written by prepare: {exc}") from None
    meta = _check_meta(path, meta)
    missing = [m for m in config.modalities if m not in meta["modalities"]]
    if missing:
        raise DatasetError(
            f"{path} holds modalities {meta['modalities']}; data.modalities asks also for {missing}"
        )
    _check_arrays(path, data, config.modalities, len(meta["class_names"]))
    features: dict[str, dict[str, torch.Tensor]] = {s: {} for s in SPLITS}
    for m in config.modalities:
        tensors = [torch.from_numpy(data[f"{s}/{m}"].astype(np.float32)) for s in SPLITS]
        if config.standardize:
            tensors = list(standardize(*tensors))
        for s, t in zip(SPLITS, tensors):
            features[s][m] = t.contiguous()
    splits = {
        s: TensorSplit(features=features[s], labels=torch.from_numpy(data[f"{s}/labels"]))
        for s in SPLITS
    }
    return TensorDataset(
        name=f"features:{meta['dataset']}", modalities=tuple(config.modalities),
        n_classes=len(meta["class_names"]), splits=splits,
    )
