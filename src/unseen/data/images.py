"""Image files behind a benchmark: xlsa17 path rewriting and folder-of-class-folders data sets.

xlsa17's `res101.mat` stores absolute paths from its authors' machines. `resolve_image_paths`
rewrites them under a user's image root with the rules of the DUET reference
(`visual_utils.default_flist_reader`), and checks that the files exist.

`load_image_folder` turns any `root/<class>/*.jpg|png` folder plus a class-attribute CSV into a
`Benchmark`. Its features are `image_descriptor`s: a small, fixed, real description of each image
(colour histogram, coarse grey layout, gradient orientations), so that feature-based methods and
validation run on it; image methods (DUET) read the pixels through `image_files`.
"""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image
from tqdm import tqdm

from unseen.data.benchmark import Benchmark
from unseen.errors import UnseenInputError, input_error

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
PATH_RULES = ("auto", "cub", "awa2", "sun", "relative")
# Marker after which the stored path is kept, and the folder it is re-rooted under.
_RULE_MARKERS = {"cub": ("MSc/", ""), "awa2": ("JPEGImages", "AwA2/JPEGImages"),
                 "sun": ("data/", "")}
# AWA2 folders accepted under image_root, in order: the reference's layout, the official
# archive (AwA2-data.zip) as it unpacks, and image_root = that unpacked folder itself.
_AWA2_FOLDERS = ("AwA2/JPEGImages", "Animals_with_Attributes2/JPEGImages", "JPEGImages")
_RULE_HELP = {
    "cub": "image_root + the part after 'MSc/' (e.g. CUB_200_2011/images/...)",
    "awa2": "image_root/{" + ",".join(_AWA2_FOLDERS) + "} + the part after 'JPEGImages'",
    "sun": "image_root + the part after 'data/' (e.g. SUN/images/...)",
    "relative": "image_root + the stored relative path",
}

THUMBNAIL_SIZE = 32
COLOUR_BINS = 4  # per channel: 4**3 = 64 joint RGB bins
GREY_GRID = 8
ORIENTATION_BINS = 8
ORIENTATION_CELLS = 2  # 2 x 2 spatial cells
DESCRIPTOR_DIM = COLOUR_BINS**3 + GREY_GRID**2 + ORIENTATION_BINS * ORIENTATION_CELLS**2


# ----------------------------------------------------------------------------- path rewriting

def detect_path_rule(stored_paths: list[str]) -> str:
    """Guess the rewriting rule from the shape of the stored paths (checked on all of them)."""
    if not stored_paths:
        raise UnseenInputError("image_files: expected at least one stored image path, found none")
    first = stored_paths[0].strip()
    if "JPEGImages" in first:
        rule = "awa2"
    elif "data/SUN/" in first or "/SUN/images/" in first:
        rule = "sun"  # before CUB: SUN paths also contain 'MSc/'
    elif "MSc/" in first:
        rule = "cub"
    elif not first.startswith("/") and not PurePosixPath(first).is_absolute():
        rule = "relative"
    else:
        raise input_error("image_files", None,
                          f"stored paths that one of the rules {list(_RULE_HELP)} recognises "
                          "(pass rule= explicitly)", repr(first))
    return rule


def rewrite_image_path(stored: str, image_root: Path, rule: str,
                       prefix: str | None = None) -> Path:
    """One stored xlsa17 path under `image_root` with an explicit rule (not "auto");
    `prefix` overrides the rule's folder under the root."""
    stored = stored.strip()
    if rule == "relative":
        return Path(os.path.join(image_root, stored))
    marker, default_prefix = _RULE_MARKERS[rule]
    prefix = default_prefix if prefix is None else prefix
    head, found, tail = stored.partition(marker)
    if not found:
        raise input_error("image_files", None, f"a path containing '{marker}' (rule '{rule}')",
                          repr(stored))
    return Path(os.path.join(image_root, prefix, tail.lstrip("/")))


def resolve_image_paths(benchmark: Benchmark, image_root: Path | str, rule: str = "auto",
                        check_exists: bool = True) -> list[Path]:
    """The benchmark's images as local paths under `image_root` (one per row of `features`).

    Rules (DUET reference): "cub", "awa2", "sun" (see `_RULE_HELP`), "relative" (root + stored
    path) and "auto" (picked from the stored paths). Missing files raise `UnseenInputError`
    naming the first few, the rule and the root.
    """
    image_root = Path(image_root).expanduser()
    if rule not in PATH_RULES:
        raise input_error("option 'image_path_rule'", None, f"one of {list(PATH_RULES)}",
                          repr(rule))
    stored = benchmark.image_files
    if not stored:
        raise input_error(f"benchmark '{benchmark.name}'", "image_files",
                          "the stored image paths (res101.mat 'image_files')", "none")
    if rule == "auto":
        rule = detect_path_rule(stored)
    prefix = None
    if rule == "awa2":  # the first of the accepted AWA2 folders that exists
        prefix = next((f for f in _AWA2_FOLDERS if (image_root / f).is_dir()), None)
    paths = [rewrite_image_path(path, image_root, rule, prefix) for path in stored]
    if check_exists:
        missing = [path for path in paths if not path.is_file()]
        if missing:
            shown = ", ".join(str(path) for path in missing[:3])
            raise UnseenInputError(
                f"image root '{image_root}': expected the {len(paths)} image files of benchmark "
                f"'{benchmark.name}' there (rule '{rule}': {_RULE_HELP[rule]}), found "
                f"{len(missing)} missing, first: {shown}")
    return paths


# ----------------------------------------------------------------------------- descriptors

def thumbnail(image: Image.Image, size: int = THUMBNAIL_SIZE) -> np.ndarray:
    """The image as RGB uint8 [size, size, 3] (square resize, aspect ratio not kept)."""
    return np.asarray(image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR))


def load_thumbnail(path: Path, size: int = THUMBNAIL_SIZE) -> np.ndarray:
    try:
        with Image.open(path) as image:
            return thumbnail(image, size)
    except OSError as error:
        raise input_error(str(path), None, "a readable image file",
                          f"{type(error).__name__}: {error}") from error


def image_descriptor(images: np.ndarray) -> np.ndarray:
    """float32 [n, DESCRIPTOR_DIM] descriptors of uint8 thumbnails [n, S, S, 3] (S divisible by 8).

    Concatenates the square roots (Hellinger) of a 4x4x4 joint RGB histogram and of a
    2x2-cell, 8-bin gradient-orientation histogram (magnitude weighted), and the 8x8 block
    means of the grey image in [0, 1]: colour, shape and layout in 160 numbers.
    """
    images = np.asarray(images)
    n, size = images.shape[0], images.shape[1]
    if images.ndim != 4 or images.shape[2] != size or images.shape[3] != 3 or size % GREY_GRID:
        raise UnseenInputError(f"image_descriptor: expected uint8 [n, S, S, 3] with S a multiple "
                               f"of {GREY_GRID}, found {images.shape}")
    pixels = images.astype(np.int64)
    shift = 8 - int(np.log2(COLOUR_BINS))
    bins = ((pixels[..., 0] >> shift) * COLOUR_BINS + (pixels[..., 1] >> shift)) * COLOUR_BINS \
        + (pixels[..., 2] >> shift)
    offsets = (np.arange(n) * COLOUR_BINS**3)[:, None, None]
    colour = np.bincount((bins + offsets).ravel(), minlength=n * COLOUR_BINS**3)
    colour = colour.reshape(n, -1) / float(size * size)

    grey = images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32) / 255.0
    block = size // GREY_GRID
    layout = grey.reshape(n, GREY_GRID, block, GREY_GRID, block).mean(axis=(2, 4)).reshape(n, -1)

    gy, gx = np.gradient(grey, axis=(1, 2))
    magnitude = np.hypot(gx, gy)
    angle = np.mod(np.arctan2(gy, gx), np.pi)  # unsigned orientation in [0, pi)
    orientation = np.minimum((angle / np.pi * ORIENTATION_BINS).astype(np.int64),
                             ORIENTATION_BINS - 1)
    cell = size // ORIENTATION_CELLS
    rows = np.arange(size) // cell
    cell_index = (rows[:, None] * ORIENTATION_CELLS + rows[None, :])[None]
    flat = (np.arange(n)[:, None, None] * ORIENTATION_CELLS**2 + cell_index) * ORIENTATION_BINS \
        + orientation
    gradients = np.bincount(flat.ravel(), weights=magnitude.ravel().astype(np.float64),
                            minlength=n * ORIENTATION_CELLS**2 * ORIENTATION_BINS).reshape(n, -1)
    gradients /= gradients.sum(axis=1, keepdims=True) + 1e-12
    return np.concatenate([np.sqrt(colour), np.sqrt(gradients), layout],
                          axis=1).astype(np.float32)


# ----------------------------------------------------------------------------- image folders

def read_class_attributes_csv(path: Path, delimiter: str | None = None,
                              ) -> tuple[list[str], list[str], np.ndarray]:
    """(class names, attribute names, values float64 [C, A]) from `class,attr1,attr2,...`
    (tab-separated when `delimiter` is "\t" or, by default, when the file ends in .tsv)."""
    source = str(path)
    delimiter = delimiter or ("\t" if Path(path).suffix.lower() == ".tsv" else ",")
    if not path.is_file():
        raise input_error(source, None, "a class-attribute CSV file", "no such file")
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = [row for row in csv.reader(handle, delimiter=delimiter)
                if any(cell.strip() for cell in row)]
    if not rows:
        raise input_error(source, None, "a header 'class,attr1,attr2,...' and one row per class",
                          "an empty file")
    header = [cell.strip() for cell in rows[0]]
    if header[0].lower() != "class" or len(header) < 2:
        raise input_error(source, "header", "'class' then at least one attribute name",
                          repr(",".join(header)))
    attributes = header[1:]
    if any(not name for name in attributes) or len(set(attributes)) != len(attributes):
        raise input_error(source, "header", "distinct, non-empty attribute names",
                          repr(",".join(attributes)))
    names, values = [], np.zeros((len(rows) - 1, len(attributes)))
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise input_error(source, f"row {number}", f"{len(header)} columns like the header",
                              f"{len(row)}")
        name = row[0].strip()
        if not name or name in names:
            raise input_error(source, f"row {number}, column 'class'",
                              "a non-empty class name not used by an earlier row", repr(name))
        names.append(name)
        for column, cell in enumerate(row[1:]):
            try:
                values[number - 2, column] = float(cell)
            except ValueError:
                raise input_error(source, f"row {number}, column '{attributes[column]}'",
                                  "a number", repr(cell)) from None
            if not np.isfinite(values[number - 2, column]):
                raise input_error(source, f"row {number}, column '{attributes[column]}'",
                                  "a finite number", repr(cell))
    if not names:
        raise input_error(source, None, "one row per class after the header", "only the header")
    zero = np.flatnonzero(~np.any(values != 0, axis=1))
    if zero.size:
        raise input_error(source, f"row {zero[0] + 2}", "at least one non-zero attribute (rows "
                          "are L2-normalised into class semantics)", "all zeros")
    return names, attributes, values


def _class_images(root: Path, class_name: str) -> list[Path]:
    folder = root / class_name
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def seen_holdout_split(labels: np.ndarray, seen: np.ndarray, fraction: float,
                       seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(trainval, test_seen) rows: per seen class, floor(fraction * n) random images held out."""
    rng = np.random.default_rng(seed)
    rows = np.flatnonzero(np.isin(labels, seen))
    order = rows[np.lexsort((rng.random(rows.size), labels[rows]))]
    sorted_labels = labels[order]
    starts = np.searchsorted(sorted_labels, sorted_labels, side="left")
    counts = np.bincount(sorted_labels, minlength=labels.max() + 1)[sorted_labels]
    rank = np.arange(order.size) - starts
    held = rank < np.floor(fraction * counts)
    return np.sort(order[~held]), np.sort(order[held])


def load_image_folder(root: Path | str, attributes_csv: Path | str, unseen: list[str],
                      name: str = "image-folder", test_seen_fraction: float = 0.2,
                      seed: int = 0, progress: bool = True) -> Benchmark:
    """A `Benchmark` from `root/<class>/*.jpg|png` and a class-attribute CSV.

    Class ids follow the CSV's row order; `unseen` names the held-out classes (all their
    images are test_unseen); each seen class keeps ~80% of its images for trainval and
    `test_seen_fraction` for test_seen (fixed seed). Features are `image_descriptor`s.
    """
    root, attributes_csv = Path(root).expanduser(), Path(attributes_csv).expanduser()
    if not root.is_dir():
        raise input_error(str(root), None, "a folder with one sub-folder of images per class",
                          "no such folder")
    class_names, attribute_names, values = read_class_attributes_csv(attributes_csv)
    files = [_class_images(root, class_name) for class_name in class_names]
    for row, (class_name, class_files) in enumerate(zip(class_names, files, strict=True)):
        if not class_files:
            raise input_error(str(root / class_name), None,
                              f"images ({', '.join(IMAGE_EXTENSIONS)}) of class '{class_name}' "
                              f"(row {row + 2} of {attributes_csv})", "none")
    listed = set(class_names)
    extra = sorted(p.name for p in root.iterdir()
                   if p.is_dir() and p.name not in listed and _class_images(root, p.name))
    if extra:
        raise input_error(str(attributes_csv), "class",
                          f"a row for every class folder under {root}",
                          f"no row for {extra[:5]}")
    unknown = [u for u in unseen if u not in listed]
    if unknown or not unseen or len(set(unseen)) >= len(class_names):
        raise input_error("option 'unseen'", None,
                          f"1..{len(class_names) - 1} class names out of {class_names[:8]}...",
                          f"{list(unseen)!r}" + (f" (unknown: {unknown})" if unknown else ""))

    labels = np.repeat(np.arange(len(class_names)), [len(f) for f in files]).astype(np.int64)
    paths = [path for class_files in files for path in class_files]
    quiet = not (progress and sys.stderr.isatty())
    thumbs = np.stack([load_thumbnail(path) for path in
                       tqdm(paths, desc=f"{name}: describing images", disable=quiet)])
    unseen_ids = np.array(sorted(class_names.index(u) for u in set(unseen)))
    seen_ids = np.setdiff1d(np.arange(len(class_names)), unseen_ids)
    trainval, test_seen = seen_holdout_split(labels, seen_ids, test_seen_fraction, seed)
    semantics = values / np.linalg.norm(values, axis=1, keepdims=True)
    return Benchmark(
        name=name, features=image_descriptor(thumbs), labels=labels,
        semantics=semantics.astype(np.float32), class_names=list(class_names),
        trainval_idx=trainval.astype(np.int64), test_seen_idx=test_seen.astype(np.int64),
        test_unseen_idx=np.flatnonzero(np.isin(labels, unseen_ids)).astype(np.int64),
        image_files=[path.relative_to(root).as_posix() for path in paths],
        original_semantics=values.astype(np.float32), attribute_names=list(attribute_names),
        source={"image_root": str(root.resolve()), "attributes_csv": str(attributes_csv.resolve()),
                "generator": "unseen.data.images.load_image_folder", "seed": seed,
                "test_seen_fraction": test_seen_fraction,
                "features": f"image_descriptor ({DESCRIPTOR_DIM}-d colour/gradient/layout)"},
    )
