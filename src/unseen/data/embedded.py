"""The embedded real benchmarks, built on first use from installed packages alone.

`animals` (the default, `make demo`): the 10 x 1000 Animal-MNIST silhouettes, drawn dark on
white (ImageNet-like; this gives better features than the stored white-on-black, see
`benchmarks/embedded_feasibility.py`), encoded by ImageNet-pretrained EfficientNet-Lite0
(1280-d pooled features at `DEFAULT_RESOLUTION` px); class semantics are all-MiniLM-L6-v2
embeddings (384-d, unit norm) of one description per class: the WordNet 3.0 gloss shipped in
the package (`unseen/data/embedded_descriptions.json`), so every machine builds the same data
set (`unseen.text.class_descriptions`; `descriptions=prompt` embeds prompts instead).
`animals-awa2`: the same images without `bird`, with AwA2's real 85 predicates as semantics
(option `awa2_att_splits=PATH` to AwA2's `att_splits.mat`; `AWA2_CLASS_MAP` says which AwA2
classes each animal averages). `fashion`: Fashion-MNIST's 10,000 test images (Debian's
`dataset-fashion-mnist`), same pipeline.

Every data set has `NUM_PARTITIONS` fixed seen/unseen partitions (`PARTITIONS`: 3 unseen
classes each, so ZSL chance is 33%; results are reported as mean +- std over partitions).
As in xlsa17's proposed splits, all images of unseen classes are test_unseen and each seen
class keeps 80% of its images for trainval, 20% for test_seen (seed `SPLIT_SEED + p`).

Cache layout (`$UNSEEN_CACHE`, else `~/.cache/unseen`, then `embedded/<key>/`):
    images.npy                 uint8 [N, 28, 28]: the rendered images, in feature row order
    res101.mat                 xlsa17 features (1280 x N) and 1-based labels, `image_files`
    partition_<p>/att_splits.mat, partition_<p>/res101.mat -> ../res101.mat (symlink)
    examples/<class>.png       one picture per class, for `unseen predict`
    manifest.json              parameters, descriptions, partitions, sha256 of every file
The build runs in a temporary folder renamed into place; the manifest is written last. Each
load re-hashes every file; a tampered or partial cache is deleted and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unseen.cache import cache_root
from unseen.data.benchmark import Benchmark
from unseen.data.embedded_sources import (
    ANIMAL_CLASSES,
    FASHION_CLASSES,
    RawImages,
    load_animal_mnist,
    load_fashion_mnist,
)
from unseen.errors import UnseenInputError, input_error
from unseen.io import atomic_write_json

EMBEDDED_NAMES = ("animals", "animals-awa2", "fashion")
NUM_PARTITIONS = 5
NUM_UNSEEN = 3
TEST_SEEN_FRACTION = 0.2
SPLIT_SEED = 0
IMAGES_PER_CLASS = 1000
FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
IMAGES_FILE = "images.npy"
FEATURES_FILE = "res101.mat"

# Unseen classes of each partition, by name. Every class is unseen in at least one partition.
PARTITIONS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "animals": (("bear", "giraffe", "sheep"), ("bird", "cow", "zebra"),
                ("cat", "elephant", "horse"), ("dog", "giraffe", "zebra"),
                ("bear", "cow", "horse")),
    "animals-awa2": (("bear", "giraffe", "sheep"), ("cow", "dog", "zebra"),
                     ("cat", "elephant", "horse"), ("dog", "giraffe", "zebra"),
                     ("bear", "cow", "horse")),
    "fashion": (("trouser", "shirt", "ankle boot"), ("t-shirt/top", "sandal", "bag"),
                ("pullover", "dress", "sneaker"), ("coat", "sneaker", "bag"),
                ("dress", "coat", "sandal")),
}
# Animal-MNIST class -> the AwA2 classes whose predicate rows it averages (bird has none).
AWA2_CLASS_MAP: dict[str, tuple[str, ...]] = {
    "bear": ("grizzly+bear", "polar+bear"), "cat": ("persian+cat", "siamese+cat"),
    "cow": ("cow",), "dog": ("dalmatian", "german+shepherd", "chihuahua", "collie"),
    "elephant": ("elephant",), "giraffe": ("giraffe",), "horse": ("horse",),
    "sheep": ("sheep",), "zebra": ("zebra",),
}
_OPTIONS = ("resolution", "descriptions", "awa2_att_splits", "progress", "device", "verify",
            "side_information")


@dataclass(frozen=True)
class BuildParams:
    """Everything that determines a built cache (its folder name is derived from it)."""

    name: str
    images_per_class: int
    resolution: int
    descriptions: str  # the resolved kind: "wordnet" or "prompt" ("awa2" for animals-awa2)
    awa2_att_splits: str | None = None
    awa2_sha256: str | None = None

    @property
    def key(self) -> str:
        key = (f"{self.name}-v{FORMAT_VERSION}-lite0-{self.resolution}px-"
               f"{self.images_per_class}i-{self.descriptions}")
        return key + (f"-{self.awa2_sha256[:12]}" if self.awa2_sha256 else "")


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _say(message: str, progress: bool) -> None:
    if progress:
        print(f"unseen: {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- parameters

def _resolve_params(name: str, images_per_class: int | None, options: dict) -> BuildParams:
    from unseen.backbones.efficientnet_lite import DEFAULT_RESOLUTION, check_resolution
    from unseen.text.class_descriptions import class_descriptions

    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise input_error("embedded data set options", None, f"some of {', '.join(_OPTIONS)}",
                          ", ".join(unknown))
    if options.get("side_information", "att") != "att":
        raise input_error("option 'side_information'", None, "att (embedded data sets hold "
                          "class embeddings in att_splits.mat)", repr(options["side_information"]))
    name = name.lower()
    if name == "animals" and options.get("awa2_att_splits"):
        name = "animals-awa2"
    if name not in EMBEDDED_NAMES:
        raise input_error("data set", None, f"one of {', '.join(EMBEDDED_NAMES)}", repr(name))
    per_class = IMAGES_PER_CLASS if images_per_class is None else int(images_per_class)
    if not 5 <= per_class <= IMAGES_PER_CLASS:
        raise input_error("option 'images_per_class'", None, f"5..{IMAGES_PER_CLASS}",
                          str(images_per_class))
    resolution = check_resolution(options.get("resolution", DEFAULT_RESOLUTION))
    if name == "animals-awa2":
        path = _awa2_path(options.get("awa2_att_splits"))
        return BuildParams(name, per_class, resolution, "awa2", str(path), _sha256(path))
    classes = ANIMAL_CLASSES if name == "animals" else FASHION_CLASSES
    # Resolve "auto" now: the cache key must say which kind of text was embedded.
    _, kind = class_descriptions(list(classes), name, options.get("descriptions", "auto"))
    return BuildParams(name, per_class, resolution, kind)


def _awa2_path(option: str | os.PathLike | None) -> Path:
    if option:
        path = Path(option).expanduser()
    else:
        from unseen.data.datasets import resolve_dataset_dir

        try:
            path = resolve_dataset_dir("AWA2") / "att_splits.mat"
        except UnseenInputError as error:
            raise UnseenInputError("data set 'animals-awa2': expected option awa2_att_splits="
                                   "PATH to AwA2's att_splits.mat (or AwA2 under the data "
                                   f"root), found neither ({error})") from error
    if not path.is_file():
        raise input_error("option 'awa2_att_splits'", None, "AwA2's att_splits.mat",
                          f"no file at {path}")
    return path.resolve()


# ----------------------------------------------------------------------------- content

@dataclass
class _Content:
    """What one embedded data set holds, before it is written as xlsa17 files."""

    images: np.ndarray  # uint8 [N, 28, 28], dark object on white
    labels: np.ndarray
    class_names: list[str]
    features: np.ndarray  # float32 [N, 1280]
    semantics: np.ndarray  # float32 [C, A]
    original_semantics: np.ndarray | None
    descriptions: list[str]
    source: dict


def first_per_class(labels: np.ndarray, per_class: int) -> np.ndarray:
    """Rows of the first `per_class` images of every class, grouped by class (ascending)."""
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    rank = np.arange(labels.size) - np.searchsorted(sorted_labels, sorted_labels, side="left")
    return order[rank < per_class]


def render(images: np.ndarray) -> np.ndarray:
    """Stored white-on-black pictures -> dark object on a white background."""
    return 255 - images


def _image_content(raw: RawImages, params: BuildParams, options: dict) -> _Content:
    from unseen.backbones.efficientnet_lite import BACKBONE_NAME, extract_features
    from unseen.text.class_descriptions import class_descriptions
    from unseen.text.sentence_encoder import ENCODER_NAME, SentenceEncoder

    rows = first_per_class(raw.labels, params.images_per_class)
    images, labels = render(raw.images[rows]), raw.labels[rows]
    progress = options.get("progress", True)
    started, cpu_started = time.perf_counter(), time.process_time()
    features = extract_features(images, params.resolution, device=options.get("device", "cpu"),
                                progress=progress)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    names = list(raw.class_names)
    descriptions, kind = class_descriptions(names, params.name, params.descriptions)
    semantics = SentenceEncoder(device=options.get("device", "cpu")).encode(descriptions)
    source = {"images": raw.source, "backbone": BACKBONE_NAME, "resolution": params.resolution,
              "feature_seconds": round(seconds, 2), "feature_cpu_seconds": round(cpu_seconds, 2),
              "semantic_encoder": ENCODER_NAME,
              "descriptions_kind": kind, "rendering": "255 - pixels (dark object on white)"}
    return _Content(images, labels, names, features, semantics, None, descriptions, source)


def _awa2_content(params: BuildParams, cache_dir: Path, options: dict) -> _Content:
    """The `animals` images and features (built first if needed) with AwA2 predicates."""
    from unseen.data.matfile import load_mat

    base_options = {k: v for k, v in options.items() if k in ("progress", "device", "verify")}
    base_dir = build_embedded("animals", cache_dir, partition=0,
                              images_per_class=params.images_per_class,
                              resolution=params.resolution, **base_options)
    base_root = base_dir.parent
    base_manifest = json.loads((base_root / MANIFEST_FILE).read_text())
    res = load_mat(base_root / FEATURES_FILE)
    features = np.ascontiguousarray(np.asarray(res["features"]).T, dtype=np.float32)
    labels = np.asarray(res["labels"]).reshape(-1).astype(np.int64) - 1
    images = np.load(base_root / IMAGES_FILE)
    splits = load_mat(params.awa2_att_splits)
    awa2_names = [str(n) for n in splits.get("allclasses_names", [])]
    att = np.asarray(splits.get("att", np.empty((0, 0))), dtype=np.float64)
    original = np.asarray(splits.get("original_att", att), dtype=np.float64)
    missing = [c for group in AWA2_CLASS_MAP.values() for c in group if c not in awa2_names]
    if att.ndim != 2 or att.shape[1] != len(awa2_names) or missing:
        raise input_error(params.awa2_att_splits, "att / allclasses_names",
                          "AwA2's 50 classes with an [85, 50] att matrix",
                          f"att {att.shape}, missing classes {missing[:5]}")
    names = [name for name in ANIMAL_CLASSES if name in AWA2_CLASS_MAP]
    columns = [[awa2_names.index(c) for c in AWA2_CLASS_MAP[name]] for name in names]
    semantics = np.stack([att[:, cols].mean(axis=1) for cols in columns])
    semantics /= np.linalg.norm(semantics, axis=1, keepdims=True)  # xlsa17 att rows: unit L2
    original_rows = np.stack([original[:, cols].mean(axis=1) for cols in columns])
    old_names = list(base_manifest["class_names"])
    keep = np.isin(labels, [old_names.index(name) for name in names])
    relabel = np.full(len(old_names), -1, np.int64)
    relabel[[old_names.index(name) for name in names]] = np.arange(len(names))
    source = {"images": base_manifest["source"]["images"], "animals_cache": str(base_root),
              "backbone": base_manifest["source"]["backbone"], "resolution": params.resolution,
              "semantic_encoder": "none (AwA2 predicates)", "descriptions_kind": "awa2",
              "awa2_att_splits": params.awa2_att_splits, "awa2_sha256": params.awa2_sha256,
              "awa2_class_map": {k: list(v) for k, v in AWA2_CLASS_MAP.items()},
              "rendering": base_manifest["source"]["rendering"]}
    descriptions = [f"{name}: mean AwA2 predicates of {', '.join(AWA2_CLASS_MAP[name])}"
                    for name in names]
    return _Content(images[keep], relabel[labels[keep]], names, features[keep],
                    semantics.astype(np.float32), original_rows.astype(np.float32),
                    descriptions, source)


# ----------------------------------------------------------------------------- writing

def _write(directory: Path, params: BuildParams, content: _Content) -> None:
    from PIL import Image

    from unseen.data.images import seen_holdout_split
    from unseen.data.xlsa17 import write_xlsa17

    names = content.class_names
    per_class_index = np.arange(content.labels.size) - np.searchsorted(
        content.labels, content.labels, side="left")  # labels are grouped by class
    image_files = [f"{names[c]}/{k:04d}" for c, k in zip(content.labels.tolist(),
                                                         per_class_index.tolist(), strict=True)]
    partitions = PARTITIONS[params.name]
    for p, unseen_names in enumerate(partitions):
        unseen = np.array(sorted(names.index(n) for n in unseen_names))
        seen = np.setdiff1d(np.arange(len(names)), unseen)
        trainval, test_seen = seen_holdout_split(content.labels, seen, TEST_SEEN_FRACTION,
                                                 SPLIT_SEED + p)
        benchmark = Benchmark(
            name=params.name, features=content.features, labels=content.labels,
            semantics=content.semantics, class_names=names, trainval_idx=trainval,
            test_seen_idx=test_seen,
            test_unseen_idx=np.flatnonzero(np.isin(content.labels, unseen)).astype(np.int64),
            image_files=image_files, original_semantics=content.original_semantics)
        partition_dir = directory / f"partition_{p}"
        write_xlsa17(benchmark, partition_dir)
        if p == 0:  # one copy of the features, shared by every partition through a link
            os.replace(partition_dir / FEATURES_FILE, directory / FEATURES_FILE)
        else:
            (partition_dir / FEATURES_FILE).unlink()
        (partition_dir / FEATURES_FILE).symlink_to(Path("..") / FEATURES_FILE)
    np.save(directory / IMAGES_FILE, content.images)
    (directory / "examples").mkdir()
    firsts = np.searchsorted(content.labels, np.arange(len(names)))
    for c, row in enumerate(firsts):
        file_name = names[c].replace("/", "-").replace(" ", "_") + ".png"
        Image.fromarray(content.images[row]).save(directory / "examples" / file_name)
    files = sorted(p for p in directory.rglob("*") if p.is_file() and not p.is_symlink())
    manifest = {
        "name": params.name, "format_version": FORMAT_VERSION, "params": params.__dict__,
        "class_names": names, "descriptions": content.descriptions,
        "partitions": [list(p) for p in partitions], "source": content.source,
        "links": {p.relative_to(directory).as_posix(): os.readlink(p)
                  for p in sorted(directory.rglob("*")) if p.is_symlink()},
        "files": {p.relative_to(directory).as_posix(): _sha256(p) for p in files},
    }
    atomic_write_json(directory / MANIFEST_FILE, manifest)  # last: marks the build complete


def verify_embedded(root: Path | str) -> dict:
    """The manifest of a built cache, after re-hashing every file (UnseenInputError if not)."""
    root = Path(root)
    manifest_path = root / MANIFEST_FILE
    if not manifest_path.is_file():
        raise input_error(str(manifest_path), None, "the manifest of a built embedded data set",
                          "no such file")
    try:
        manifest = json.loads(manifest_path.read_text())
        files, links = manifest["files"], manifest["links"]
    except (ValueError, KeyError) as error:
        raise input_error(str(manifest_path), None, "a complete manifest", repr(error)) from error
    for relative, digest in files.items():
        path = root / relative
        found = _sha256(path) if path.is_file() and not path.is_symlink() else "a missing file"
        if found != digest:
            raise UnseenInputError(f"{path}: expected sha256 {digest} from {manifest_path}, "
                                   f"found {found}")
    for relative, target in links.items():
        path = root / relative
        if not path.is_symlink() or os.readlink(path) != target:
            raise UnseenInputError(f"{path}: expected a link to {target} ({manifest_path}), "
                                   "found none")
    return manifest


def build_embedded(name: str = "animals", cache_dir: str | os.PathLike | None = None,
                   partition: int = 0, images_per_class: int | None = None,
                   **options) -> Path:
    """Build the data set once (reused afterwards) and return partition `partition`'s xlsa17
    directory (`<root>/partition_<p>`, holding `res101.mat` and `att_splits.mat`).

    Options: resolution (px, multiple of 32), descriptions (auto/wordnet: the packaged
    WordNet glosses; prompt: "a photo of an elephant, an animal."),
    awa2_att_splits (PATH), progress (bool), device, verify (re-hash a cache before reuse).
    """
    params = _resolve_params(name, images_per_class, options)
    if not 0 <= partition < NUM_PARTITIONS:
        raise input_error("option 'partition'", None, f"0..{NUM_PARTITIONS - 1}", str(partition))
    cache_dir = Path(cache_dir) if cache_dir is not None else cache_root()
    parent = cache_dir / "embedded"
    root = parent / params.key
    progress = options.get("progress", True)
    if (root / MANIFEST_FILE).is_file():
        try:
            if options.get("verify", True):
                verify_embedded(root)
            return root / f"partition_{partition}"
        except UnseenInputError as problem:
            _say(f"cache {root} is damaged ({problem}); rebuilding it", True)
    parent.mkdir(parents=True, exist_ok=True)
    _say(f"building the embedded data set '{params.name}' in {root} (first use)", progress)
    started = time.perf_counter()
    if params.name == "animals-awa2":
        content = _awa2_content(params, cache_dir, options)
    else:
        raw = load_animal_mnist() if params.name == "animals" else load_fashion_mnist()
        content = _image_content(raw, params, options)
    content.source["build_seconds"] = round(time.perf_counter() - started, 2)
    staging = Path(tempfile.mkdtemp(dir=parent, prefix=f".{root.name}.build."))
    try:
        _write(staging, params, content)
        _replace_dir(staging, root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _say(f"built '{params.name}' in {time.perf_counter() - started:.1f} s", progress)
    return root / f"partition_{partition}"


def _replace_dir(staging: Path, root: Path) -> None:
    """Move `staging` to `root`; an old (damaged or partial) `root` is moved aside first."""
    if root.exists():
        trash = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}.old."))
        os.replace(root, trash / "old")
        shutil.rmtree(trash, ignore_errors=True)
    try:
        os.replace(staging, root)
    except OSError:
        if not (root / MANIFEST_FILE).is_file():  # not a finished concurrent build
            raise


def load_embedded(name: str = "animals", partition: int = 0,
                  cache_dir: str | os.PathLike | None = None,
                  images_per_class: int | None = None, **options) -> Benchmark:
    """The embedded data set `name`, seen/unseen `partition` (0..NUM_PARTITIONS-1).

    Built into the cache on first use (about half a minute for `animals` on 2 CPU cores),
    then reused. Options as `build_embedded`.
    """
    from unseen.data.xlsa17 import load_xlsa17

    directory = build_embedded(name, cache_dir, partition, images_per_class, **options)
    root = directory.parent
    manifest = json.loads((root / MANIFEST_FILE).read_text())
    benchmark = load_xlsa17(directory, name=manifest["name"])
    benchmark.source.update({
        "generator": "unseen.data.embedded", "name": manifest["name"], "partition": partition,
        "num_partitions": NUM_PARTITIONS,
        "unseen_class_names": manifest["partitions"][partition],
        "params": manifest["params"], "manifest_sha256": _sha256(root / MANIFEST_FILE),
        "backbone": manifest["source"]["backbone"],
        "resolution": manifest["source"]["resolution"],
        "backbone_resolution": manifest["source"]["resolution"],  # read by `unseen predict`
        "semantic_encoder": manifest["source"]["semantic_encoder"],
        "descriptions_kind": manifest["source"]["descriptions_kind"],
        "descriptions": manifest["descriptions"], "image_root": str(root.resolve()),
        "images_npy": str((root / IMAGES_FILE).resolve()),
        "examples_dir": str((root / "examples").resolve()),
    })
    return benchmark


def load_embedded_images(benchmark: Benchmark) -> np.ndarray:
    """uint8 [N, 28, 28] pictures of an embedded benchmark, row-aligned with its features."""
    path = benchmark.source.get("images_npy")
    if not path:
        raise input_error(f"benchmark '{benchmark.name}'", "source.images_npy",
                          "an embedded data set with stored images", "none")
    return np.load(path)

