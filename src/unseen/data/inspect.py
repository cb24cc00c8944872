"""Human-readable summaries and full problem lists for `unseen data info|check DIR`."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from unseen.data.benchmark import Benchmark
from unseen.data.datasets import known_dataset
from unseen.data.matfile import load_mat
from unseen.data.xlsa17 import SPLIT_FIELDS, find_problems, leakage_report, splits_file
from unseen.errors import UnseenInputError


def _stats(values: np.ndarray) -> str:
    return f"min {values.min():.4g}, mean {values.mean():.4g}, max {values.max():.4g}"


def dataset_info(benchmark: Benchmark) -> str:
    """Shapes, class counts, split sizes, semantic norms and provenance, one fact per line."""
    summary = benchmark.summary()
    per_class = np.bincount(benchmark.labels, minlength=benchmark.num_classes)
    norms = np.linalg.norm(benchmark.semantics.astype(np.float64), axis=1)
    lines = [
        f"{benchmark.name} (side information: {benchmark.side_information})",
        f"images          {summary['images']} x {summary['feature_dim']} features "
        f"({benchmark.features.dtype}; {_stats(benchmark.features)})",
        f"classes         {summary['classes']}: {summary['seen_classes']} seen, "
        f"{summary['unseen_classes']} unseen",
        f"images/class    min {per_class.min()}, median {int(np.median(per_class))}, "
        f"max {per_class.max()}",
        f"semantics       {summary['classes']} x {summary['semantic_dim']} "
        f"({_stats(benchmark.semantics)})",
        f"semantic norms  L2 per class: {_stats(norms)}"
        + (" (unit-normalised)" if np.allclose(norms, 1.0, atol=1e-3) else ""),
        f"splits          trainval {summary['trainval']}, test_seen {summary['test_seen']}, "
        f"test_unseen {summary['test_unseen']}",
    ]
    if benchmark.original_semantics is not None:
        lines.append(f"original att    {_stats(benchmark.original_semantics)}")
    for name, record in benchmark.source.get("files", {}).items():
        lines.append(f"file            {name}: {record.get('bytes', '?')} bytes, "
                     f"{record.get('mat_version', '?')}, sha256 {record.get('sha256', '?')}")
    if benchmark.source.get("ignored_fields"):
        lines.append(f"ignored fields  {', '.join(benchmark.source['ignored_fields'])} "
                     f"({_overlap_of_ignored_fields(benchmark)})")
    return "\n".join(lines)


def _overlap_of_ignored_fields(benchmark: Benchmark) -> str:
    """What train_loc/val_loc share with the test splits, measured (not assumed)."""
    path = Path(benchmark.source["directory"]) / splits_file(benchmark.side_information)
    report = leakage_report(path) if path.is_file() else None
    if report is None:
        return "not measured: the splits file is gone"
    if not report.leaks:
        return "disjoint from test_seen_loc and test_unseen_loc"
    return (f"they overlap the test splits: train_loc shares {report.train_test_seen} images "
            f"with test_seen_loc and {report.train_test_unseen} with test_unseen_loc, val_loc "
            f"{report.val_test_seen} and {report.val_test_unseen}; see `unseen data check`")


def check_dataset(directory: str | os.PathLike, name: str | None = None,
                  side_information: str | None = None) -> list[str]:
    """Every problem with an xlsa17 folder, plus `warning:` lines; empty when all is well.

    Runs all checks rather than stopping at the first. Warnings: the v1 `train_loc`/`val_loc`
    leakage, and split sizes that differ from the Proposed Split of a known data set `name`
    (defaults to the folder's name).
    """
    directory = Path(directory)
    spec = known_dataset(name or directory.name)
    side = side_information or (spec.side_information if spec else "att")
    problems = find_problems(directory, side)
    path = directory / splits_file(side)
    try:
        splits = load_mat(path) if path.is_file() else None
    except UnseenInputError:
        splits = None  # already reported by find_problems
    if splits is None:
        return problems
    try:
        report = leakage_report(splits)
    except UnseenInputError as exc:
        problems.append(str(exc))
        report = None
    if report is not None and report.leaks:
        problems.append(f"warning: {path}: {report.describe()}; unseen ignores train_loc/val_loc "
                        "(use the class-disjoint validation split instead)")
    if spec is not None:
        expected = {"trainval_loc": spec.trainval, "test_seen_loc": spec.test_seen,
                    "test_unseen_loc": spec.test_unseen}
        for field in SPLIT_FIELDS:
            value = splits.get(field)
            if isinstance(value, np.ndarray) and value.size != expected[field]:
                problems.append(f"warning: {path}: field '{field}': expected {expected[field]} "
                                f"images (the {spec.name} Proposed Split), found {value.size}")
    return problems
