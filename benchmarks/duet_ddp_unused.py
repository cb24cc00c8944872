"""DDP's unused-parameter search vs a static graph, on DUET's real `fit` step (2 CPU processes,
gloo, small random models). Only a configuration whose steps all use the same parameters can
drop the search (e.g. `mask_probability=0`: template batches only); the default 0.4 cannot
(template batches leave the MLM head and the X-layer's language side unused).

    .venv/bin/python benchmarks/duet_ddp_unused.py --steps 12

Prints seconds per step for: the static graph DUET now picks, and the old always-on
`find_unused_parameters=True`, same batches.
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).parent))
from duet_throughput import build_benchmark, build_models  # noqa: E402


class Timer:
    def __init__(self, steps: int) -> None:
        self.steps, self.seconds, self.timed = steps, 0.0, 0

    def progress(self, iterable, description, total=None):
        for index, batch in enumerate(iterable):
            start = time.perf_counter()
            yield batch
            if index > 0:
                self.seconds += time.perf_counter() - start
                self.timed += 1
            if index >= self.steps:
                break

    def epoch_end(self, method, report) -> None:
        pass


def _worker(rank: int, root: str, port: int, steps: int, search: bool, out: str) -> None:
    import os

    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2",
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from unseen.data.tasks import make_test_task
    from unseen.methods.duet import DUET, DUETConfig
    from unseen.methods.duet.losses import DuetObjective

    if search:  # the old behaviour: search for unused parameters on every step
        DuetObjective.same_parameters_every_step = lambda self: False
        DuetObjective.never_used_parameters = lambda self: []
    root = Path(root)
    task = make_test_task(build_benchmark(root, classes=12, per_class=40, image=64))
    config = DUETConfig(vision_model=str(root / "deit"), text_model=str(root / "bert"), epochs=1,
                        batch_size=8, gradient_accumulation=1, num_workers=0,
                        mask_probability=0.0, max_length=64, device="cpu",
                        pixel_cache_dir=str(root / "cache"))
    timer = Timer(steps)
    try:
        DUET(config, seed=0).fit(task, timer)
    finally:
        torch.distributed.destroy_process_group()
    if rank == 0:
        Path(out).write_text(f"{timer.seconds / max(timer.timed, 1)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        build_models(Path(tmp), "small")
        results = {}
        for search in (False, True, False, True):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            out = Path(tmp) / "seconds.txt"
            mp.spawn(_worker, args=(tmp, port, args.steps, search, str(out)), nprocs=2,
                     join=True)
            results.setdefault(search, []).append(float(out.read_text()))
        for search, label in ((False, "static graph (no search)"),
                              (True, "find_unused_parameters=True")):
            print(f"{label}: {min(results[search]):.3f} s per step (best of "
                  f"{len(results[search])} runs, {args.steps} steps each)")


if __name__ == "__main__":
    main()
