"""An on-disk cache of image features keyed by the sha256 of each image file's bytes.

One directory per backbone identity (`Backbone.cache_key`); inside, `chunk-*.npz` files, each
written atomically and holding `keys` (32-byte digests as uint8 rows [n, 32]: numpy's bytes
dtype would drop a digest's trailing zero bytes) and `features` float32 [n, D]. A killed build
leaves only complete chunks, so the next one skips every image already in one; processes of a
`torchrun` build write their own chunks side by side.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np

from unseen.io import atomic_write

KEY_BYTES = 32


class FeatureCache:
    """Content-keyed feature chunks under `directory` (created on first write)."""

    def __init__(self, directory: str | os.PathLike, feature_dim: int) -> None:
        self.directory = Path(directory)
        self.feature_dim = feature_dim
        self._pending_keys: list[bytes] = []
        self._pending: list[np.ndarray] = []

    def chunks(self) -> list[Path]:
        return sorted(self.directory.glob("chunk-*.npz")) if self.directory.is_dir() else []

    def keys(self) -> set[bytes]:
        """Every cached key (reads only the small `keys` arrays)."""
        found: set[bytes] = set()
        for chunk in self.chunks():
            with np.load(chunk) as data:
                found.update(_as_keys(data["keys"]))
        return found

    def add(self, keys: list[bytes], features: np.ndarray, flush_every: int) -> None:
        """Queue features of new images; write a chunk once `flush_every` are queued."""
        self._pending_keys += keys
        self._pending.append(np.asarray(features, np.float32))
        if len(self._pending_keys) >= flush_every:
            self.flush()

    def flush(self) -> None:
        if not self._pending_keys:
            return
        keys = np.frombuffer(b"".join(self._pending_keys), np.uint8).reshape(-1, KEY_BYTES)
        features = np.concatenate(self._pending)
        name = f"chunk-{uuid.uuid4().hex}.npz"
        atomic_write(self.directory / name,
                     lambda handle: np.savez(handle, keys=keys, features=features))
        self._pending_keys, self._pending = [], []

    def lookup(self, keys: list[bytes]) -> np.ndarray:
        """float32 [len(keys), D], row i the cached features of keys[i]; reads one chunk at a
        time. Raises KeyError naming how many keys are missing."""
        wanted: dict[bytes, list[int]] = {}
        for row, key in enumerate(keys):
            wanted.setdefault(key, []).append(row)
        out = np.empty((len(keys), self.feature_dim), np.float32)
        found = np.zeros(len(keys), bool)
        for chunk in self.chunks():
            with np.load(chunk) as data:
                chunk_keys = _as_keys(data["keys"])
                hits = [i for i, key in enumerate(chunk_keys) if key in wanted]
                if not hits:
                    continue
                features = data["features"]
            for i in hits:
                rows = wanted[chunk_keys[i]]
                out[rows] = features[i]
                found[rows] = True
        if not found.all():
            raise KeyError(f"{int((~found).sum())} of {len(keys)} images have no cached "
                           f"features in {self.directory}")
        return out


def _as_keys(array: np.ndarray) -> list[bytes]:
    return [row.tobytes() for row in np.asarray(array, np.uint8).reshape(-1, KEY_BYTES)]
