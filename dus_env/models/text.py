"""Text encoders over int64 token ids ``(B, L)`` padded with 0.

* ``text_bag``: embeddings of the built-in hashing tokenizer's ids, mean-pooled over the
  non-padding tokens, then ``Linear -> ReLU`` to ``feature_dim``. Small, needs nothing beyond
  torch: the CI and CPU default.
* ``bert``: a Hugging Face BERT loaded from a local folder named in ``model.weights``
  (``(("bert", "/models/bert-base-uncased"),)``), ``local_files_only=True``: nothing is
  downloaded. Needs the ``text`` extra (``pip install 'dus-env[text]'``) and token ids from the
  same folder's tokenizer (``data.tokenizer``). The [CLS] state is projected to ``feature_dim``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from dus_env.data.media import HASH_OFFSET, HASH_VOCAB_SIZE, PAD_ID

if TYPE_CHECKING:
    from dus_env.config import ModelConfig

EMBED_DIM = 128


class TextBagEncoder(nn.Module):
    """Mean of token embeddings over non-padding tokens, then ``Linear -> ReLU``."""

    def __init__(self, feature_dim: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(HASH_VOCAB_SIZE + 1, EMBED_DIM, padding_idx=PAD_ID)
        self.proj = nn.Sequential(nn.Linear(EMBED_DIM, feature_dim), nn.ReLU())

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ids = ids.long()
        real = ids != PAD_ID
        if bool(((ids < HASH_OFFSET) & real).any() or (ids >= HASH_OFFSET + HASH_VOCAB_SIZE).any()):
            raise ValueError(
                "the 'text_bag' encoder needs ids of the built-in hashing tokenizer "
                "(data.tokenizer=None); these come from another tokenizer"
            )
        local = torch.where(real, ids - HASH_OFFSET + 1, torch.zeros_like(ids))
        mask = real.unsqueeze(-1).float()
        summed = (self.embedding(local) * mask).sum(dim=1)
        return self.proj(summed / mask.sum(dim=1).clamp_min(1.0))


class BertEncoder(nn.Module):
    """A local BERT's [CLS] hidden state, projected to ``feature_dim``."""

    def __init__(self, path: str, feature_dim: int) -> None:
        super().__init__()
        try:
            from transformers import AutoModel
        except ImportError:
            raise ImportError(
                "the 'bert' encoder needs the 'transformers' package: "
                "pip install 'dus-env[text]'"
            ) from None
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(f"model.weights for 'bert': {folder} is not a folder")
        if not any(folder.glob("*.safetensors")):
            raise FileNotFoundError(
                f"model.weights for 'bert': {folder} has no *.safetensors weights; only "
                "safetensors are loaded (a pytorch_model.bin is a pickle, which could run code)"
            )
        self.bert = AutoModel.from_pretrained(str(folder), local_files_only=True,
                                              use_safetensors=True, trust_remote_code=False)
        self.proj = nn.Linear(self.bert.config.hidden_size, feature_dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ids = ids.long()
        if int(ids.max()) >= self.bert.config.vocab_size:
            raise ValueError(
                f"token id {int(ids.max())} exceeds BERT's vocabulary "
                f"({self.bert.config.vocab_size}): tokenise with the BERT folder's tokenizer "
                "(data.tokenizer), not the built-in hashing tokenizer"
            )
        out = self.bert(input_ids=ids, attention_mask=(ids != PAD_ID).long())
        return self.proj(out.last_hidden_state[:, 0])


def _check_ids(kind: str, input_shape: tuple[int, ...]) -> None:
    if len(input_shape) != 1:
        raise ValueError(f"encoder {kind!r} needs token ids shaped (L,), got {input_shape}")


def build_text_bag(input_shape: tuple[int, ...], config: ModelConfig) -> nn.Module:
    """The hashing-tokenizer bag-of-embeddings encoder."""
    _check_ids("text_bag", input_shape)
    return TextBagEncoder(config.feature_dim)


def build_bert(input_shape: tuple[int, ...], config: ModelConfig) -> nn.Module:
    """BERT from the local folder ``model.weights['bert']``."""
    _check_ids("bert", input_shape)
    path = config.weights_for("bert")
    if path is None:
        raise ValueError(
            "the 'bert' encoder loads weights from a local folder only: set "
            "model.weights=(('bert', '/path/to/bert-base-uncased'),) and data.tokenizer to the "
            "same folder; or use the 'text_bag' encoder"
        )
    return BertEncoder(path, config.feature_dim)
