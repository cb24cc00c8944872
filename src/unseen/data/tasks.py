"""What one training run sees: a class partition, training rows and evaluation rows.

Two tasks come from every benchmark:
- the **test task**: train on trainval, evaluate on test_seen + test_unseen;
- the **validation task**, built from trainval alone: some seen classes play the unseen
  classes (class-disjoint) and a held-out slice of the remaining seen classes' images plays
  test_seen. The clean protocol makes every choice (epoch, classifier epoch, gamma) here.

Features are preprocessed per task with statistics fitted on that task's training rows only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from unseen.data.benchmark import Benchmark
from unseen.errors import UnseenInputError


@dataclass(frozen=True)
class Preprocessing:
    """How features and semantics are prepared, recorded in every run's resolved config."""

    # "minmax" (fit on the task's training rows, as f-CLSWGAN/CE-GZSL) or "none"
    features: str = "minmax"
    semantics: str = "as_stored"  # "as_stored" or "l2" (unit L2 norm per class)

    def __post_init__(self) -> None:
        if self.features not in ("minmax", "none"):
            raise UnseenInputError(f"option 'feature_preprocessing': expected minmax or none, "
                                   f"found {self.features!r}")
        if self.semantics not in ("as_stored", "l2"):
            raise UnseenInputError(f"option 'semantic_preprocessing': expected as_stored or l2, "
                                   f"found {self.semantics!r}")


@dataclass(frozen=True)
class ValidationSplit:
    """Sizes of the clean validation split carved out of trainval."""

    unseen_class_fraction: float = 0.2  # share of seen classes that play unseen classes
    seen_image_fraction: float = 0.2  # share of each remaining seen class held out as "test_seen"
    seed: int = 0  # fixed, so that every training seed shares the same validation split
    # Which of several class splits (the xlsa17 protocol has three): fold 0 is the split above;
    # fold k > 0 draws its pseudo-unseen classes among those no earlier fold used, while enough
    # remain, then starts over.
    fold: int = 0


@dataclass(frozen=True)
class GZSLTask:
    """A class partition with training rows and evaluation rows, all global indices."""

    benchmark: Benchmark
    name: str  # "validation" or "test"
    features: np.ndarray  # float32 [N, D]: all rows, preprocessed with train-row statistics
    semantics: np.ndarray  # float32 [C, A]
    train_idx: np.ndarray
    eval_seen_idx: np.ndarray
    eval_unseen_idx: np.ndarray
    seen_classes: np.ndarray  # sorted global ids
    unseen_classes: np.ndarray  # sorted global ids
    notes: dict = field(default_factory=dict)

    @property
    def classes(self) -> np.ndarray:
        """The task's label space: sorted global ids of seen and unseen classes."""
        return np.union1d(self.seen_classes, self.unseen_classes)

    @property
    def is_seen_class(self) -> np.ndarray:
        """bool [K] over `classes`: which columns of a score matrix are seen classes."""
        return np.isin(self.classes, self.seen_classes)

    @property
    def eval_idx(self) -> np.ndarray:
        """Evaluation rows: the seen part first, then the unseen part."""
        return np.concatenate([self.eval_seen_idx, self.eval_unseen_idx])

    def to_task_labels(self, global_labels: np.ndarray) -> np.ndarray:
        """Map global class ids to positions in `classes` (raises if a label is outside)."""
        positions = np.searchsorted(self.classes, global_labels)
        positions = np.clip(positions, 0, self.classes.size - 1)
        if not np.array_equal(self.classes[positions], global_labels):
            raise ValueError("labels outside the task's classes")
        return positions

    def labels_of(self, idx: np.ndarray) -> np.ndarray:
        """Task-local labels (positions in `classes`) of the given rows."""
        return self.to_task_labels(self.benchmark.labels[idx])


def make_test_task(benchmark: Benchmark,
                   preprocessing: Preprocessing = Preprocessing()) -> GZSLTask:
    """The standard proposed-split task: train on trainval, evaluate on the test splits."""
    return _build(benchmark, "test", benchmark.trainval_idx, benchmark.test_seen_idx,
                  benchmark.test_unseen_idx, preprocessing, {})


def make_validation_task(benchmark: Benchmark, preprocessing: Preprocessing = Preprocessing(),
                         split: ValidationSplit = ValidationSplit()) -> GZSLTask:
    """A class-disjoint validation task built from trainval only (never from test images)."""
    rng = np.random.default_rng(split.seed)
    trainval = benchmark.trainval_idx
    seen = benchmark.seen_classes
    n_pseudo_unseen = int(round(split.unseen_class_fraction * seen.size))
    # At least two pseudo-unseen classes where possible: one class makes U a single accuracy.
    n_pseudo_unseen = min(max(n_pseudo_unseen, 2), seen.size - 1)
    if seen.size < 2:
        raise UnseenInputError(f"benchmark '{benchmark.name}': a validation split needs at least "
                               f"2 seen classes, found {seen.size}")
    pseudo_unseen = np.sort(rng.choice(seen, size=n_pseudo_unseen, replace=False))
    if split.fold > 0:
        pseudo_unseen = _later_fold(seen, pseudo_unseen, split.seed, split.fold)
    pseudo_seen = np.setdiff1d(seen, pseudo_unseen)
    trainval_labels = benchmark.labels[trainval]
    unseen_rows = trainval[np.isin(trainval_labels, pseudo_unseen)]
    # Hold out a slice of every pseudo-seen class, keeping at least one training image each.
    order = rng.permutation(trainval.size)
    shuffled, shuffled_labels = trainval[order], trainval_labels[order]
    held_out = []
    for_training = []
    sort = np.argsort(shuffled_labels, kind="stable")
    grouped, grouped_labels = shuffled[sort], shuffled_labels[sort]
    starts = np.searchsorted(grouped_labels, pseudo_seen, side="left")
    ends = np.searchsorted(grouped_labels, pseudo_seen, side="right")
    for start, end in zip(starts, ends, strict=True):  # one slice per class: C_s iterations
        count = end - start
        # At least one held-out image per class that has two (SUN-like data has few per class).
        n_held = min(max(int(round(split.seen_image_fraction * count)), 1), count - 1)
        held_out.append(grouped[start:start + n_held])
        for_training.append(grouped[start + n_held:end])
    train_idx = np.sort(np.concatenate(for_training))
    eval_seen = np.sort(np.concatenate(held_out)) if held_out else np.empty(0, np.int64)
    if eval_seen.size == 0:
        raise UnseenInputError(
            f"benchmark '{benchmark.name}': a validation split needs seen classes with at least "
            "2 trainval images (one to train, one to validate), found at most 1 per class; use "
            "--protocol paper or a data set with more images per class")
    notes = {"pseudo_unseen_classes": pseudo_unseen.tolist(), "split": split.__dict__}
    return _build(benchmark, "validation", train_idx, eval_seen, np.sort(unseen_rows),
                  preprocessing, notes, seen=pseudo_seen, unseen=pseudo_unseen)


def _later_fold(seen: np.ndarray, first_fold: np.ndarray, seed: int, fold: int) -> np.ndarray:
    """The pseudo-unseen classes of fold `fold` > 0, each fold drawn by its own generator."""
    size = first_fold.size
    used, classes = first_fold, first_fold
    for k in range(1, fold + 1):
        pool = np.setdiff1d(seen, used)
        if pool.size < size:  # every class used: start over, avoiding the last fold
            used, pool = np.empty(0, seen.dtype), np.setdiff1d(seen, classes)
            if pool.size < size:
                pool = seen
        classes = np.sort(np.random.default_rng([seed, k]).choice(pool, size=size, replace=False))
        used = np.union1d(used, classes)
    return classes


def _build(benchmark: Benchmark, name: str, train_idx: np.ndarray, eval_seen: np.ndarray,
           eval_unseen: np.ndarray, preprocessing: Preprocessing, notes: dict,
           seen: np.ndarray | None = None, unseen: np.ndarray | None = None) -> GZSLTask:
    features = benchmark.features
    if preprocessing.features == "minmax":
        scaler = fit_minmax(features[train_idx])
        features = apply_minmax(features, scaler)
        notes = {**notes, "minmax": scaler}
    semantics = benchmark.semantics
    if preprocessing.semantics == "l2":
        norms = np.linalg.norm(semantics, axis=1, keepdims=True)
        semantics = (semantics / np.maximum(norms, 1e-12)).astype(np.float32)
    return GZSLTask(
        benchmark=benchmark, name=name, features=features, semantics=semantics,
        train_idx=np.asarray(train_idx, np.int64), eval_seen_idx=np.asarray(eval_seen, np.int64),
        eval_unseen_idx=np.asarray(eval_unseen, np.int64),
        seen_classes=benchmark.seen_classes if seen is None else seen,
        unseen_classes=benchmark.unseen_classes if unseen is None else unseen,
        notes={**notes, "preprocessing": dict(preprocessing.__dict__)},
    )


def fit_minmax(fit_features: np.ndarray) -> dict[str, np.ndarray | float]:
    """MinMax statistics of the training rows, as sklearn's MinMaxScaler in f-CLSWGAN/CE-GZSL,
    plus the reference's extra division by the scaled maximum (1.0 unless all dims constant)."""
    low = fit_features.min(axis=0)
    span = fit_features.max(axis=0) - low
    span[span == 0] = 1.0
    top = float(((fit_features - low) / span).max()) if fit_features.size else 1.0
    return {"low": low.astype(np.float32), "span": span.astype(np.float32),
            "top": top if top > 0 else 1.0}


def apply_minmax(features: np.ndarray, scaler: dict) -> np.ndarray:
    """Apply `fit_minmax` statistics; rows outside the fit set may leave [0, 1]."""
    return ((features - scaler["low"]) / scaler["span"] / scaler["top"]).astype(np.float32)


def transform_features(task: GZSLTask, raw_features: np.ndarray) -> np.ndarray:
    """Preprocess new raw features exactly like the task's own rows (for `predict`)."""
    scaler = task.notes.get("minmax")
    return apply_minmax(raw_features, scaler) if scaler else raw_features.astype(np.float32)
