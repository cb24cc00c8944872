"""DUET (Chen et al., AAAI 2023): cross-modal semantic grounding with a vision transformer and a
BERT-family language model. `DUET` is the `GZSLMethod`, `DUETConfig` its config and presets.

Exports are resolved lazily so that importing a submodule (`unseen.methods.duet.text`) does not
pull in transformers or the method itself.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from unseen.methods.duet.config import DUETConfig
    from unseen.methods.duet.method import DUET

__all__ = ["DUET", "DUETConfig"]

_EXPORTS = {"DUET": "unseen.methods.duet.method", "DUETConfig": "unseen.methods.duet.config"}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'unseen.methods.duet' has no attribute '{name}'")
