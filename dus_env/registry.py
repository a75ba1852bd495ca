"""Named components, registered by ``"module:attribute"`` strings.

Each kind of component the config names (host methods, encoders, rewards) has one
:class:`Registry`: the only source of its valid names (dataset kinds are their config classes,
:data:`dus_env.config.DATA_CONFIGS`). Entries are import paths, so checking a
name imports nothing (``import dus_env.config`` stays free of torch); :meth:`Registry.load`
imports an entry on first use. Users add their own with :meth:`Registry.register`, as an
import path or as the object itself.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Any

from dus_env.errors import check_choice


class Registry(Mapping[str, Any]):
    """Name -> ``"module:attribute"`` (or the registered object itself).

    Args:
        kind: what the entries are (used in messages), e.g. ``"host"``.
        field: the config field that names an entry, e.g. ``"trainer.host"``.
        entries: the built-in entries.
    """

    def __init__(self, kind: str, field: str, entries: Mapping[str, Any]) -> None:
        self.kind, self.field = kind, field
        self._entries: dict[str, Any] = dict(entries)

    def __getitem__(self, name: str) -> Any:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {list(self._entries)})"

    def check(self, value: object, field: str | None = None) -> None:
        """Raise ``ValueError`` (with the valid names and a "did you mean") unless ``value`` is a
        registered name."""
        check_choice(field or self.field, value, self._entries)

    def load(self, name: str) -> Any:
        """The object registered as ``name`` (imported on first use)."""
        self.check(name)
        target = self._entries[name]
        if isinstance(target, str):
            module, _, attribute = target.partition(":")
            target = getattr(importlib.import_module(module), attribute)
        return target

    def register(self, name: str, target: Any, *, overwrite: bool = False) -> None:
        """Add ``name`` -> ``target`` (an import path ``"module:attribute"`` or the object)."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.kind} name={name!r} must be a non-empty string")
        if name in self._entries and not overwrite:
            raise ValueError(
                f"{self.kind} {name!r} is already registered; pass overwrite=True to replace it"
            )
        if isinstance(target, str) and ":" not in target:
            raise ValueError(f"{self.kind} target={target!r} must be 'module:attribute'")
        self._entries[name] = target


class LazyValues(Mapping[str, Any]):
    """Name -> value built on first access by a registered builder, then kept (presets and
    suites: frozen values, so one build serves every reader), with a one-line description.

    Args:
        kind: what the values are (used in messages), e.g. ``"preset"``.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._builders: dict[str, Any] = {}
        self._descriptions: dict[str, str] = {}
        self._built: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._built:
            self._built[name] = self._builders[name]()
        return self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._builders)

    def __len__(self) -> int:
        return len(self._builders)

    def __contains__(self, name: object) -> bool:
        return name in self._builders

    def describe(self, name: str) -> str:
        """The one-line description registered with ``name``."""
        return self._descriptions[name]

    def add(self, name: str, builder: Any, description: str = "",
            overwrite: bool = False) -> None:
        """Register ``builder()`` as ``name`` (an existing name only with ``overwrite``)."""
        if name in self._builders and not overwrite:
            raise ValueError(f"{self.kind} {name!r} is already registered; pass overwrite=True")
        self._builders[name] = builder
        self._descriptions[name] = " ".join(description.split())
        self._built.pop(name, None)


HOSTS = Registry("host", "trainer.host", {
    "joint": "dus_env.hosts:JointHost",
    "mla": "dus_env.hosts:MLAHost",
    "ogm_ge": "dus_env.hosts:OGMGEHost",
    "unimodal": "dus_env.hosts:UnimodalHost",
})
"""Host MML methods: name -> :class:`dus_env.hosts.Host` subclass."""

ENCODERS = Registry("encoder", "model.encoder", {
    "mlp": "dus_env.models.encoders:build_mlp",
    "small_cnn": "dus_env.models.conv:build_small_cnn",
    "resnet18": "dus_env.models.vision:build_resnet18",
    "resnet50": "dus_env.models.vision:build_resnet50",
    "r3d18": "dus_env.models.vision:build_r3d18",
    "text_bag": "dus_env.models.text:build_text_bag",
    "bert": "dus_env.models.text:build_bert",
})
"""Encoder kinds: name -> builder ``(input_shape, model_config) -> nn.Module`` with output width
``model_config.feature_dim``. ``small_cnn`` takes small ``(C, H, W)`` images (e.g. 28 x 28
Fashion-MNIST; conv widths from ``model.hidden_dims``, see :mod:`dus_env.models.conv`),
``resnet18`` / ``resnet50`` ``(C, H, W)`` images or ``(T, C, H, W)`` frame stacks, ``r3d18``
video clips, ``text_bag`` / ``bert`` token ids."""

REWARDS = Registry("reward", "reward.name", {
    "val_delta": "dus_env.rewards:val_delta",
    "discrepancy": "dus_env.rewards:discrepancy",
    "terminal": "dus_env.rewards:terminal",
    "hybrid": "dus_env.rewards:hybrid",
    "paired": "dus_env.rewards:paired",
    "paired_best": "dus_env.rewards:paired_best",
})
"""Rewards: name -> :class:`dus_env.rewards.Reward`."""
