"""Per-sample cost of DUET's text side (what each DataLoader worker pays per training image).

Measures (best of --repeats, wall clock, and process CPU time, which is steadier on a shared
machine) `masked_example` + `contrast_example` per sample on the real-size vocabularies (CUB 312
attributes / 28 groups with pruning at 170, AWA2 85 / 12, SUN 102 / 14) built from the real
`att_splits.mat` and DUET group files under ../shared, with the offline bert-base-uncased
WordPiece vocabulary packaged with MiniLM. Also times building the per-task tables.

    .venv/bin/python benchmarks/duet_text_throughput.py [--samples 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_duet_attributes import (  # noqa: E402
    awa2_vocabulary,
    bert_tokenizer,
    cub_vocabulary,
    sun_vocabulary,
)

from unseen.methods.duet.text import DuetTextBuilder  # noqa: E402


def measure(name: str, bench, vocab, max_length: int, prune: int | None, replicate: bool,
            samples: int, repeats: int) -> None:
    bert_tokenizer()  # loaded once, outside the timed setup
    start = time.perf_counter()
    builder = DuetTextBuilder(vocab, bench.semantics, bench.seen_classes, bert_tokenizer(),
                              max_length, prune_length=prune, replicate_reference_bugs=replicate)
    setup = time.perf_counter() - start
    rng = np.random.default_rng(0)
    best_masked = best_total = best_cpu = float("inf")
    skipped = lengths = 0
    for _ in range(repeats):
        masked_time = contrast_time = 0.0
        skipped = lengths = 0
        cpu = time.process_time()
        for i in range(samples):
            y = i % builder.tables.num_seen
            t0 = time.perf_counter()
            masked = builder.masked_example(y, rng)
            t1 = time.perf_counter()
            tuple_ = builder.contrast_example(y, masked, rng)
            contrast_time += time.perf_counter() - t1
            masked_time += t1 - t0
            skipped += tuple_ is None or not tuple_.complete
            lengths += len(masked.input_ids)
        best_cpu = min(best_cpu, (time.process_time() - cpu) / samples)
        best_masked = min(best_masked, masked_time / samples)
        best_total = min(best_total, (masked_time + contrast_time) / samples)
    print(f"{name:5s} replicate={replicate!s:5s} A={vocab.num_attributes:3d} "
          f"G={len(vocab.group_order):2d} Cs={builder.tables.num_seen:3d} "
          f"setup {setup * 1e3:6.1f} ms | masked {best_masked * 1e6:6.0f} us | "
          f"masked+contrast {best_total * 1e6:6.0f} us/sample (CPU {best_cpu * 1e6:5.0f} us) | "
          f"mean anchor length {lengths / samples:5.1f} | ACL skipped {skipped / samples:.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sets = [("CUB", *cub_vocabulary(Path(tmp)), 250, 170),
                ("AWA2", *awa2_vocabulary(), 150, None), ("SUN", *sun_vocabulary(), 150, None)]
        for name, bench, vocab, max_length, prune in sets:
            for replicate in (False, True):
                measure(name, bench, vocab, max_length, prune, replicate, args.samples,
                        args.repeats)


if __name__ == "__main__":
    main()
