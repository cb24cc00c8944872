"""Tasks: the validation split is class-disjoint, built from trainval only, and never empty."""

from __future__ import annotations

import numpy as np
import pytest

from unseen.data.benchmark import Benchmark
from unseen.data.synthetic import synthetic_benchmark
from unseen.data.tasks import (
    ValidationSplit,
    apply_minmax,
    fit_minmax,
    make_test_task,
    make_validation_task,
)
from unseen.errors import UnseenInputError


def test_validation_task_uses_trainval_only_and_is_class_disjoint():
    benchmark = synthetic_benchmark(num_classes=15, num_unseen=4, images_per_class=20)
    task = make_validation_task(benchmark, split=ValidationSplit(0.25, 0.2, seed=3))
    used = np.concatenate([task.train_idx, task.eval_seen_idx, task.eval_unseen_idx])
    assert np.isin(used, benchmark.trainval_idx).all()
    assert np.unique(used).size == used.size
    assert not np.intersect1d(task.seen_classes, task.unseen_classes).size
    assert np.isin(benchmark.labels[task.eval_unseen_idx], task.unseen_classes).all()
    assert np.isin(benchmark.labels[task.train_idx], task.seen_classes).all()
    # Every pseudo-seen class keeps training images and contributes validation images.
    assert set(benchmark.labels[task.eval_seen_idx]) == set(task.seen_classes)
    assert task.unseen_classes.size == round(0.25 * benchmark.seen_classes.size)


def test_validation_folds_use_disjoint_pseudo_unseen_classes_while_they_last():
    # 7 seen classes, 2 pseudo-unseen per fold (as on the embedded `animals` benchmark).
    benchmark = synthetic_benchmark(num_classes=10, num_unseen=3, images_per_class=20)
    assert make_validation_task(benchmark).unseen_classes.tolist() == make_validation_task(
        benchmark, split=ValidationSplit(fold=0)).unseen_classes.tolist()
    folds = [make_validation_task(benchmark, split=ValidationSplit(fold=k)).unseen_classes
             for k in range(4)]
    assert all(fold.size == 2 for fold in folds)
    assert np.unique(np.concatenate(folds[:3])).size == 6  # the first three are disjoint
    assert set(folds[3]).isdisjoint(folds[2])  # the fourth starts over, avoiding the third
    assert all(np.isin(fold, benchmark.seen_classes).all() for fold in folds)
    for k, fold in enumerate(folds):
        task = make_validation_task(benchmark, split=ValidationSplit(fold=k))
        assert not np.isin(benchmark.labels[task.train_idx], fold).any()


def test_two_images_per_class_still_gives_a_validation_seen_split():
    benchmark = synthetic_benchmark(num_classes=12, num_unseen=3, images_per_class=2,
                                    test_seen_fraction=0.0)
    task = make_validation_task(benchmark)
    assert task.eval_seen_idx.size == task.seen_classes.size  # one held out per class


def test_single_image_classes_are_refused_with_a_clear_message():
    base = synthetic_benchmark(num_classes=8, num_unseen=2, images_per_class=1,
                               test_seen_fraction=0.0)
    with pytest.raises(UnseenInputError, match="at least 2 trainval images"):
        make_validation_task(base)


def test_minmax_is_fitted_on_training_rows_only():
    benchmark = synthetic_benchmark()
    task = make_test_task(benchmark)
    train = task.features[task.train_idx]
    assert train.min() == pytest.approx(0.0) and train.max() == pytest.approx(1.0)
    scaler = fit_minmax(benchmark.features[benchmark.trainval_idx])
    np.testing.assert_allclose(apply_minmax(benchmark.features, scaler), task.features)
    assert isinstance(benchmark, Benchmark)
