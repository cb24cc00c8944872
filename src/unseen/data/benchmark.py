"""The validated in-memory form of one GZSL benchmark (xlsa17 layout)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from unseen.errors import UnseenInputError


@dataclass
class Benchmark:
    """One data set, as read from `res101.mat` + `att_splits.mat` (or `sent_splits.mat`).

    Everything is 0-based and global: `labels[i]` is the column of class `i`'s image in
    `semantics`, and the `*_idx` arrays index rows of `features`.
    """

    name: str
    features: np.ndarray  # float32 [N, D], one row per image
    labels: np.ndarray  # int64 [N], global class ids in 0..C-1
    semantics: np.ndarray  # float32 [C, A], one row per class (the `att` matrix transposed)
    class_names: list[str]
    trainval_idx: np.ndarray  # int64, rows of `features`
    test_seen_idx: np.ndarray
    test_unseen_idx: np.ndarray
    image_files: list[str] | None = None  # N stored paths, when the file has them
    original_semantics: np.ndarray | None = None  # `original_att` transposed [C, A], if present
    attribute_names: list[str] | None = None  # A names, when known
    side_information: str = "att"  # "att" or "sent"
    source: dict = field(default_factory=dict)  # file paths, checksums, notes for the run record

    def __post_init__(self) -> None:
        self.validate()

    @property
    def num_classes(self) -> int:
        return int(self.semantics.shape[0])

    @property
    def num_images(self) -> int:
        return int(self.features.shape[0])

    @property
    def seen_classes(self) -> np.ndarray:
        """Sorted global ids of the classes that have trainval images."""
        return np.unique(self.labels[self.trainval_idx])

    @property
    def unseen_classes(self) -> np.ndarray:
        """Sorted global ids of the classes of the test-unseen images."""
        return np.unique(self.labels[self.test_unseen_idx])

    def validate(self) -> None:
        """Check every invariant the methods and the evaluation rely on."""
        where = f"benchmark '{self.name}'"
        n, c = self.features.shape[0], self.semantics.shape[0]
        if self.features.ndim != 2 or self.features.dtype != np.float32:
            raise UnseenInputError(f"{where}: features must be float32 [N, D], got "
                                   f"{self.features.dtype} {self.features.shape}")
        if self.labels.shape != (n,):
            raise UnseenInputError(f"{where}: labels must have shape ({n},), "
                                   f"got {self.labels.shape}")
        if len(self.class_names) != c:
            raise UnseenInputError(f"{where}: {len(self.class_names)} class names for {c} classes")
        if n and (self.labels.min() < 0 or self.labels.max() >= c):
            raise UnseenInputError(f"{where}: labels must lie in 0..{c - 1}, found "
                                   f"{self.labels.min()}..{self.labels.max()}")
        splits = {"trainval": self.trainval_idx, "test_seen": self.test_seen_idx,
                  "test_unseen": self.test_unseen_idx}
        for split_name, idx in splits.items():
            if idx.ndim != 1 or (idx.size and (idx.min() < 0 or idx.max() >= n)):
                raise UnseenInputError(f"{where}: {split_name} indices must lie in 0..{n - 1}")
            if np.unique(idx).size != idx.size:
                raise UnseenInputError(f"{where}: {split_name} indices repeat an image")
        names = list(splits)
        for i, first in enumerate(names):
            for second in names[i + 1:]:
                shared = np.intersect1d(splits[first], splits[second])
                if shared.size:
                    raise UnseenInputError(
                        f"{where}: {first} and {second} share {shared.size} images "
                        f"(first: index {shared[0]}); the splits must be disjoint")
        seen, unseen = self.seen_classes, self.unseen_classes
        if np.intersect1d(seen, unseen).size:
            raise UnseenInputError(f"{where}: classes {np.intersect1d(seen, unseen)[:5].tolist()} "
                                   "have both trainval and test_unseen images")
        stray = np.setdiff1d(np.unique(self.labels[self.test_seen_idx]), seen)
        if stray.size:
            raise UnseenInputError(f"{where}: test_seen holds classes without trainval images: "
                                   f"{stray[:5].tolist()}")
        for array_name, array in (("features", self.features), ("semantics", self.semantics)):
            if not np.isfinite(array).all():
                bad = np.argwhere(~np.isfinite(array))[0].tolist()
                raise UnseenInputError(f"{where}: {array_name} holds NaN or Inf (first at {bad})")

    def summary(self) -> dict:
        """Shapes and split sizes, for `unseen data info` and run records."""
        return {
            "name": self.name,
            "images": self.num_images,
            "feature_dim": int(self.features.shape[1]),
            "classes": self.num_classes,
            "semantic_dim": int(self.semantics.shape[1]),
            "side_information": self.side_information,
            "seen_classes": int(self.seen_classes.size),
            "unseen_classes": int(self.unseen_classes.size),
            "trainval": int(self.trainval_idx.size),
            "test_seen": int(self.test_seen_idx.size),
            "test_unseen": int(self.test_unseen_idx.size),
        }


def benchmark_fingerprint(benchmark: Benchmark) -> str:
    """SHA-256 (hex) of what a run learns from and is scored on: the features, labels and
    semantics (dtype, shape and bytes) and the three split index arrays. Equal arrays give
    equal fingerprints whatever the name or source; one changed value changes it."""
    digest = hashlib.sha256()
    for name in ("features", "labels", "semantics", "trainval_idx", "test_seen_idx",
                 "test_unseen_idx"):
        array = np.ascontiguousarray(getattr(benchmark, name))
        digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()
