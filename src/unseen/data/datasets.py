"""Data set names, where their files live, and one call to load them by name."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from unseen.cache import cache_root
from unseen.data.benchmark import Benchmark
from unseen.data.xlsa17 import FEATURES_FILE, SIDE_INFORMATION, load_xlsa17, splits_file
from unseen.errors import UnseenInputError


@dataclass(frozen=True)
class DatasetSpec:
    """A known xlsa17 data set and its Proposed Split sizes (Xian et al., TPAMI'18)."""

    name: str
    folder: str  # the folder under the data root
    side_information: str  # which splits file: "att" or "sent"
    classes: int
    unseen_classes: int
    images: int
    trainval: int
    test_seen: int
    test_unseen: int
    note: str = ""


KNOWN_DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in (
    DatasetSpec("AWA1", "AWA1", "att", 50, 10, 30475, 19832, 4958, 5685),
    DatasetSpec("AWA2", "AWA2", "att", 50, 10, 37322, 23527, 5882, 7913),
    DatasetSpec("CUB", "CUB", "att", 200, 50, 11788, 7057, 1764, 2967),
    DatasetSpec("CUB-sent", "CUB", "sent", 200, 50, 11788, 7057, 1764, 2967,
                "1024-d sentence embeddings from sent_splits.mat"),
    DatasetSpec("SUN", "SUN", "att", 717, 72, 14340, 10320, 2580, 1440),
    DatasetSpec("APY", "APY", "att", 32, 12, 15339, 5932, 1483, 7924),
    DatasetSpec("FLO", "FLO", "att", 102, 20, 8189, 5631, 1403, 1155,
                "not in xlsa17 (f-CLSWGAN release); its 'att' holds 1024-d sentence embeddings"),
)}

# Loaders for data sets shipped inside the package, keyed by lower-case name. Filled by
# `unseen.data.embedded`; `load_benchmark` consults it before looking for files.
EMBEDDED_LOADERS: dict[str, Callable[..., Benchmark]] = {}

DATA_ROOT_ENV = "UNSEEN_DATA_ROOT"


def known_dataset(name: str) -> DatasetSpec | None:
    """The spec of a known data set, matched case-insensitively; None when unknown."""
    lowered = name.lower()
    return next((spec for key, spec in KNOWN_DATASETS.items() if key.lower() == lowered), None)


def default_data_root() -> Path:
    """`$UNSEEN_DATA_ROOT`, else where `unseen data download` extracts xlsa17
    (`$UNSEEN_CACHE/xlsa17/data`, the cache defaulting to `~/.cache/unseen`)."""
    if os.environ.get(DATA_ROOT_ENV):
        return Path(os.environ[DATA_ROOT_ENV]).expanduser()
    return cache_root() / "xlsa17" / "data"


def _holds_dataset(directory: Path) -> bool:
    return (directory / FEATURES_FILE).is_file() or any(
        (directory / splits_file(side)).is_file() for side in SIDE_INFORMATION)


def _child(parent: Path, folder: str) -> Path | None:
    """`parent/folder`, matched case-insensitively."""
    if not parent.is_dir():
        return None
    exact = parent / folder
    if exact.is_dir():
        return exact
    lowered = folder.lower()
    return next((child for child in sorted(parent.iterdir())
                 if child.is_dir() and child.name.lower() == lowered), None)


def resolve_dataset_dir(name: str, data_root: str | os.PathLike | None = None) -> Path:
    """The directory holding `name`'s `res101.mat` and splits file.

    `data_root` may be that directory itself, its parent (holding `NAME/`, any case), or the
    extracted archive root (holding `data/NAME/`). `name` may also be a directory path.
    """
    spec = known_dataset(name)
    as_path = Path(name).expanduser()
    if spec is None and as_path.is_dir():
        return as_path
    root = Path(data_root).expanduser() if data_root is not None else default_data_root()
    if spec is None and data_root is not None:
        # Any data set in the xlsa17 layout: DATA_ROOT itself, or DATA_ROOT/NAME (any case).
        if _holds_dataset(root) and root.name.lower() == as_path.name.lower():
            return root
        found = _child(root, name)
        if found is not None and _holds_dataset(found):
            return found
    if spec is None:
        known = ", ".join(KNOWN_DATASETS)
        raise UnseenInputError(f"data set {name!r}: expected one of {known} (or a directory "
                               f"holding {FEATURES_FILE} and att_splits.mat), found neither a "
                               "known name nor a directory")
    if _holds_dataset(root):
        return root
    for parent in (root, root / "data", root / "xlsa17" / "data"):
        found = _child(parent, spec.folder)
        if found is not None:
            return found
    if as_path.is_dir():
        return as_path  # e.g. a relative folder named like the data set
    raise UnseenInputError(
        f"data set {spec.name}: expected a folder {spec.folder}/ holding {FEATURES_FILE} and "
        f"{splits_file(spec.side_information)} under the data root {root}, found none. "
        "Run `unseen data download` or pass --data-root DIR (the folder holding "
        f"{spec.folder}/, or {spec.folder}/ itself)")


def load_benchmark(name: str, data_root: str | os.PathLike | None = None,
                   side_information: str | None = None, **kwargs) -> Benchmark:
    """Load a data set by name (embedded loaders first), or from a directory path.

    `CUB-sent` is CUB with `sent_splits.mat`. Extra keyword arguments (e.g. `partition=`)
    go to the embedded loader and are refused for file-based data sets.
    """
    loader = EMBEDDED_LOADERS.get(name.lower())
    if loader is not None:
        if side_information is not None:
            kwargs["side_information"] = side_information
        return loader(**kwargs)
    if kwargs:
        raise UnseenInputError(f"data set {name!r}: options {sorted(kwargs)} apply only to "
                               "embedded data sets, found them for a file-based one")
    spec = known_dataset(name)
    side = spec.side_information if spec is not None else "att"
    if side_information is not None:
        if spec is not None and spec.side_information == "sent" and side_information != "sent":
            raise UnseenInputError(f"data set {spec.name}: expected side_information 'sent' "
                                   f"(the name selects sentences), found {side_information!r}")
        side = side_information
    directory = resolve_dataset_dir(name, data_root)
    display = spec.folder if spec is not None else directory.name
    benchmark = load_xlsa17(directory, name=display, side_information=side)
    if spec is not None and spec.note:
        benchmark.source["note_dataset"] = spec.note
    return benchmark
