"""Is the embedded benchmark learnable? Build it, then run closed-form ESZSL per partition.

ESZSL (Romera-Paredes & Torr, ICML 2015): V = (X X^T + g I)^-1 X Y S^T (S S^T + l I)^-1,
scores x^T V S, on L2-normalised features. (g, l) are chosen on a class-disjoint validation
task carved out of trainval (3 of the 7 seen classes play unseen classes), never on test
images; ZSL top-1 (per-class mean over the 3 unseen classes, chance 33%) is then measured on
the test task.

    .venv/bin/python benchmarks/embedded_feasibility.py                    # animals, full
    .venv/bin/python benchmarks/embedded_feasibility.py --name fashion
    .venv/bin/python benchmarks/embedded_feasibility.py --compare-resolutions 32 64 96 \
        --images-per-class 300                                             # resolution sweep
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from unseen.data.embedded import NUM_PARTITIONS, build_embedded, load_embedded
from unseen.data.tasks import (
    GZSLTask,
    Preprocessing,
    ValidationSplit,
    make_test_task,
    make_validation_task,
)

GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0)


def eszsl_grid(features: np.ndarray, labels: np.ndarray, semantics: np.ndarray,
               grid: tuple[float, ...] = GRID) -> dict[tuple[float, float], np.ndarray]:
    """V [D, A] for every (feature_reg, semantic_reg) in grid x grid.

    features [n, D], labels in 0..z-1, class semantics [z, A]. The Gram matrices are shared.
    """
    x = features.T  # [D, n]
    y = -np.ones((labels.size, semantics.shape[0]))
    y[np.arange(labels.size), labels] = 1.0  # ESZSL's {-1, 1} label matrix
    s = semantics.T  # [A, z]
    gram_x, gram_s, middle = x @ x.T, s @ s.T, x @ y @ s.T
    solutions = {}
    for feature_reg in grid:
        left = np.linalg.solve(gram_x + feature_reg * np.eye(gram_x.shape[0]), middle)
        for semantic_reg in grid:
            right = np.linalg.inv(gram_s + semantic_reg * np.eye(gram_s.shape[0]))
            solutions[feature_reg, semantic_reg] = left @ right
    return solutions


def per_class_top1(predicted: np.ndarray, truth: np.ndarray) -> float:
    classes = np.unique(truth)
    hits = np.bincount(truth, weights=predicted == truth, minlength=classes.max() + 1)
    counts = np.bincount(truth, minlength=classes.max() + 1)
    return float(np.mean(hits[classes] / counts[classes]))


def zsl_accuracies(task: GZSLTask) -> dict[tuple[float, float], float]:
    """ZSL per-class top-1 over the task's unseen classes, for every grid point."""
    features = task.features / np.linalg.norm(task.features, axis=1, keepdims=True)
    seen = task.seen_classes
    train_labels = np.searchsorted(seen, task.benchmark.labels[task.train_idx])
    truth = np.searchsorted(task.unseen_classes, task.benchmark.labels[task.eval_unseen_idx])
    unseen_semantics = task.semantics[task.unseen_classes]
    solutions = eszsl_grid(features[task.train_idx], train_labels, task.semantics[seen])
    test_features = features[task.eval_unseen_idx]
    return {regs: per_class_top1((test_features @ v @ unseen_semantics.T).argmax(axis=1), truth)
            for regs, v in solutions.items()}


def evaluate(name: str, cache_dir: str | None, images_per_class: int | None,
             resolution: int | None, extra: dict) -> list[float]:
    options = dict(extra)
    if resolution is not None:
        options["resolution"] = resolution
    accuracies = []
    preprocessing = Preprocessing(features="none")
    split = ValidationSplit(unseen_class_fraction=3 / 7)
    for partition in range(NUM_PARTITIONS):
        benchmark = load_embedded(name, partition, cache_dir, images_per_class, **options)
        validation = make_validation_task(benchmark, preprocessing, split)
        validation_scores = zsl_accuracies(validation)
        chosen = max(validation_scores, key=validation_scores.get)
        test_scores = zsl_accuracies(make_test_task(benchmark, preprocessing))
        accuracies.append(test_scores[chosen])
        print(f"  partition {partition} unseen {benchmark.source['unseen_class_names']}: "
              f"val {validation_scores[chosen]:.3f} (g={chosen[0]:g}, l={chosen[1]:g}) -> "
              f"test ZSL top-1 {test_scores[chosen]:.3f} (best in grid, for reference only: "
              f"{max(test_scores.values()):.3f})", flush=True)
    print(f"{benchmark.name} @{benchmark.source['resolution']}px, {benchmark.num_images} images, "
          f"{benchmark.source['descriptions_kind']} semantics: ZSL top-1 "
          f"{np.mean(accuracies):.3f} +- {np.std(accuracies):.3f} (chance 0.333)", flush=True)
    return accuracies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="animals")
    parser.add_argument("--cache-dir", default=None,
                        help="default: $UNSEEN_CACHE or ~/.cache/unseen")
    parser.add_argument("--images-per-class", type=int, default=None)
    parser.add_argument("--resolution", type=int, default=None)
    parser.add_argument("--awa2-att-splits", default=None)
    parser.add_argument("--descriptions", default=None, choices=("auto", "wordnet", "prompt"))
    parser.add_argument("--compare-resolutions", type=int, nargs="*", default=None,
                        help="build each resolution in a temporary cache and compare")
    args = parser.parse_args()
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    extra = {"awa2_att_splits": args.awa2_att_splits} if args.awa2_att_splits else {}
    if args.descriptions:
        extra["descriptions"] = args.descriptions
    if args.compare_resolutions:
        with tempfile.TemporaryDirectory() as scratch:
            for resolution in args.compare_resolutions:
                started, cpu = time.perf_counter(), time.process_time()
                build_embedded(args.name, scratch, 0, args.images_per_class,
                               resolution=resolution, **extra)
                print(f"build @{resolution}px: {time.perf_counter() - started:.1f} s wall, "
                      f"{time.process_time() - cpu:.1f} s CPU", flush=True)
                evaluate(args.name, scratch, args.images_per_class, resolution, extra)
        return
    started, cpu = time.perf_counter(), time.process_time()
    directory = build_embedded(args.name, args.cache_dir, 0, args.images_per_class,
                               **({"resolution": args.resolution} if args.resolution else {}),
                               **extra)
    print(f"build (or reuse) of {directory.parent}: {time.perf_counter() - started:.1f} s wall, "
          f"{time.process_time() - cpu:.1f} s CPU", flush=True)
    evaluate(args.name, args.cache_dir, args.images_per_class, args.resolution, extra)


if __name__ == "__main__":
    main()
