"""`shapes`: an embedded image benchmark for image methods (DUET), rendered offline in seconds.

Each class is a combination of one value per attribute group (shape, colour, pattern, size,
background), e.g. `large_red_striped_star_on_dark`. Unseen classes are new combinations of
values that seen classes show, so attribute-level transfer is possible and necessary. Images are
drawn with PIL/numpy (random position, rotation, colour and size jitter, pixel noise) and stored
as PNG; the class attributes and splits are written in the xlsa17 layout (`res101.mat`,
`att_splits.mat` with DUET's `attri_name` and `binary_att`) plus DUET's
`attributeindex2prompt.json` (attribute index -> group name).

Layout of a built cache (`build_rendered_benchmark` returns `root`):
    root/images/<class>/<k>.png          the pictures; `image_files` are relative to root
    root/partition_<p>/{res101.mat,att_splits.mat}   one xlsa17 directory per partition
    root/attributeindex2prompt.json      attribute groups
    root/manifest.json                   parameters, partitions, sha256 of every file
The build happens in a temporary folder renamed into place, so a cache is complete or absent.
`res101.mat` features are `unseen.data.images.image_descriptor`s of the pictures (160-d).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from unseen.cache import cache_root
from unseen.data.benchmark import Benchmark
from unseen.data.images import image_descriptor, seen_holdout_split, thumbnail
from unseen.errors import UnseenInputError, input_error
from unseen.io import atomic_write_json

NAME = "shapes"
FORMAT_VERSION = 1
GROUPS: dict[str, tuple[str, ...]] = {
    "shape": ("circle", "square", "triangle", "star"),
    "colour": ("red", "green", "blue", "yellow"),
    "pattern": ("solid", "striped", "dotted"),
    "size": ("small", "large"),
    "background": ("light", "dark"),
}
ATTRIBUTE_NAMES = [value for values in GROUPS.values() for value in values]
ATTRIBUTE_GROUPS = [group for group, values in GROUPS.items() for _ in values]
NUM_CLASSES = 24
NUM_UNSEEN = 6
NUM_PARTITIONS = 5
IMAGES_PER_CLASS = 80
IMAGE_SIZE = 64
TEST_SEEN_FRACTION = 0.2
GROUPS_FILE = "attributeindex2prompt.json"
MANIFEST_FILE = "manifest.json"

_COLOURS = {"red": (215, 45, 40), "green": (45, 170, 65), "blue": (45, 85, 215),
            "yellow": (230, 205, 40)}
_SUPERSAMPLE = 4
_CLASS_DRAWS = 500


# ----------------------------------------------------------------------------- classes

def choose_classes(num_classes: int = NUM_CLASSES, seed: int = 0) -> np.ndarray:
    """[C, groups] value indices: distinct combinations, each value used by several classes."""
    combos = np.array(list(itertools.product(*(range(len(v)) for v in GROUPS.values()))))
    if not 2 <= num_classes <= len(combos):
        raise input_error("option 'num_classes'", None, f"2..{len(combos)}", str(num_classes))
    rng = np.random.default_rng([seed, 1])
    # Among a fixed number of random draws keep the most balanced one (value counts as even as
    # possible), so no colour or shape dominates the seen classes.
    draws = np.stack([np.sort(rng.choice(len(combos), num_classes, replace=False))
                      for _ in range(_CLASS_DRAWS)])
    counts = np.stack([_value_counts(combos[draw]) for draw in draws]).astype(np.int64)
    spread = [(-c.min(), c.std()) for c in counts]
    return combos[draws[min(range(len(draws)), key=spread.__getitem__)]]


def choose_partitions(classes: np.ndarray, num_unseen: int = NUM_UNSEEN,
                      num_partitions: int = NUM_PARTITIONS, seed: int = 0) -> list[np.ndarray]:
    """Distinct sorted unseen-class sets; in each, every attribute value stays in a seen class."""
    if not 1 <= num_unseen < len(classes):
        raise input_error("option 'num_unseen'", None, f"1..{len(classes) - 1}", str(num_unseen))
    rng = np.random.default_rng([seed, 2])
    partitions: list[np.ndarray] = []
    for _ in range(100_000):
        if len(partitions) == num_partitions:
            return partitions
        unseen = np.sort(rng.choice(len(classes), num_unseen, replace=False))
        seen = np.setdiff1d(np.arange(len(classes)), unseen)
        if _value_counts(classes[seen]).min() >= 1 and \
                not any(np.array_equal(unseen, p) for p in partitions):
            partitions.append(unseen)
    raise RuntimeError("could not draw partitions whose seen classes show every value")


def class_binary(classes: np.ndarray) -> np.ndarray:
    """[C, A] {0,1}: the one-hot values of each group, concatenated in `ATTRIBUTE_NAMES` order."""
    offsets = np.cumsum([0] + [len(v) for v in GROUPS.values()])[:-1]
    binary = np.zeros((len(classes), len(ATTRIBUTE_NAMES)), np.uint8)
    binary[np.arange(len(classes))[:, None], classes + offsets] = 1
    return binary


def class_name(combo: np.ndarray) -> str:
    shape, colour, pattern, size, background = (values[i] for values, i in
                                                zip(GROUPS.values(), combo, strict=True))
    return f"{size}_{colour}_{pattern}_{shape}_on_{background}"


def _value_counts(classes: np.ndarray) -> np.ndarray:
    return class_binary(classes).sum(axis=0)


# ----------------------------------------------------------------------------- rendering

def render_image(combo: np.ndarray, rng: np.random.Generator,
                 image_size: int = IMAGE_SIZE) -> np.ndarray:
    """One uint8 [S, S, 3] picture of the class `combo` (value index per group)."""
    shape, colour, pattern, size, background = (values[i] for values, i in
                                                zip(GROUPS.values(), combo, strict=True))
    s = image_size
    radius = s * (rng.uniform(0.13, 0.18) if size == "small" else rng.uniform(0.27, 0.34))
    reach = radius * 1.35 + 1
    centre = rng.uniform(reach, s - reach, size=2)
    angle = rng.uniform(0, 2 * np.pi)
    alpha = _shape_alpha(shape, centre, radius, angle, s)

    light = background == "light"
    back = rng.uniform(185, 240) if light else rng.uniform(15, 65)
    back_rgb = np.clip(back + rng.normal(0, 8, 3), 0, 255)
    fill = np.clip(np.array(_COLOURS[colour]) + rng.normal(0, 12, 3), 0, 255)
    accent = np.full(3, 25.0 if light else 235.0)  # contrasts with the background

    y, x = np.mgrid[0:s, 0:s] + 0.5
    if pattern == "striped":
        period, phi = rng.uniform(5, 8), rng.uniform(0, np.pi)
        marks = np.mod((x * np.cos(phi) + y * np.sin(phi)) / period, 1.0) < 0.5
    elif pattern == "dotted":
        period = rng.uniform(6, 9)
        ox, oy = rng.uniform(0, period, 2)
        dx = np.mod(x - ox, period) - period / 2
        dy = np.mod(y - oy, period) - period / 2
        marks = np.hypot(dx, dy) < 0.28 * period
    else:
        marks = np.zeros((s, s), bool)
    foreground = np.where(marks[..., None], 0.3 * fill + 0.7 * accent, fill)
    image = back_rgb * (1 - alpha[..., None]) + foreground * alpha[..., None]
    image += rng.normal(0, 5, image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _shape_alpha(shape: str, centre: np.ndarray, radius: float, angle: float,
                 size: int) -> np.ndarray:
    """Anti-aliased coverage [S, S] in [0, 1] (drawn 4x larger, then box-averaged)."""
    k = _SUPERSAMPLE
    canvas = Image.new("L", (size * k, size * k), 0)
    draw = ImageDraw.Draw(canvas)
    cx, cy, r = centre[0] * k, centre[1] * k, radius * k
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    else:
        if shape == "square":
            radii, turns = [1.2 * r] * 4, np.arange(4) / 4 + 1 / 8
        elif shape == "triangle":
            radii, turns = [1.3 * r] * 3, np.arange(3) / 3
        else:  # star: five points, outer and inner radii alternate
            radii, turns = [1.35 * r, 0.55 * r] * 5, np.arange(10) / 10
        theta = angle + 2 * np.pi * turns
        points = np.stack([cx + np.asarray(radii) * np.cos(theta),
                           cy + np.asarray(radii) * np.sin(theta)], axis=1)
        draw.polygon([tuple(p) for p in points], fill=255)
    small = canvas.resize((size, size), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float64) / 255.0


# ----------------------------------------------------------------------------- build / load

def build_rendered_benchmark(cache_dir: Path | str | None = None,
                             images_per_class: int = IMAGES_PER_CLASS,
                             image_size: int = IMAGE_SIZE, num_classes: int = NUM_CLASSES,
                             num_unseen: int = NUM_UNSEEN, num_partitions: int = NUM_PARTITIONS,
                             seed: int = 0, progress: bool = True) -> Path:
    """Render and write the benchmark once; return its root (reused when already built)."""
    if images_per_class < 2:
        raise input_error("option 'images_per_class'", None, "at least 2", str(images_per_class))
    if image_size < 16 or image_size % 8:
        raise input_error("option 'image_size'", None, "a multiple of 8, at least 16",
                          str(image_size))
    params = {"version": FORMAT_VERSION, "images_per_class": int(images_per_class),
              "image_size": int(image_size), "num_classes": int(num_classes),
              "num_unseen": int(num_unseen), "num_partitions": int(num_partitions),
              "seed": int(seed)}
    cache_dir = Path(cache_dir) if cache_dir is not None else cache_root() / "rendered"
    root = cache_dir / (f"{NAME}-v{FORMAT_VERSION}-{image_size}px-{num_classes}c-"
                        f"{images_per_class}i-{num_partitions}p{num_unseen}u-seed{seed}")
    if (root / MANIFEST_FILE).is_file():
        return root
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=cache_dir, prefix=f".{root.name}."))
    try:
        _write_benchmark(staging, params, progress)
        try:
            os.replace(staging, root)
        except OSError:
            if not (root / MANIFEST_FILE).is_file():  # not a finished concurrent build
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root


def _write_benchmark(directory: Path, params: dict, progress: bool) -> None:
    from unseen.data.xlsa17 import write_xlsa17

    classes = choose_classes(params["num_classes"], params["seed"])
    partitions = choose_partitions(classes, params["num_unseen"], params["num_partitions"],
                                   params["seed"])
    names = [class_name(combo) for combo in classes]
    per_class, size = params["images_per_class"], params["image_size"]
    labels = np.repeat(np.arange(len(classes)), per_class).astype(np.int64)
    image_files = [f"images/{names[c]}/{k:04d}.png" for c in range(len(classes))
                   for k in range(per_class)]
    thumbs = np.empty((labels.size, 32, 32, 3), np.uint8)
    quiet = not (progress and sys.stderr.isatty())
    for c in tqdm(range(len(classes)), desc=f"rendering {NAME}", disable=quiet):
        (directory / "images" / names[c]).mkdir(parents=True)
        rng = np.random.default_rng([params["seed"], 3, c])
        for k in range(per_class):
            picture = Image.fromarray(render_image(classes[c], rng, size))
            picture.save(directory / image_files[c * per_class + k], optimize=False)
            thumbs[c * per_class + k] = thumbnail(picture)
    features = image_descriptor(thumbs)

    binary = class_binary(classes)
    noise = np.random.default_rng([params["seed"], 4]).uniform(0, 8, binary.shape)
    original = binary * 100.0 + noise  # bin = original > per-attribute mean recovers `binary`
    att = original / np.linalg.norm(original, axis=1, keepdims=True)
    for p, unseen in enumerate(partitions):
        seen = np.setdiff1d(np.arange(len(classes)), unseen)
        trainval, test_seen = seen_holdout_split(labels, seen, TEST_SEEN_FRACTION,
                                                 params["seed"] + p)
        benchmark = Benchmark(
            name=NAME, features=features, labels=labels, semantics=att.astype(np.float32),
            class_names=names, trainval_idx=trainval, test_seen_idx=test_seen,
            test_unseen_idx=np.flatnonzero(np.isin(labels, unseen)).astype(np.int64),
            image_files=image_files, original_semantics=original.astype(np.float32),
            attribute_names=list(ATTRIBUTE_NAMES))
        write_xlsa17(benchmark, directory / f"partition_{p}",
                     extra_split_fields={"binary_att": binary.T.astype(np.float64)})
    (directory / GROUPS_FILE).write_text(json.dumps(
        {str(a): group for a, group in enumerate(ATTRIBUTE_GROUPS)}, indent=1) + "\n")
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    manifest = {"name": NAME, "params": params, "groups": {k: list(v) for k, v in GROUPS.items()},
                "partitions": [[names[c] for c in unseen] for unseen in partitions],
                "files": {p.relative_to(directory).as_posix(): _sha256(p) for p in files}}
    atomic_write_json(directory / MANIFEST_FILE, manifest)  # last: marks the build complete


def verify_rendered(root: Path | str) -> dict:
    """The manifest, after checking every listed file's sha256 (UnseenInputError if changed)."""
    root = Path(root)
    manifest_path = root / MANIFEST_FILE
    if not manifest_path.is_file():
        raise input_error(str(manifest_path), None, f"the manifest of a built {NAME} benchmark",
                          "no such file")
    manifest = json.loads(manifest_path.read_text())
    for relative, digest in manifest["files"].items():
        path = root / relative
        found = _sha256(path) if path.is_file() else "a missing file"
        if found != digest:
            raise UnseenInputError(f"{path}: expected sha256 {digest} from {manifest_path}, found "
                                   f"{found}; delete {root} to rebuild it")
    return manifest


def load_rendered(partition: int = 0, cache_dir: Path | str | None = None,
                  images_per_class: int | None = None, verify: bool = True,
                  **options) -> Benchmark:
    """The `shapes` benchmark, seen/unseen `partition` 0..num_partitions-1 (built on first use).

    `options` are `build_rendered_benchmark`'s (image_size, num_classes, num_unseen,
    num_partitions, seed, progress). `source` carries what DUET needs: image_root,
    attribute_groups, duet_style.
    """
    from unseen.data.xlsa17 import load_xlsa17

    num_partitions = options.get("num_partitions", NUM_PARTITIONS)
    if not 0 <= partition < num_partitions:
        raise input_error("option 'partition'", None, f"0..{num_partitions - 1}", str(partition))
    root = build_rendered_benchmark(cache_dir, images_per_class or IMAGES_PER_CLASS, **options)
    manifest = verify_rendered(root) if verify else json.loads((root / MANIFEST_FILE).read_text())
    benchmark = load_xlsa17(root / f"partition_{partition}", name=NAME)
    benchmark.source.update({
        "generator": "unseen.data.rendered", "partition": partition,
        "unseen_class_names": manifest["partitions"][partition], "params": manifest["params"],
        "manifest_sha256": _sha256(root / MANIFEST_FILE), "image_root": str(root.resolve()),
        "attribute_groups": str((root / GROUPS_FILE).resolve()), "duet_style": "generic",
        "features": "image_descriptor (160-d colour/gradient/layout)"})
    return benchmark


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
