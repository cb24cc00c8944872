"""`unseen data build OUT_DIR`: a GZSL benchmark in the xlsa17 layout from raw material.

Images (an ImageFolder tree or a `path,class` CSV) -> backbone features (cached by file
content, see `unseen.data.extraction`) + class semantics (attributes, encoded descriptions or
prompts, see `unseen.data.class_semantics`) -> the proposed split of Xian et al. (all images of
the unseen classes are test_unseen; each seen class keeps ~80 % for trainval and ~20 % for
test_seen) -> `OUT_DIR/<backbone>.mat`, `att_splits.mat` and the manifest `unseen.json`.

Everything is written into `OUT_DIR.partial-*` and renamed to `OUT_DIR` at the end, so a
folder named `OUT_DIR` is always complete. Under `torchrun --nproc_per_node N -m unseen data
build ...` the ranks share the feature extraction and rank 0 writes the data set.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from unseen.data.benchmark import Benchmark
from unseen.data.images import seen_holdout_split
from unseen.data.manifest import MANIFEST_FILE, MANIFEST_FORMAT
from unseen.errors import input_error

SPLIT_METHOD = "proposed-split (Xian et al.)"
DEFAULT_TEST_SEEN_FRACTION = 0.2
DEFAULT_UNSEEN_FRACTION = 0.2
SHOWN_SKIPS = 3
# scipy's v5 writer cannot store a variable of 2 GiB or more; larger sets are written as v7.3.
V5_LIMIT_BYTES = 2**31 - 2**20


@dataclass
class BuildOptions:
    """Everything `build_dataset` needs; the CLI fills it from `unseen data build` options."""

    out_dir: Path
    images: Path
    attributes: Path | None = None
    descriptions: Path | None = None
    prompt: str | None = None
    text_encoder: str | None = None
    backbone: str = "efficientnet-lite0"
    image_size: int | None = None
    unseen: list[str] | None = None
    unseen_fraction: float | None = None
    seed: int = 0
    test_seen_fraction: float = DEFAULT_TEST_SEEN_FRACTION
    batch_size: int | None = None  # default: 16 on CPU (measured best at 224 px), 128 on CUDA
    workers: int | None = None
    device: str | None = None
    cache_dir: Path | None = None
    strict: bool = False
    overwrite: bool = False
    progress: bool = True
    command: str = field(default_factory=lambda: "unseen " + shlex.join(sys.argv[1:]))


# ----------------------------------------------------------------------------- the split

def choose_unseen(class_names: list[str], unseen: list[str] | None,
                  unseen_fraction: float | None, seed: int) -> np.ndarray:
    """Sorted ids of the unseen classes: named, or a random `unseen_fraction` of them."""
    count = len(class_names)
    if count < 2:
        raise input_error("option '--images'", None, "at least 2 classes (seen and unseen)",
                          f"{count}: {class_names}")
    if unseen:
        duplicated = sorted({name for name in unseen if unseen.count(name) > 1})
        unknown = [name for name in unseen if name not in class_names]
        if unknown or duplicated:
            raise input_error("option '--unseen'", None, f"distinct class names out of "
                              f"{class_names[:10]}" + (" ..." if count > 10 else ""),
                              f"unknown {unknown}" if unknown else f"repeated {duplicated}")
        if len(unseen) >= count:
            raise input_error("option '--unseen'", None, f"1..{count - 1} of the {count} classes "
                              "(the rest are seen)", f"all {count}")
        return np.array(sorted(class_names.index(name) for name in unseen), np.int64)
    fraction = DEFAULT_UNSEEN_FRACTION if unseen_fraction is None else float(unseen_fraction)
    if not 0.0 < fraction < 1.0:
        raise input_error("option '--unseen-fraction'", None, "a number in (0, 1)",
                          repr(unseen_fraction))
    k = min(max(1, int(round(fraction * count))), count - 1)
    return np.sort(np.random.default_rng(seed).choice(count, k, replace=False)).astype(np.int64)


def proposed_split(labels: np.ndarray, class_names: list[str], unseen_ids: np.ndarray,
                   test_seen_fraction: float, seed: int,
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(trainval, test_seen, test_unseen) row indices; errors name classes too small to split."""
    if not 0.0 < test_seen_fraction < 1.0:
        raise input_error("option '--test-seen-fraction'", None, "a number in (0, 1)",
                          repr(test_seen_fraction))
    counts = np.bincount(labels, minlength=len(class_names))
    empty = [class_names[c] for c in np.flatnonzero(counts == 0)]
    if empty:
        raise input_error("option '--images'", None, "at least one readable image per class",
                          f"none for {empty[:5]}")
    seen_ids = np.setdiff1d(np.arange(len(class_names)), unseen_ids)
    held = np.floor(test_seen_fraction * counts[seen_ids])
    small = seen_ids[(held < 1) | (counts[seen_ids] - held < 1)]
    if small.size:
        need = int(np.ceil(1 / test_seen_fraction))
        listed = ", ".join(f"{class_names[c]} ({counts[c]})" for c in small[:8])
        raise input_error("option '--images'", None, f"at least {need} readable images per seen "
                          f"class (~{1 - test_seen_fraction:.0%} trainval, "
                          f"~{test_seen_fraction:.0%} test_seen)",
                          f"{small.size} seen classes with fewer: {listed}"
                          + (" ..." if small.size > 8 else "")
                          + " (name them in --unseen, or add images)")
    trainval, test_seen = seen_holdout_split(labels, seen_ids, test_seen_fraction, seed)
    test_unseen = np.flatnonzero(np.isin(labels, unseen_ids))
    return trainval.astype(np.int64), test_seen.astype(np.int64), test_unseen.astype(np.int64)


# ----------------------------------------------------------------------------- the build

def _device(requested: str | None):
    import torch

    if requested:
        try:
            return torch.device(requested)
        except RuntimeError:
            raise input_error("option '--device'", None, "cpu, cuda or cuda:N",
                              repr(requested)) from None
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def _gather(value):
    """[value of rank 0, value of rank 1, ...] (just [value] without a process group)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return [value]
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, value)
    return gathered


def _check_out_dir(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not overwrite:
        raise input_error(str(out_dir), None, "a new output folder (or --overwrite)",
                          "it exists already")
    if not out_dir.parent.is_dir():
        raise input_error(str(out_dir), None, "an output path in an existing folder",
                          f"no folder {out_dir.parent}")


def default_cache_dir() -> Path:
    from unseen.cache import cache_root

    return cache_root() / "features"


def build_dataset(options: BuildOptions) -> Path | None:
    """Build the data set described by `options`; returns OUT_DIR (None on ranks other than 0
    of a torchrun build). Bad input raises `UnseenInputError` on every rank."""
    from unseen import parallel
    from unseen.backbones.auto import load_backbone
    from unseen.data.class_semantics import build_class_semantics
    from unseen.data.extraction import default_workers, extract_to_cache, precision_for
    from unseen.data.feature_cache import FeatureCache
    from unseen.data.image_folder import list_images

    out_dir = Path(options.out_dir).expanduser().absolute()
    _check_out_dir(out_dir, options.overwrite)
    images = list_images(options.images)
    unseen_ids = choose_unseen(images.class_names, options.unseen, options.unseen_fraction,
                               options.seed)
    # Fail before the long extraction on classes too small to split (checked again after it,
    # when unreadable images may have made a class smaller).
    proposed_split(images.labels, images.class_names, unseen_ids, options.test_seen_fraction,
                   options.seed)
    distributed = parallel.init_from_env()
    rank, world_size = parallel.rank(), parallel.world_size_from_env() if distributed else 1
    device = _device(options.device)
    semantics = build_class_semantics(images.class_names, options.attributes,
                                      options.descriptions, options.prompt,
                                      options.text_encoder, str(device))
    backbone = load_backbone(options.backbone, device, options.image_size)
    precision = precision_for(device)
    cache = FeatureCache(Path(options.cache_dir or default_cache_dir())
                         / backbone.cache_key(precision), backbone.feature_dim)
    workers = default_workers() if options.workers is None else options.workers
    batch_size = options.batch_size or (128 if device.type == "cuda" else 16)
    result = extract_to_cache(images.paths(), backbone, cache, device, batch_size,
                              workers, rank, world_size, progress=options.progress)
    keys: dict[int, bytes] = {}
    errors: dict[int, str] = {}
    for shard in _gather((result.keys, result.errors)):
        keys.update(shard[0])
        errors.update(shard[1])
    if distributed:
        import torch.distributed as dist

        dist.barrier()  # every rank's chunks are on disk
    skipped = np.array(sorted(errors), np.int64)
    if skipped.size:
        first = ", ".join(f"{images.files[i]} ({errors[i]})" for i in skipped[:SHOWN_SKIPS])
        if options.strict:
            raise input_error(str(images.root / images.files[skipped[0]]), None,
                              "a readable image (--strict)",
                              f"{skipped.size} unreadable images, first: {first}")
        if rank == 0:
            print(f"unseen: skipped {skipped.size} unreadable image(s), first: {first}",
                  file=sys.stderr)
    kept = np.setdiff1d(np.arange(len(images.files)), skipped)
    labels = images.labels[kept]
    trainval, test_seen, test_unseen = proposed_split(labels, images.class_names, unseen_ids,
                                                      options.test_seen_fraction, options.seed)
    if rank != 0:
        return None
    features = cache.lookup([keys[i] for i in kept])
    files = [images.files[i] for i in kept]
    benchmark = Benchmark(
        name=out_dir.name, features=features, labels=labels, semantics=semantics.att,
        class_names=list(images.class_names), trainval_idx=trainval, test_seen_idx=test_seen,
        test_unseen_idx=test_unseen, image_files=files, original_semantics=semantics.original,
        attribute_names=(semantics.attribute_names if len(semantics.blocks) == 1 else None))
    manifest = {
        "format": MANIFEST_FORMAT,
        "features_file": f"{backbone.slug()}.mat",
        "feature_dim": backbone.feature_dim,
        "backbone": {**backbone.identity(), "precision": precision},
        "semantics": {"blocks": semantics.blocks, "combine": semantics.combine,
                      "dim": int(semantics.att.shape[1])},
        "text_encoder": semantics.encoder,
        "attribute_names": semantics.attribute_names,
        "class_names": list(images.class_names),
        "class_descriptions": semantics.descriptions,
        "image_root": str(images.root),
        "images_source": str(Path(images.source).expanduser().absolute()),
        "images": len(files),
        "split": {"seed": options.seed,
                  "unseen": [images.class_names[c] for c in unseen_ids],
                  "test_seen_fraction": options.test_seen_fraction, "method": SPLIT_METHOD,
                  "trainval": int(trainval.size), "test_seen": int(test_seen.size),
                  "test_unseen": int(test_unseen.size)},
        "skipped_images": [images.files[i] for i in skipped],
        "skipped_reasons": [errors[i] for i in skipped],
        "command": options.command,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "unseen_version": _version(),
    }
    _write_atomically(out_dir, benchmark, manifest, options.overwrite)
    return out_dir


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("unseen")
    except PackageNotFoundError:
        return "unknown"


def _write_atomically(out_dir: Path, benchmark: Benchmark, manifest: dict,
                      overwrite: bool) -> None:
    from unseen.data.xlsa17 import write_xlsa17
    from unseen.io import atomic_write_json

    partial = Path(tempfile.mkdtemp(prefix=f"{out_dir.name}.partial-", dir=out_dir.parent))
    umask = os.umask(0)
    os.umask(umask)
    try:
        partial.chmod(0o777 & ~umask)  # mkdtemp's 0700 is for the unfinished folder only
        big = benchmark.features.nbytes >= V5_LIMIT_BYTES
        write_xlsa17(benchmark, partial, version="v7.3" if big else "v5",
                     features_file=manifest["features_file"], features_dtype=np.float32)
        atomic_write_json(partial / MANIFEST_FILE, manifest)
        if out_dir.exists():
            if not overwrite:
                raise input_error(str(out_dir), None, "a new output folder (or --overwrite)",
                                  "it appeared during the build")
            trash = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
            os.replace(out_dir, trash / "old")
            shutil.rmtree(trash, ignore_errors=True)
        os.replace(partial, out_dir)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def run_build(options: BuildOptions) -> Path | None:
    """`build_dataset`, then tear the process group down (torchrun builds)."""
    import torch.distributed as dist

    try:
        return build_dataset(options)
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()

