"""Time DUET training steps and evaluation on the embedded `shapes` benchmark (shapes preset:
packaged EfficientNet-Lite0 + packaged MiniLM), split by branch, with an optional
torch.profiler table of the most expensive operators.

    UNSEEN_CACHE=/tmp/unseen-cache .venv/bin/python benchmarks/duet_shapes_step.py
    .venv/bin/python benchmarks/duet_shapes_step.py --steps 12 --set image_resolution=96
    .venv/bin/python benchmarks/duet_shapes_step.py --profile 25     # top-25 operator table

`--set key=value` overrides DUETConfig fields on top of the preset (as `unseen train` does).
Each timed step is forward + backward + optimizer step of one batch built by the method's own
batch builder; steps are grouped by branch (mask, with or without ACL tuples, and template).
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partition", type=int, default=0)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--profile", type=int, default=0, help="print the top-N operators")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()

    from unseen.data.rendered import load_rendered
    from unseen.data.tasks import make_test_task
    from unseen.methods.duet import DUET, DUETConfig
    from unseen.methods.duet.config import PRESETS
    from unseen.methods.duet.model import parameter_count

    overrides = dict(item.split("=", 1) for item in args.set)
    config = DUETConfig().updated(PRESETS["shapes"]).updated(overrides | {"num_workers": "0"})
    task = make_test_task(load_rendered(args.partition))
    method = DUET(config, seed=0)
    t0 = time.perf_counter()
    method._prepare(task)
    t1 = time.perf_counter()
    data = method._training_batches(task)
    print(f"setup {time.perf_counter() - t0:.1f} s (pixel cache / frozen trunk table "
          f"{time.perf_counter() - t1:.1f} s); {parameter_count(method.model) / 1e6:.1f} M "
          f"parameters; {len(data)} batches/epoch of {config.batch_size}; resolution "
          f"{config.image_resolution}; max_length {config.max_length}; template "
          f"{len(method._template)} tokens; threads {torch.get_num_threads()}")
    model, objective = method.model, method._objective
    model.train()
    optimizer = method._new_optimizer(config.lr)
    data.set_epoch(0)
    times: dict[str, list[float]] = defaultdict(list)
    build_times = []

    phases: dict[str, list[float]] = defaultdict(list)

    def step(index: int) -> str:
        t_build = time.perf_counter()
        batch = data[index].to(method._device, method._input_normaliser)
        build_times.append(time.perf_counter() - t_build)
        start, cpu = time.perf_counter(), time.process_time()
        loss, _ = objective(batch)
        forward = time.process_time()
        loss.backward()
        backward = time.process_time()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        end = time.process_time()
        kind = ("mask+acl" if batch.contrast_weights is not None else "mask") if batch.masked \
            else "template"
        times[kind].append(time.perf_counter() - start)
        for name, value in (("forward", forward - cpu), ("backward", backward - forward),
                            ("optimizer", end - backward)):
            phases[f"{kind} {name}"].append(value)
        return kind

    step(0)  # warm-up
    times.clear()
    build_times.clear()
    phases.clear()
    profiler = None
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        profiler = profile(activities=[ProfilerActivity.CPU])
        profiler.__enter__()
    for index in range(1, args.steps + 1):
        step(index % len(data))
    if profiler is not None:
        profiler.__exit__(None, None, None)
        print(profiler.key_averages().table(sort_by="self_cpu_time_total",
                                            row_limit=args.profile))
    counts = {k: len(v) for k, v in times.items()}
    mean = {k: float(np.mean(v)) for k, v in times.items()}
    print("per-step seconds: " + ", ".join(f"{k} {mean[k]:.2f} (n={counts[k]})"
                                           for k in sorted(mean)))
    print("process CPU seconds (all threads) per step: " + ", ".join(
        f"{k} {np.mean(v):.2f}" for k, v in sorted(phases.items())))
    all_steps = [t for v in times.values() for t in v]
    print(f"mean step {np.mean(all_steps):.2f} s + batch building {np.mean(build_times):.3f} s "
          f"-> epoch of {len(data)} batches ~ "
          f"{len(data) * (np.mean(all_steps) + np.mean(build_times)):.0f} s")
    rows = task.eval_idx
    start = time.perf_counter()
    method._evaluation_logits(task)
    elapsed = time.perf_counter() - start
    print(f"evaluation: {rows.size} images in {elapsed:.1f} s ({rows.size / elapsed:.0f} img/s)")


if __name__ == "__main__":
    main()
