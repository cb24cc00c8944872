"""The raw images of a data set to build: an ImageFolder tree or a `path,class` CSV list.

`list_images` returns every image path (relative to the image root, POSIX separators, in a fixed
order: classes sorted by name, then paths sorted) and its class; it checks the layout, not the
pixels (unreadable files are found, and skipped, while the features are extracted).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unseen.errors import input_error

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


@dataclass(frozen=True)
class ImageList:
    """Images under `root`: `files[i]` (relative, POSIX) shows class `class_names[labels[i]]`."""

    root: Path
    files: list[str]
    labels: np.ndarray  # int64 [N], indices into class_names
    class_names: list[str]  # sorted
    source: str  # the folder or CSV the list came from

    def paths(self) -> list[Path]:
        return [self.root / name for name in self.files]

    def counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=len(self.class_names))


def list_images(source: str | Path) -> ImageList:
    """An `ImageList` from a folder `DIR/<class>/**/*.jpg|...` or a CSV of `path,class` rows."""
    source = Path(source).expanduser()
    if source.is_dir():
        return _from_folder(source)
    if source.is_file() and source.suffix.lower() in (".csv", ".tsv"):
        return _from_csv(source)
    raise input_error(f"option '--images' ({source})", None,
                      "a folder with one sub-folder of images per class, or a .csv file of "
                      "'path,class' rows", "neither" if not source.exists() else "another file")


def _is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def _from_folder(root: Path) -> ImageList:
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise input_error(str(root), None, "one sub-folder of images per class (ImageFolder: "
                          "DIR/<class>/*.jpg)", "no sub-folder")
    files: list[str] = []
    counts: list[int] = []
    for class_dir in class_dirs:
        found = sorted(p.relative_to(root).as_posix() for p in class_dir.rglob("*")
                       if p.is_file() and _is_image_name(p))
        if not found:
            raise input_error(str(class_dir), None, f"images ({', '.join(IMAGE_EXTENSIONS)}) of "
                              f"class '{class_dir.name}'", "an empty class folder")
        files += found
        counts.append(len(found))
    labels = np.repeat(np.arange(len(class_dirs)), counts).astype(np.int64)
    return ImageList(root.resolve(), files, labels, [p.name for p in class_dirs], str(root))


def _from_csv(path: Path) -> ImageList:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = [row for row in csv.reader(handle, delimiter=delimiter)
                if any(cell.strip() for cell in row)]
    if rows and [cell.strip().lower() for cell in rows[0]] == ["path", "class"]:
        rows = rows[1:]
    if not rows:
        raise input_error(str(path), None, "'path,class' rows (one per image)", "none")
    root = path.parent.resolve()
    pairs: dict[str, str] = {}
    for number, row in enumerate(rows, start=1):
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            raise input_error(str(path), f"row {number}", "two non-empty columns 'path,class'",
                              repr(delimiter.join(row)))
        relative, class_name = row[0].strip(), row[1].strip()
        image = root / relative
        if not image.is_file():
            raise input_error(str(path), f"row {number}, column 'path'",
                              f"an image file (paths are relative to {root})",
                              f"no such file {relative!r}")
        key = image.resolve().relative_to(root).as_posix() if image.resolve().is_relative_to(
            root) else relative
        if key in pairs and pairs[key] != class_name:
            raise input_error(str(path), f"row {number}", "one class per image",
                              f"{relative!r} listed as {pairs[key]!r} and {class_name!r}")
        pairs[key] = class_name
    class_names = sorted(set(pairs.values()))
    index = {name: i for i, name in enumerate(class_names)}
    ordered = sorted(pairs, key=lambda name: (index[pairs[name]], name))
    labels = np.array([index[pairs[name]] for name in ordered], np.int64)
    return ImageList(root, ordered, labels, class_names, str(path))
