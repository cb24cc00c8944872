"""`unseen.json`, the manifest of a data set built by `unseen data build` (format
"unseen-dataset/1"; its fields are listed in docs/own-data.md).

It names the features file (named for the backbone that made it, never `res101.mat` unless it
is ResNet-101) and records everything needed to reproduce or extend the data set: backbone,
preprocessing, class semantics and their text encoder, image paths, split and command line.
"""

from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath

from unseen.errors import input_error

MANIFEST_FILE = "unseen.json"
MANIFEST_FORMAT = "unseen-dataset/1"


def read_manifest(directory: str | os.PathLike) -> dict | None:
    """The validated manifest of `directory`, or None when it has no `unseen.json`."""
    path = Path(directory) / MANIFEST_FILE
    if not path.is_file():
        return None
    source = str(path)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise input_error(source, None, "a JSON manifest", f"{type(error).__name__}: {error}"
                          ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise input_error(source, "format", repr(MANIFEST_FORMAT), repr(found))
    features_file = manifest.get("features_file")
    if (not isinstance(features_file, str) or not features_file.endswith(".mat")
            or PurePosixPath(features_file).name != features_file):
        raise input_error(source, "features_file", "a .mat file name inside the data set folder",
                          repr(features_file))
    return manifest


def features_file_name(directory: str | os.PathLike, default: str) -> str:
    """The features file of `directory`: the manifest's `features_file`, else `default`."""
    manifest = read_manifest(directory)
    return manifest["features_file"] if manifest is not None else default
