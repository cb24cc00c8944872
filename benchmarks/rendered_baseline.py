"""How far attribute transfer gets on `shapes` without learning from pixels: ESZSL on descriptors.

ESZSL (Romera-Paredes & Torr 2015) in closed form on the 160-d `image_descriptor` features of
the rendered benchmark, per partition. Hyperparameters come from a class-disjoint validation
split of the seen classes (4 pseudo-unseen classes); the test split is used once. Prints ZSL
per-class top-1 over the 6 unseen classes (chance 16.7%), GZSL U / S / H without calibration,
and the best H over calibrated-stacking gammas (test-selected, an upper bound), plus build time.

    .venv/bin/python benchmarks/rendered_baseline.py [--cache-dir DIR] [--images-per-class N]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from unseen.data.rendered import NUM_PARTITIONS, build_rendered_benchmark, load_rendered

GRID = [10.0**k for k in range(-3, 4)]


def eszsl(x: np.ndarray, y: np.ndarray, s: np.ndarray, gamma: float, lam: float) -> np.ndarray:
    """V [D, A] minimising ||X V S^T - Y||^2 + gamma ||V S^T||^2 + lam ||X V||^2 + ..."""
    targets = np.where(np.eye(s.shape[0])[y] > 0, 1.0, -1.0)
    left = np.linalg.solve(x.T @ x + gamma * np.eye(x.shape[1]), x.T @ targets @ s)
    return np.linalg.solve((s.T @ s + lam * np.eye(s.shape[1])).T, left.T).T


def per_class_accuracy(predicted: np.ndarray, truth: np.ndarray) -> float:
    classes = np.unique(truth)
    hits = np.bincount(truth, weights=(predicted == truth), minlength=truth.max() + 1)
    return float(np.mean(hits[classes] / np.bincount(truth)[classes]))


def harmonic(u: float, s: float) -> float:
    return 0.0 if u + s == 0 else 2 * u * s / (u + s)


def evaluate_partition(partition: int, cache_dir: str, images_per_class: int) -> dict:
    b = load_rendered(partition, cache_dir, images_per_class, progress=False)
    mean, std = b.features[b.trainval_idx].mean(0), b.features[b.trainval_idx].std(0) + 1e-6
    x = (b.features - mean) / std
    seen, unseen = b.seen_classes, b.unseen_classes
    rng = np.random.default_rng(partition)
    pseudo = rng.choice(seen, 4, replace=False)
    fit_classes = np.setdiff1d(seen, pseudo)
    fit_rows = b.trainval_idx[np.isin(b.labels[b.trainval_idx], fit_classes)]
    val_rows = b.trainval_idx[np.isin(b.labels[b.trainval_idx], pseudo)]
    best = (-1.0, 0.0, 0.0)
    for gamma in GRID:
        for lam in GRID:
            v = eszsl(x[fit_rows], np.searchsorted(fit_classes, b.labels[fit_rows]),
                      b.semantics[fit_classes], gamma, lam)
            predicted = pseudo[np.argmax(x[val_rows] @ v @ b.semantics[pseudo].T, axis=1)]
            best = max(best, (per_class_accuracy(predicted, b.labels[val_rows]), gamma, lam))
    _, gamma, lam = best
    v = eszsl(x[b.trainval_idx], np.searchsorted(seen, b.labels[b.trainval_idx]),
              b.semantics[seen], gamma, lam)
    zsl_rows = b.test_unseen_idx
    zsl = unseen[np.argmax(x[zsl_rows] @ v @ b.semantics[unseen].T, axis=1)]
    scores = x @ v @ b.semantics.T
    is_seen = np.isin(np.arange(b.num_classes), seen)

    def gzsl(calibration: float) -> tuple[float, float, float]:
        predicted = np.argmax(scores - calibration * is_seen, axis=1)
        u = per_class_accuracy(predicted[b.test_unseen_idx], b.labels[b.test_unseen_idx])
        s = per_class_accuracy(predicted[b.test_seen_idx], b.labels[b.test_seen_idx])
        return u, s, harmonic(u, s)

    spread = float(np.abs(scores).max())
    calibrated = max((gzsl(c) for c in np.linspace(-spread, spread, 201)), key=lambda r: r[2])
    return {"partition": partition, "gamma": gamma, "lambda": lam,
            "zsl": per_class_accuracy(zsl, b.labels[zsl_rows]), "gzsl": gzsl(0.0),
            "gzsl_calibrated_oracle": calibrated}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--images-per-class", type=int, default=80)
    args = parser.parse_args()
    cache_dir = args.cache_dir or tempfile.mkdtemp(prefix="shapes-")
    start = time.perf_counter()
    build_rendered_benchmark(cache_dir, args.images_per_class, progress=False)
    print(f"build: {time.perf_counter() - start:.1f} s ({cache_dir})")
    results = [evaluate_partition(p, cache_dir, args.images_per_class)
               for p in range(NUM_PARTITIONS)]
    for r in results:
        u, s, h = r["gzsl"]
        cu, cs, ch = r["gzsl_calibrated_oracle"]
        print(f"partition {r['partition']}: ESZSL gamma={r['gamma']:g} lambda={r['lambda']:g}  "
              f"ZSL T1 {100 * r['zsl']:.1f}  GZSL U/S/H {100 * u:.1f}/{100 * s:.1f}/{100 * h:.1f}"
              f"  calibrated (test-selected) {100 * cu:.1f}/{100 * cs:.1f}/{100 * ch:.1f}")
    zsl = np.array([r["zsl"] for r in results]) * 100
    h = np.array([r["gzsl"][2] for r in results]) * 100
    ch = np.array([r["gzsl_calibrated_oracle"][2] for r in results]) * 100
    print(f"mean +- std over {len(results)} partitions: ZSL T1 {zsl.mean():.1f} +- {zsl.std():.1f}"
          f" (chance {100 / 6:.1f}), GZSL H {h.mean():.1f} +- {h.std():.1f}, calibrated H "
          f"{ch.mean():.1f} +- {ch.std():.1f}")


if __name__ == "__main__":
    main()
