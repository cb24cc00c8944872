"""Read and write the xlsa17 layout (`res101.mat` + `att_splits.mat` / `sent_splits.mat`).

`load_xlsa17` turns the 1-based MATLAB files into a validated 0-based `Benchmark`. Every
problem is reported as an `UnseenInputError` naming file, field, what was expected and what
was found, before numpy can fail on it. `find_problems` runs the same checks and returns all
their messages (for `unseen data check`).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from unseen.data.benchmark import Benchmark
from unseen.data.matfile import load_mat, mat_version, save_mat_v5, save_mat_v73
from unseen.errors import UnseenInputError, input_error

FEATURES_FILE = "res101.mat"
SPLIT_FIELDS = ("trainval_loc", "test_seen_loc", "test_unseen_loc")
REFERENCE_FIELDS = ("train_loc", "val_loc")
SIDE_INFORMATION = ("att", "sent")


def splits_file(side_information: str) -> str:
    """`att_splits.mat` or `sent_splits.mat`."""
    if side_information not in SIDE_INFORMATION:
        raise UnseenInputError(f"option 'side_information': expected one of "
                               f"{', '.join(SIDE_INFORMATION)}, found {side_information!r}")
    return f"{side_information}_splits.mat"


@dataclass
class _Parsed:
    """What the checks could establish; None where a check failed."""

    labels: np.ndarray | None = None  # int64 [N], 1-based as stored
    num_images: int | None = None
    features: np.ndarray | None = None  # [D, N] as stored
    att: np.ndarray | None = None  # [A, C] as stored
    locs: dict[str, np.ndarray] | None = None  # 1-based int64 vectors


def _numeric(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.dtype.kind in "biuf"


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} array of shape {value.shape}"
    if isinstance(value, list):
        return f"a cell array of {len(value)} elements"
    return f"a {type(value).__name__}"


def _vector(value: Any) -> bool:
    return _numeric(value) and value.ndim <= 2 and (value.ndim < 2 or 1 in value.shape)


def _integral(values: np.ndarray) -> bool:
    if values.dtype.kind in "biu":
        return True
    return bool(np.all(np.isfinite(values) & (values == np.round(values))))


def _first_bad(array: np.ndarray) -> str:
    """Position and value of the first NaN/Inf, for an error message (only on failure)."""
    position = np.argwhere(~np.isfinite(array))[0]
    return f"{array[tuple(position)]} at (row {position[0] + 1}, column {position[1] + 1})"


def _check_res101(res: dict, path: Path, parsed: _Parsed) -> list[str]:
    problems: list[str] = []
    source = str(path)
    labels = res.get("labels")
    if labels is None:
        problems.append(str(input_error(source, "labels", "an N x 1 vector of 1-based class ids",
                                        "no such field")))
    elif not _vector(labels) or labels.size == 0:
        problems.append(str(input_error(source, "labels", "an N x 1 vector of 1-based class ids",
                                        _describe(labels))))
    elif not _integral(labels):
        problems.append(str(input_error(source, "labels", "integer class ids",
                                        "non-integer values")))
    elif labels.min() < 1:
        problems.append(str(input_error(
            source, "labels", "1-based class ids (MATLAB indexing, 1..C)",
            f"minimum {labels.min():g}" + (" (0-based labels?)" if labels.min() == 0 else ""))))
    elif labels.max() > labels.size:  # more classes than images: a broken file, not a data set
        problems.append(str(input_error(source, "labels", f"class ids in 1..C with C at most "
                                        f"N = {labels.size} images", f"maximum {labels.max():g}")))
    else:
        parsed.labels = labels.ravel().astype(np.int64)
        parsed.num_images = int(parsed.labels.size)

    features = res.get("features")
    n = parsed.num_images
    expected = f"a D x N numeric matrix (N = {n} images)" if n else "a D x N numeric matrix"
    if features is None:
        problems.append(str(input_error(source, "features", expected, "no such field")))
    elif not _numeric(features) or features.ndim != 2:
        problems.append(str(input_error(source, "features", expected, _describe(features))))
    elif n is not None and features.shape[1] != n:
        found = f"shape {features.shape[0]} x {features.shape[1]}"
        if features.shape[0] == n:
            found += " (transposed: N x D; xlsa17 stores one column per image)"
        problems.append(str(input_error(source, "features", expected, found)))
    elif not np.isfinite(features).all():
        problems.append(str(input_error(source, "features", "finite values",
                                        f"NaN or Inf, first {_first_bad(features)}")))
    else:
        parsed.features = features

    image_files = res.get("image_files")
    if image_files is not None and n is not None:
        if not isinstance(image_files, list) or len(image_files) != n:
            problems.append(str(input_error(source, "image_files",
                                            f"a cell array of {n} file names",
                                            _describe(image_files))))
    return problems


def _check_splits(splits: dict, path: Path, parsed: _Parsed) -> list[str]:
    problems: list[str] = []
    source = str(path)
    att = splits.get("att")
    if att is None:
        problems.append(str(input_error(source, "att", "an A x C matrix of class semantics",
                                        "no such field")))
    elif not _numeric(att) or att.ndim != 2:
        problems.append(str(input_error(source, "att", "an A x C matrix of class semantics",
                                        _describe(att))))
    elif not np.isfinite(att).all():
        problems.append(str(input_error(source, "att", "finite values",
                                        f"NaN or Inf, first {_first_bad(att)}")))
    else:
        parsed.att = att
        classes = att.shape[1]
        names = splits.get("allclasses_names")
        if names is not None and (not isinstance(names, list) or len(names) != classes):
            problems.append(str(input_error(source, "allclasses_names",
                                            f"a cell array of {classes} class names "
                                            "(one per 'att' column)", _describe(names))))
        original = splits.get("original_att")
        if original is not None and (not _numeric(original) or original.shape != att.shape):
            problems.append(str(input_error(source, "original_att",
                                            f"a matrix shaped like 'att' {att.shape}",
                                            _describe(original))))
        attribute_names = splits.get("attri_name")
        if attribute_names is not None and (not isinstance(attribute_names, list)
                                            or len(attribute_names) != att.shape[0]):
            problems.append(str(input_error(source, "attri_name",
                                            f"a cell array of {att.shape[0]} attribute names",
                                            _describe(attribute_names))))

    n = parsed.num_images
    locs: dict[str, np.ndarray] = {}
    for name in SPLIT_FIELDS:
        value = splits.get(name)
        expected = "a vector of 1-based image indices into res101.mat" + (
            f" (1..{n})" if n else "")
        if value is None:
            problems.append(str(input_error(source, name, expected, "no such field")))
        elif not _vector(value) or not _integral(value):
            problems.append(str(input_error(source, name, expected, _describe(value))))
        elif value.size and value.min() < 1:
            problems.append(str(input_error(
                source, name, expected + "; they are 1-based",
                f"index {value.min():g}" + (" (0-based indices?)" if value.min() == 0 else ""))))
        elif n is not None and value.size and value.max() > n:
            problems.append(str(input_error(
                source, name, expected + "; they are 1-based",
                f"index {value.max():g} above N = {n} images in {FEATURES_FILE}")))
        else:
            loc = value.ravel().astype(np.int64)
            repeats = loc.size - np.unique(loc).size
            if repeats:
                problems.append(str(input_error(source, name, "each image at most once",
                                                f"{repeats} repeated indices")))
            else:
                locs[name] = loc
    for i, first in enumerate(SPLIT_FIELDS):
        for second in SPLIT_FIELDS[i + 1:]:
            if first in locs and second in locs:
                shared = np.intersect1d(locs[first], locs[second])
                if shared.size:
                    problems.append(str(input_error(
                        source, f"{first}/{second}", "disjoint image sets",
                        f"{shared.size} images in both (first: index {shared[0]})")))
    if len(locs) == len(SPLIT_FIELDS) and not problems:
        parsed.locs = locs
    return problems


def _check_classes(res_path: Path, splits_path: Path, parsed: _Parsed) -> list[str]:
    """Checks that need both files: label range, one image per class, split class structure."""
    if parsed.labels is None or parsed.att is None:
        return []
    labels, classes = parsed.labels, parsed.att.shape[1]
    source = str(res_path)
    if labels.max() > classes:
        return [str(input_error(source, "labels",
                                f"class ids in 1..{classes} ({classes} columns of 'att' in "
                                f"{splits_path})", f"{labels.min()}..{labels.max()}"))]
    if labels.max() < classes:
        return [str(input_error(str(splits_path), "att",
                                f"one column per class: {labels.max()} classes (the largest "
                                f"label in {res_path})", f"{classes} columns"))]
    counts = np.bincount(labels, minlength=classes + 1)[1:]
    empty = np.flatnonzero(counts == 0) + 1
    if empty.size:
        return [str(input_error(source, "labels", f"at least one image for each of the "
                                f"{classes} classes", f"{empty.size} classes without any image "
                                f"(1-based: {empty[:10].tolist()})"))]
    if parsed.locs is None:
        return []
    trainval_classes = np.unique(labels[parsed.locs["trainval_loc"] - 1])
    unseen_classes = np.unique(labels[parsed.locs["test_unseen_loc"] - 1])
    seen_test_classes = np.unique(labels[parsed.locs["test_seen_loc"] - 1])
    problems = []
    both = np.intersect1d(trainval_classes, unseen_classes)
    if both.size:
        problems.append(str(input_error(str(splits_path), "test_unseen_loc",
                                        "images of classes absent from trainval_loc",
                                        f"{both.size} classes with trainval images "
                                        f"(1-based: {both[:10].tolist()})")))
    stray = np.setdiff1d(seen_test_classes, trainval_classes)
    if stray.size:
        problems.append(str(input_error(str(splits_path), "test_seen_loc",
                                        "images of classes that have trainval images",
                                        f"{stray.size} classes without trainval images "
                                        f"(1-based: {stray[:10].tolist()})")))
    return problems


def _paths(directory: Path, side_information: str) -> tuple[Path, Path]:
    """The features file (`res101.mat`, or the one a built set's `unseen.json` names) and the
    splits file."""
    from unseen.data.manifest import features_file_name

    return (directory / features_file_name(directory, FEATURES_FILE),
            directory / splits_file(side_information))


def _run_checks(directory: Path, side_information: str,
                collect: bool) -> tuple[list[str], _Parsed, dict, dict]:
    """Load both files and run every check; stop at the first problem unless `collect`."""
    problems: list[str] = []
    parsed = _Parsed()
    try:
        res_path, splits_path = _paths(directory, side_information)
    except UnseenInputError as exc:  # a broken unseen.json
        return [str(exc)], parsed, {}, {}
    res: dict = {}
    splits: dict = {}
    for path in (res_path, splits_path):
        if not path.is_file():
            hint = "" if path.parent.is_dir() else f" (directory {path.parent} does not exist)"
            problems.append(str(input_error(str(path), None, f"the xlsa17 file {path.name}",
                                            "no such file" + hint)))
    if problems and not collect:
        return problems, parsed, res, splits
    for path in (res_path, splits_path):
        if path.is_file():
            try:
                loaded = load_mat(path)
            except UnseenInputError as exc:
                problems.append(str(exc))
                continue
            if path == res_path:
                res = loaded
            else:
                splits = loaded
    if problems and not collect:
        return problems, parsed, res, splits
    if res:
        problems += _check_res101(res, res_path, parsed)
    if problems and not collect:
        return problems, parsed, res, splits
    if splits:
        problems += _check_splits(splits, splits_path, parsed)
    if problems and not collect:
        return problems, parsed, res, splits
    problems += _check_classes(res_path, splits_path, parsed)
    return problems, parsed, res, splits


def find_problems(directory: str | os.PathLike, side_information: str = "att") -> list[str]:
    """Every problem `load_xlsa17` would refuse, as messages (empty when the files are good).

    Checks that depend on a failed one (e.g. loc ranges without valid labels) are skipped.
    """
    return _run_checks(Path(directory), side_information, collect=True)[0]


def sha256_of(path: str | os.PathLike) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def load_xlsa17(directory: str | os.PathLike, name: str | None = None,
                side_information: str = "att") -> Benchmark:
    """Load `directory/res101.mat` + `directory/{att,sent}_splits.mat` as a 0-based `Benchmark`.

    `train_loc`/`val_loc` are ignored on purpose (see `leakage_report`).
    """
    directory = Path(directory)
    problems, parsed, res, splits = _run_checks(directory, side_information, collect=False)
    if problems:
        raise UnseenInputError(problems[0])
    res_path, splits_path = _paths(directory, side_information)
    assert parsed.features is not None and parsed.labels is not None
    assert parsed.att is not None and parsed.locs is not None
    classes = parsed.att.shape[1]
    class_names = (splits.get("allclasses_names")
                   or [f"class_{c:03d}" for c in range(1, classes + 1)])
    original = splits.get("original_att")
    ignored = [field for field in REFERENCE_FIELDS if field in splits]
    source = {
        "directory": str(directory.resolve()),
        "format": "xlsa17",
        "files": {path.name: {"path": str(path.resolve()), "sha256": sha256_of(path),
                              "bytes": path.stat().st_size, "mat_version": mat_version(path)}
                  for path in (res_path, splits_path)},
        "ignored_fields": ignored,
    }
    from unseen.data.manifest import read_manifest

    manifest = read_manifest(directory)
    if manifest is not None:  # a set built by `unseen data build`: images, encoders, split
        source.update(format="unseen-dataset", manifest=manifest,
                      image_root=manifest.get("image_root"))
    if ignored:
        leakage = leakage_report(splits)
        found = (leakage.describe() if leakage.leaks
                 else "here they are disjoint from test_seen_loc and test_unseen_loc")
        source["note"] = (f"train_loc/val_loc ignored (validation is built from trainval_loc): "
                          f"{found}")
    try:
        return Benchmark(
            name=name or directory.name,
            # One transposing copy straight to float32: [D, N] float64 -> [N, D] float32.
            features=np.ascontiguousarray(parsed.features.T, dtype=np.float32),
            labels=parsed.labels - 1,
            semantics=np.ascontiguousarray(parsed.att.T, dtype=np.float32),
            class_names=[str(c) for c in class_names],
            trainval_idx=parsed.locs["trainval_loc"] - 1,
            test_seen_idx=parsed.locs["test_seen_loc"] - 1,
            test_unseen_idx=parsed.locs["test_unseen_loc"] - 1,
            image_files=res.get("image_files"),
            original_semantics=(None if original is None
                                else np.ascontiguousarray(original.T, dtype=np.float32)),
            attribute_names=splits.get("attri_name"),
            side_information=side_information,
            source=source,
        )
    except UnseenInputError as exc:  # float32 overflow and the like; name the files
        raise UnseenInputError(f"{res_path} + {splits_path}: {exc}") from exc


def write_xlsa17(benchmark: Benchmark, directory: str | os.PathLike, version: str = "v5",
                 extra_split_fields: dict[str, np.ndarray] | None = None,
                 features_file: str = FEATURES_FILE,
                 features_dtype: type = np.float64) -> Path:
    """Write `benchmark` in the exact xlsa17 layout (1-based, D x N float64 features).

    The splits file is `att_splits.mat` or `sent_splits.mat` after
    `benchmark.side_information`. `extra_split_fields` (e.g. 1-based `train_loc`/`val_loc`)
    are written into the splits file as given. `features_file` names the features file (a
    built data set names it for its backbone; its `unseen.json` tells the loader).
    """
    if version not in ("v5", "v7.3"):
        raise UnseenInputError(f"option 'version': expected v5 or v7.3, found {version!r}")
    save = save_mat_v5 if version == "v5" else save_mat_v73
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    loc_dtype = np.uint16 if benchmark.num_images < 2**16 else np.uint32
    res: dict[str, Any] = {
        "features": np.ascontiguousarray(benchmark.features.T, dtype=features_dtype),
        "labels": (benchmark.labels + 1).astype(np.float64).reshape(-1, 1),
    }
    if benchmark.image_files is not None:
        res["image_files"] = list(benchmark.image_files)
    splits: dict[str, Any] = {
        "att": np.ascontiguousarray(benchmark.semantics.T, dtype=np.float64),
        "allclasses_names": list(benchmark.class_names),
    }
    if benchmark.original_semantics is not None:
        splits["original_att"] = np.ascontiguousarray(benchmark.original_semantics.T,
                                                      dtype=np.float64)
    if benchmark.attribute_names is not None:
        splits["attri_name"] = list(benchmark.attribute_names)
    for field, idx in (("trainval_loc", benchmark.trainval_idx),
                       ("test_seen_loc", benchmark.test_seen_idx),
                       ("test_unseen_loc", benchmark.test_unseen_idx)):
        splits[field] = (idx + 1).astype(loc_dtype).reshape(-1, 1)
    splits.update(extra_split_fields or {})
    save(directory / features_file, res)
    save(directory / splits_file(benchmark.side_information), splits)
    return directory


@dataclass(frozen=True)
class LeakageReport:
    """How the v1 `train_loc`/`val_loc` fields overlap the test splits (image counts)."""

    train: int
    val: int
    trainval: int
    train_test_seen: int
    val_test_seen: int
    train_test_unseen: int
    val_test_unseen: int
    outside_trainval: int  # images of train_loc ∪ val_loc that are not in trainval_loc

    @property
    def leaks(self) -> bool:
        return bool(self.train_test_seen or self.val_test_seen or self.train_test_unseen
                    or self.val_test_unseen)

    def describe(self) -> str:
        return (f"train_loc ({self.train} images) shares {self.train_test_seen} with "
                f"test_seen_loc and {self.train_test_unseen} with test_unseen_loc; val_loc "
                f"({self.val}) shares {self.val_test_seen} with test_seen_loc and "
                f"{self.val_test_unseen} with test_unseen_loc; {self.outside_trainval} images "
                f"of train_loc ∪ val_loc lie outside trainval_loc ({self.trainval})")


def _loc(splits: dict, field: str, source: str) -> np.ndarray:
    value = splits.get(field)
    if value is None:
        raise input_error(source, field, "a vector of 1-based image indices", "no such field")
    if not _vector(value) or not _integral(value):
        raise input_error(source, field, "a vector of 1-based image indices", _describe(value))
    if value.size and value.min() < 1:
        raise input_error(source, field, "1-based image indices", f"index {value.min():g}")
    return value.ravel().astype(np.int64)


def leakage_report(att_splits: str | os.PathLike | dict) -> LeakageReport | None:
    """Measure how `train_loc`/`val_loc` overlap the test splits; None when the file has neither.

    `att_splits` is a path to `att_splits.mat`/`sent_splits.mat` or its loaded dict.
    """
    source = "splits" if isinstance(att_splits, dict) else str(att_splits)
    splits = att_splits if isinstance(att_splits, dict) else load_mat(att_splits)
    if not any(field in splits for field in REFERENCE_FIELDS):
        return None
    empty = np.zeros(0, dtype=np.int64)
    train = _loc(splits, "train_loc", source) if "train_loc" in splits else empty
    val = _loc(splits, "val_loc", source) if "val_loc" in splits else empty
    trainval = _loc(splits, "trainval_loc", source)
    test_seen = _loc(splits, "test_seen_loc", source)
    test_unseen = _loc(splits, "test_unseen_loc", source)

    def shared(a: np.ndarray, b: np.ndarray) -> int:
        return int(np.intersect1d(a, b).size)

    return LeakageReport(
        train=int(train.size), val=int(val.size), trainval=int(trainval.size),
        train_test_seen=shared(train, test_seen), val_test_seen=shared(val, test_seen),
        train_test_unseen=shared(train, test_unseen), val_test_unseen=shared(val, test_unseen),
        outside_trainval=int(np.setdiff1d(np.union1d(train, val), trainval).size))
