"""Time `load_xlsa17` on a SUN-sized res101.mat (2048 x 14340 float64), v5 and v7.3.

Writes synthetic features whose labels fit the REAL `../shared/data/xlsa17/SUN/att_splits.mat`
into a temporary folder, then loads each version in a fresh process and prints wall time
and peak RSS (the peak of that process, so the numbers do not mix).

    .venv/bin/python benchmarks/load_sun_sized.py [--repeats 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SUN_SPLITS = Path(__file__).resolve().parents[2] / "shared" / "data" / "xlsa17" / "SUN" / \
    "att_splits.mat"
SUN_UNSEEN_CLASSES = 72


def _peak_rss_mib() -> float:
    """This process's peak RSS. Not getrusage's ru_maxrss: Linux carries it over fork+exec,
    so a child would report its parent's peak."""
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024  # kB


def _write(directory: Path, version: str) -> float:
    """A res101.mat consistent with SUN's locs; returns the seconds spent writing it."""
    from unseen.data.matfile import load_mat, save_mat_v5, save_mat_v73

    splits = load_mat(SUN_SPLITS)
    trainval, test_seen, test_unseen = (np.sort(splits[f].ravel().astype(np.int64)) - 1
                                        for f in ("trainval_loc", "test_seen_loc",
                                                  "test_unseen_loc"))
    seen = splits["att"].shape[1] - SUN_UNSEEN_CLASSES
    n = trainval.size + test_seen.size + test_unseen.size
    labels = np.zeros(n, dtype=np.int64)
    labels[trainval] = np.arange(trainval.size) * seen // trainval.size
    labels[test_seen] = labels[trainval[np.maximum(np.searchsorted(trainval, test_seen) - 1, 0)]]
    labels[test_unseen] = seen + np.arange(test_unseen.size) * SUN_UNSEEN_CLASSES \
        // test_unseen.size
    features = np.random.default_rng(0).random((2048, n))  # float64 D x N, as xlsa17 stores
    image_files = [f"/BS/xian/work/data/SUN/images/{c:03d}/sun_{i:05d}.jpg"
                   for i, c in enumerate(labels.tolist())]
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SUN_SPLITS, directory / "att_splits.mat")
    save = save_mat_v5 if version == "v5" else save_mat_v73
    started = time.perf_counter()
    save(directory / "res101.mat", {"features": features, "labels": (labels + 1)[:, None]
                                    .astype(np.float64), "image_files": image_files})
    return time.perf_counter() - started


def _load(directory: Path) -> None:
    """Child process: import, then time one load; print JSON."""
    from unseen.data.xlsa17 import load_xlsa17

    before = _peak_rss_mib()
    started = time.perf_counter()
    benchmark = load_xlsa17(directory, name="SUN")
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "peak_rss_mib": _peak_rss_mib(),
                      "rss_after_imports_mib": before,
                      "shape": list(benchmark.features.shape),
                      "classes": benchmark.num_classes}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="write the files here and keep them")
    parser.add_argument("--load", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        _load(args.load)
        return
    if not SUN_SPLITS.is_file():
        sys.exit(f"{SUN_SPLITS} not found: this benchmark needs the real SUN att_splits.mat")
    root = args.keep or Path(tempfile.mkdtemp(prefix="unseen-sun-"))
    try:
        for version in ("v5", "v7.3"):
            directory = root / version
            write_seconds = _write(directory, version)
            size = (directory / "res101.mat").stat().st_size / 2**20
            runs = [json.loads(subprocess.run(
                [sys.executable, __file__, "--load", str(directory)], check=True,
                capture_output=True, text=True).stdout) for _ in range(args.repeats)]
            best = min(run["seconds"] for run in runs)
            each = ", ".join(f"{run['seconds']:.2f}" for run in runs)
            print(f"{version:5s} res101.mat {size:7.1f} MiB (written in {write_seconds:.2f} s): "
                  f"load_xlsa17 best {best:.2f} s of {args.repeats} "
                  f"({each}), "
                  f"peak RSS {max(run['peak_rss_mib'] for run in runs):.0f} MiB "
                  f"(after imports {runs[0]['rss_after_imports_mib']:.0f} MiB), "
                  f"features {runs[0]['shape']}, classes {runs[0]['classes']}")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
