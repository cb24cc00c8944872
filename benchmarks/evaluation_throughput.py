"""Throughput and peak memory of `unseen.evaluation.evaluate` on a large score matrix.

    .venv/bin/python benchmarks/evaluation_throughput.py                  # 100,000 x 1,000
    .venv/bin/python benchmarks/evaluation_throughput.py --rows 20000 --chunk-sizes 512 4096

Each chunk size runs in a fresh subprocess so that peak memory is its own. Memory is the peak
resident set size (getrusage ru_maxrss) during `evaluate` minus the peak before it, i.e. the
extra memory evaluation needed beyond the score matrix already in memory. tracemalloc is not
used: it does not see torch's allocations.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def measure(rows: int, classes: int, chunk_size: int, repeats: int,
            threads: int | None) -> dict[str, float]:
    import torch

    from unseen.evaluation import evaluate

    if threads:
        torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(rows, classes, generator=generator)
    labels = torch.randint(0, classes, (rows,), generator=generator)
    scores[torch.arange(rows), labels] += 2.0
    is_seen_class = torch.arange(classes) < classes // 2
    evaluate(scores[:1000, :2], labels[:1000] % 2, torch.tensor([True, False]), gamma=None)  # warm
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = evaluate(scores, labels, is_seen_class, gamma=None, chunk_size=chunk_size)
        timings.append(time.perf_counter() - start)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    best = min(timings)
    return {"rows": rows, "classes": classes, "chunk_size": chunk_size, "seconds": best,
            "samples_per_second": rows / best, "peak_rss_delta_mib": (after - before) / 1024,
            "score_matrix_mib": scores.numel() * 4 / 2**20, "breakpoints": result.curve.gammas.size,
            "H": result.H, "AUSUC": result.AUSUC, "torch_threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--classes", type=int, default=1_000)
    parser.add_argument("--chunk-sizes", type=int, nargs="+", default=[1024, 8192, 100_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.rows, args.classes, args.chunk_sizes[0], args.repeats,
                                args.threads)))
        return
    print(f"evaluate (curve + AUSUC + best gamma + U/S/H + T1 + per class) on "
          f"{args.rows:,} x {args.classes:,} float32 scores, half the classes seen")
    print("memory: peak RSS during evaluate minus peak RSS before (getrusage ru_maxrss)")
    for chunk_size in args.chunk_sizes:
        command = [sys.executable, __file__, "--child", "--rows", str(args.rows), "--classes",
                   str(args.classes), "--chunk-sizes", str(chunk_size), "--repeats",
                   str(args.repeats), "--threads", str(args.threads)]
        child = subprocess.run(command, capture_output=True, text=True)
        if child.returncode != 0:
            sys.exit(f"chunk_size={chunk_size} failed:\n{child.stderr}")
        out = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"chunk_size={chunk_size:>7}: {out['seconds']:.3f} s (best of {args.repeats}), "
              f"{out['samples_per_second']:,.0f} samples/s, "
              f"peak RSS +{out['peak_rss_delta_mib']:.1f} MiB "
              f"(scores {out['score_matrix_mib']:.0f} MiB), {out['breakpoints']:,} "
              f"breakpoints, H={out['H']:.4f}, AUSUC={out['AUSUC']:.4f}, "
              f"threads={out['torch_threads']}")


if __name__ == "__main__":
    main()
