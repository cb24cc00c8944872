"""Cost of one CADA-VAE epoch at the paper's settings on AWA2-sized data, against the machine's
matmul speed.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/cadavae_epoch.py --threads 1 --steps 40
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/cadavae_epoch.py --threads 1 --fast
    .venv/bin/python benchmarks/cadavae_epoch.py --steps 0      # time the whole epoch

Data: `cegzsl_epoch.awa2_shaped_benchmark` at AWA2's sizes (23527 trainval / 5882 test_seen /
7913 test_unseen; the real AWA2 semantics and 40/10 partition, synthetic 2048-d features).
Settings: the `AWA2` preset (= `single_experiment.py --dataset AWA2`: hidden 1560 / 1660 /
1450 / 665, latent 64, batch 50, amsgrad Adam, 29 classifier epochs). An epoch is
ceil(23527 / 50) = 471 VAE steps; `--steps K` times K of them after 3 untimed ones and scales
to 471 (every step does the same work). The evaluation is the classifier stage that the
reference runs once, after its last epoch (encode 8000 + 4000 training latents and the 13795
test rows, 29 classifier epochs). `--fused-adam`, `--onednn`, `--retain-freed-memory` and
`--fast` (all three) set the options of those names; the default is the bit-identical path.
`--carry-over-classifier` sets `reference_classifier=false` (the classifier stage's
alternative form: ceil(n / 32) carry-over batches instead of floor(n / 32) shuffled ones).

Times are wall-clock and this process's CPU time: on a machine shared with other busy
processes the CPU time of a one-thread run is the steadier figure, and the FLOP/s are per CPU
second. Two matmul speeds are printed: PyTorch's `a @ b` (MKL) and oneDNN's, each on 4096^2
fp32; the fraction of the larger one is the fraction of the machine.

FLOP formula (multiply-adds x 2; a Linear on n rows costs n*in*out MACs forward and the same
again for its weight gradient and, where needed, its input gradient; hidden sizes h_ex, h_ea,
h_dx, h_da, latent L, B = 50):
  VAE step : forward F = B*(D*h_ex + h_ex*2L) + B*(A*h_ea + h_ea*2L)     (two encoders)
                        + 2B*(L*h_dx + h_dx*D) + 2B*(L*h_da + h_da*A)    (each decoder on z_x
                                                                          and z_a)
             backward  2F - B*(D*h_ex + A*h_ea)  (no gradient for the data).
  evaluation: encoders on the classifier rows and test rows; each classifier step fwd +
             weight grad, each classifier epoch scores the test rows.
Elementwise work (activations, losses, Adam) is not counted.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cegzsl_epoch import DEFAULT_MAT, awa2_shaped_benchmark  # noqa: E402

from unseen.data.tasks import make_test_task  # noqa: E402
from unseen.methods import onednn  # noqa: E402
from unseen.methods.cadavae import CADAVAE, CADAVAEConfig  # noqa: E402

AWA2_SIZES = (23527, 5882, 7913)
WARM_UP_STEPS = 3


def gemm_flops_per_cpu_second(onednn_gemm: bool, size: int = 4096, repeats: int = 5) -> float:
    """fp32 GEMM speed of one 4096^2 product per second of this process's CPU time (robust to
    other processes on a shared machine), by MKL (`a @ b`) or oneDNN (0 where it is absent)."""
    if onednn_gemm and not onednn.available():
        return 0.0
    a, b = torch.randn(size, size), torch.randn(size, size)

    def product() -> torch.Tensor:
        if onednn_gemm:
            return torch.ops.mkldnn._linear_pointwise(a, b, None, "none", [], "")
        return a @ b

    product()
    start = time.process_time()
    for _ in range(repeats):
        product()
    return 2 * size**3 * repeats / (time.process_time() - start)


class StepTimer:
    """Lets `steps` VAE steps of the first epoch run after the warm-up (all when 0), clocks
    them, then clocks the evaluation that follows the loop."""

    def __init__(self, steps: int) -> None:
        self.steps = steps
        self.stamps: list[tuple[float, float]] = []  # (wall, process CPU) seconds
        self.loop_end = (0.0, 0.0)
        self.eval_seconds = (0.0, 0.0)

    def progress(self, iterable, description, total=None):
        for index, item in enumerate(iterable):
            self.stamps.append(_now())
            if self.steps and index >= WARM_UP_STEPS + self.steps:
                break
            yield item
        else:
            self.stamps.append(_now())
        self.loop_end = _now()

    def epoch_end(self, method, report) -> None:
        now = _now()
        self.eval_seconds = (now[0] - self.loop_end[0], now[1] - self.loop_end[1])

    def per_step(self) -> tuple[float, float]:
        """(wall, CPU) seconds per timed step."""
        first, last = self.stamps[WARM_UP_STEPS], self.stamps[-1]
        count = len(self.stamps) - WARM_UP_STEPS - 1
        return (last[0] - first[0]) / count, (last[1] - first[1]) / count


def _now() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def step_flops(arch: dict[str, int], batch: int) -> float:
    """FLOPs of one VAE step (module docstring)."""
    D, A, L = arch["feature_dim"], arch["attribute_dim"], arch["latent_size"]
    h_ex, h_dx = arch["image_encoder_hidden"], arch["image_decoder_hidden"]
    h_ea, h_da = arch["attribute_encoder_hidden"], arch["attribute_decoder_hidden"]
    forward = (batch * (D * h_ex + h_ex * 2 * L) + batch * (A * h_ea + h_ea * 2 * L)
               + 2 * batch * (L * h_dx + h_dx * D) + 2 * batch * (L * h_da + h_da * A))
    return 2.0 * (3 * forward - batch * (D * h_ex + A * h_ea))


def evaluation_flops(c: CADAVAEConfig, arch: dict[str, int], seen: int, unseen: int,
                     n_eval: int, classes: int) -> float:
    D, A, L = arch["feature_dim"], arch["attribute_dim"], arch["latent_size"]
    h_ex, h_ea = arch["image_encoder_hidden"], arch["attribute_encoder_hidden"]
    seen_rows, unseen_rows = seen * c.seen_latents_per_class, unseen * c.unseen_latents_per_class
    encode = (seen_rows + n_eval) * (D * h_ex + h_ex * 2 * L) + unseen * (A * h_ea + h_ea * 2 * L)
    rows = seen_rows + unseen_rows
    steps = (rows // c.classifier_batch_size if c.reference_classifier
             else math.ceil(rows / c.classifier_batch_size))
    classify = c.classifier_epochs * (2 * steps * c.classifier_batch_size * L * classes
                                      + n_eval * L * classes)
    return 2.0 * (encode + classify)


def _load() -> str:
    return ", ".join(f"{v:.1f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mat", type=Path, default=DEFAULT_MAT)
    parser.add_argument("--steps", type=int, default=40,
                        help="VAE steps timed (after 3 untimed; 0: the whole epoch)")
    parser.add_argument("--sizes", type=int, nargs=3, default=AWA2_SIZES,
                        metavar=("TRAINVAL", "TEST_SEEN", "TEST_UNSEEN"))
    parser.add_argument("--fused-adam", action="store_true", help="option fused_adam")
    parser.add_argument("--onednn", action="store_true", help="option onednn_matmul")
    parser.add_argument("--retain-freed-memory", action="store_true",
                        help="option retain_freed_memory")
    parser.add_argument("--fast", action="store_true", help="all three options")
    parser.add_argument("--carry-over-classifier", action="store_true",
                        help="option reference_classifier=false")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    mkl, dnn = gemm_flops_per_cpu_second(False), gemm_flops_per_cpu_second(True)
    peak = max(mkl, dnn)
    print(f"torch {torch.__version__} on {os.cpu_count()} CPUs with {torch.get_num_threads()} "
          f"threads, load average {_load()}; fp32 GEMM 4096^2: MKL {mkl / 1e9:.1f} GFLOP/s, "
          f"oneDNN {dnn / 1e9:.1f} GFLOP/s")
    trainval, test_seen, test_unseen = args.sizes
    task = make_test_task(awa2_shaped_benchmark(args.mat, trainval=trainval,
                                                test_seen=test_seen, test_unseen=test_unseen))
    config = CADAVAEConfig().updated({
        **CADAVAE.presets["AWA2"], "epochs": 1, "device": "cpu",
        "fused_adam": args.fused_adam or args.fast, "onednn_matmul": args.onednn or args.fast,
        "retain_freed_memory": args.retain_freed_memory or args.fast,
        "reference_classifier": not args.carry_over_classifier})
    n_train = int(task.train_idx.size)
    batch = min(config.batch_size, n_train)
    full_epoch = math.ceil(n_train / batch)
    print(f"AWA2 preset, batch {batch}, {n_train} training rows: {full_epoch} VAE steps per "
          f"epoch, {args.steps or full_epoch} timed; fused_adam {config.fused_adam}, "
          f"onednn_matmul {config.onednn_matmul}, retain_freed_memory "
          f"{config.retain_freed_memory}, reference_classifier {config.reference_classifier}")
    method = CADAVAE(config, seed=0)
    timer = StepTimer(args.steps)
    method.fit(task, timer)

    per_step, cpu_per_step = timer.per_step()
    flops = step_flops(method.architecture, batch)
    print(f"VAE step: {per_step * 1e3:.1f} ms wall, {cpu_per_step * 1e3:.1f} ms CPU; "
          f"{flops / 1e9:.2f} GFLOP -> {flops / cpu_per_step / 1e9:.1f} GFLOP/s per CPU second "
          f"= {flops / cpu_per_step / peak:.0%} of the machine's matmul (MKL's: "
          f"{flops / cpu_per_step / mkl:.0%})")
    print(f"VAE epoch ({full_epoch} steps): {per_step * full_epoch:.1f} s wall, "
          f"{cpu_per_step * full_epoch:.1f} s CPU"
          + ("" if not args.steps else f" (scaled from {args.steps})"))
    eval_flops = evaluation_flops(config, method.architecture, int(task.seen_classes.size),
                                  int(task.unseen_classes.size), int(task.eval_idx.size),
                                  int(task.classes.size))
    wall, cpu = timer.eval_seconds
    print(f"evaluation (once, after the last epoch): {wall:.2f} s wall, {cpu:.2f} s CPU; "
          f"{eval_flops / 1e9:.1f} GFLOP -> {eval_flops / cpu / peak:.0%} of matmul")
    print(f"load average at the end: {_load()}")


if __name__ == "__main__":
    main()
