"""The ceiling a method reaches on test when its gamma is chosen on test: a screen, not a result.

    OMP_NUM_THREADS=1 python benchmarks/oracle_ceiling.py cegzsl --dataset animals \
        --preset semi-real --set syn_num=1000 --partitions 0 1 2 3 4 --seed 0

Trains on trainval (the paper protocol's task) and, after every epoch, scores each candidate
on test with the best calibrated-stacking gamma for those test scores. Prints per partition
the oracle H and AUSUC of the method's default candidate (CE-GZSL: the last classifier epoch;
a method without one: the best candidate) averaged over the last `--last` epochs, and their
mean over partitions. Used to compare model variants and methods without the noise of a
validation choice; the honest figure is the clean protocol's (`unseen train`).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import torch

from unseen.data.loading import load_dataset
from unseen.data.tasks import make_test_task
from unseen.evaluation import evaluate
from unseen.runner import RunSpec, resolve_config


class OracleMonitor:
    """Records, per epoch, (oracle H, AUSUC) of every GZSL candidate on the test rows."""

    def __init__(self, labels: torch.Tensor, is_seen_class: torch.Tensor) -> None:
        self.labels = labels
        self.is_seen_class = is_seen_class
        self.epochs: list[dict[str, tuple[float, float]]] = []

    def epoch_end(self, method: Any, report: Any) -> None:
        row = {}
        for name, scores in report.gzsl_candidates.items():
            result = evaluate(scores.float(), self.labels, self.is_seen_class, gamma=None)
            row[name] = (result.H, result.AUSUC)
        self.epochs.append(row)

    def progress(self, iterable: Any, description: str, total: int | None = None) -> Any:
        return iterable


def oracle_ceiling(spec: RunSpec, partition: int, seed: int, last: int) -> tuple[float, float]:
    """(H, AUSUC) of the default candidate with the test-best gamma, mean of the last epochs."""
    method_class, config, options = resolve_config(spec)
    benchmark = load_dataset(spec.dataset, spec.data_root, partition=partition)
    task = make_test_task(benchmark, options.preprocessing)
    labels = torch.as_tensor(task.labels_of(task.eval_idx))
    monitor = OracleMonitor(labels, torch.as_tensor(task.is_seen_class))
    method = method_class(config, seed)
    method.fit(task, monitor)
    default = getattr(method, "default_candidate", None)
    values = [row[default] if default in row else max(row.values()) for row in monitor.epochs]
    return tuple(float(np.mean(column)) for column in zip(*values[-last:], strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("method")
    parser.add_argument("--dataset", default="animals")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--preset", default=None)
    parser.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--partitions", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--last", type=int, default=10, help="epochs averaged (the last K)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    spec = RunSpec(method=args.method, dataset=args.dataset, data_root=args.data_root,
                   preset=args.preset, seeds=[args.seed],
                   overrides=dict(item.split("=", 1) for item in args.overrides))
    results = []
    for partition in args.partitions:
        start = time.perf_counter()
        h, area = oracle_ceiling(spec, partition, args.seed, args.last)
        results.append((h, area))
        print(f"partition {partition}: oracle H {100 * h:5.1f}  AUSUC {100 * area:5.1f}  "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    h_mean, area_mean = (100 * np.mean(column) for column in zip(*results, strict=True))
    print(f"mean over {len(results)} partitions: oracle H {h_mean:.1f}  AUSUC {area_mean:.1f}")


if __name__ == "__main__":
    main()
