"""Fingerprints of a run's resolved configuration, so that a run directory never mixes runs.

A fingerprint is the sha256 of a canonical JSON document: method, data set identity (a content
hash of its files), protocol, preset, every hyperparameter and run option, and the code version.
Seeds and partitions are not part of it: they are recorded per seed in state.json, so adding
seeds to a finished run with the same settings reuses the finished ones.

File hashes are cached under `cache_root()/file-hashes.json` by (path, size, mtime), so a 1 GB
`res101.mat` is hashed once, not on every run.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from unseen.cache import cache_root
from unseen.io import atomic_write_json

FINGERPRINT_FORMAT = 1
_HASH_CACHE_FILE = "file-hashes.json"
_CHUNK = 1 << 22  # 4 MiB reads: bounded memory for any file size


def canonical_json(document: Any) -> str:
    """One byte-stable rendering: sorted keys, no whitespace, tuples as lists."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)


def fingerprint_of(document: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(document).encode()).hexdigest()


def file_sha256(path: str | os.PathLike, cache_dir: Path | None = None) -> str:
    """sha256 of a file's bytes (streamed), cached by (resolved path, size, mtime_ns)."""
    path = Path(path).resolve()
    stat = path.stat()
    key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    cache_path = (cache_dir or cache_root()) / _HASH_CACHE_FILE
    cache = _read_cache(cache_path)
    if key in cache:
        return cache[key]
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    # Re-read (another process may have written), dropping entries of this file's older
    # versions and of files that are gone (temporary data sets), so the cache stays small.
    cache = {k: v for k, v in _read_cache(cache_path).items()
             if not k.startswith(f"{path}|") and Path(k.rsplit("|", 2)[0]).is_file()}
    cache[key] = digest.hexdigest()
    try:
        atomic_write_json(cache_path, cache)
    except OSError:
        pass  # an unwritable cache only costs a rehash next time
    return cache[key]


def _read_cache(path: Path) -> dict[str, str]:
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return cache if isinstance(cache, dict) else {}


def dataset_identity(dataset: str, data_root: str | os.PathLike | None = None) -> dict[str, Any]:
    """What the data set is, by content: its name and files' sha256 (a directory data set),
    or its name and build key / format version (an embedded one: its cache verifies its own
    manifest of sha256 on every load), or its source file and scale (semi-real)."""
    from unseen.data.loading import SEMI_REAL_PREFIX, is_embedded

    if dataset.startswith(SEMI_REAL_PREFIX):
        from unseen.data.semi_real import parse_semi_real_name

        path, scale = parse_semi_real_name(dataset[len(SEMI_REAL_PREFIX):])
        return {"kind": "semi-real", "name": dataset, "scale": scale,
                "files": {Path(path).name: file_sha256(path)}}
    if is_embedded(dataset):
        return {"kind": "embedded", "name": dataset.lower(), **_embedded_version(dataset.lower())}
    from unseen.data.datasets import resolve_dataset_dir
    from unseen.data.xlsa17 import FEATURES_FILE, SIDE_INFORMATION, splits_file

    directory = resolve_dataset_dir(dataset, data_root)
    names = [FEATURES_FILE, *(splits_file(side) for side in SIDE_INFORMATION)]
    return {"kind": "directory", "name": Path(dataset).name,
            "files": {name: file_sha256(directory / name) for name in names
                      if (directory / name).is_file()}}


def _embedded_version(name: str) -> dict[str, Any]:
    if name == "shapes":
        from unseen.data.rendered import FORMAT_VERSION

        return {"format_version": FORMAT_VERSION}
    from unseen.data.embedded import _resolve_params

    # The build key says everything the cache's content depends on (format version, backbone
    # resolution, images per class, the kind of class descriptions, AwA2's file hash).
    return {"build": _resolve_params(name, None, {}).key}


def differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """`key.sub: old -> new` for every leaf that differs between two JSON documents."""
    if isinstance(old, dict) and isinstance(new, dict):
        lines = []
        for key in sorted(set(old) | set(new), key=str):
            where = f"{prefix}.{key}" if prefix else str(key)
            if key not in old:
                lines.append(f"{where}: (absent) -> {_short(new[key])}")
            elif key not in new:
                lines.append(f"{where}: {_short(old[key])} -> (absent)")
            else:
                lines.extend(differences(old[key], new[key], where))
        return lines
    if canonical_json(old) == canonical_json(new):
        return []
    return [f"{prefix or 'document'}: {_short(old)} -> {_short(new)}"]


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else canonical_json(value)
    return text[:12] + "..." if isinstance(value, str) and len(text) == 64 else text
