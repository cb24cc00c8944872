"""DUET's path options (`image_root`, `attributes_txt`, `attribute_groups`,
`attribute_mapping`, `pixel_cache_dir`, `vision_model`, `text_model`): `~` expanded in every
one, checked once before anything is loaded, each problem one exit-2 line naming the option.

A model option is a local directory when it exists on disk or is written like a path
(absolute, `~`, `./`, `../`, a backslash, or more than one `/`); otherwise it is a Hugging
Face hub id (`org/name` or `name`), looked up in the local cache and downloaded only when
`HF_HUB_OFFLINE` is not set. A missing local directory is reported as such, never as a hub id
to download.
"""

from __future__ import annotations

import os
from pathlib import Path

from unseen.errors import UnseenInputError

FILE_OPTIONS = {
    "attributes_txt": "an attribute-names file (CUB attributes.txt, AWA2 predicates.txt, or one "
                      "name per line)",
    "attribute_groups": "an attributeindex2prompt.json (attribute index -> group)",
    "attribute_mapping": "a mapping.json (attribute index -> surface word)",
}
SPECIAL_MODELS = ("efficientnet-lite0", "minilm")


def expand(value: str | os.PathLike) -> str:
    """`~` and `~user` expanded; everything else unchanged."""
    return os.path.expanduser(str(value)) if value else ""


def looks_like_path(value: str) -> bool:
    return (value.startswith(("/", "~", "./", "../")) or value in (".", "..") or "\\" in value
            or value.count("/") > 1 or Path(expand(value)).exists())


def existing_file(value: str, option: str) -> Path | None:
    """The expanded file of a file option, or None when the option is empty."""
    if not value:
        return None
    path = Path(expand(value))
    if not path.is_file():
        found = "a directory" if path.is_dir() else "no such file"
        raise UnseenInputError(f"option '{option}': expected {FILE_OPTIONS[option]}, found "
                               f"{found} at '{path}'")
    return path


def existing_directory(value: str, option: str, expected: str) -> Path:
    path = Path(expand(value))
    if not path.is_dir():
        found = "a file" if path.is_file() else "no such directory"
        raise UnseenInputError(f"option '{option}': expected {expected}, found {found} at "
                               f"'{path}'")
    return path


def model_source(value: str, option: str) -> str:
    """A local model directory (expanded, checked: config.json inside) or a hub id."""
    if value.lower() in SPECIAL_MODELS or not looks_like_path(value):
        return value
    path = existing_directory(value, option, "a local model directory (config.json + weights) "
                                              "or a hub id like org/name")
    if not (path / "config.json").is_file():
        raise UnseenInputError(f"option '{option}': expected a model directory with a "
                               f"config.json (saved with save_pretrained), found none in "
                               f"'{path}'")
    return str(path)
