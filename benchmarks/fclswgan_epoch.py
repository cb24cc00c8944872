"""Cost of one f-CLSWGAN epoch at the paper's AWA widths on AWA2-sized data, against the
machine's matmul speed.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fclswgan_epoch.py --threads 1 --iterations 40
    .venv/bin/python benchmarks/fclswgan_epoch.py --iterations 0      # time the whole epoch
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fclswgan_epoch.py --threads 1 --iterations 4 \
        --no-zsl --pretrain-epochs 1 --onednn --retain-freed-memory  # the speed options

The generator iteration is also given in this process's CPU time from the second iteration
on (the steadier figure on a shared machine), its FLOP/s per CPU second against two fp32
GEMM peaks, MKL's (`a @ b`) and oneDNN's (docs/methods/fclswgan.md §9.6.1).

Data: `cegzsl_epoch.awa2_shaped_benchmark`: the REAL AWA2 class semantics and 40/10 partition
with synthetic 2048-d features, here at AWA2's sizes (23527 trainval / 5882 test_seen / 7913
test_unseen). Settings: the `AWA2` preset (= the AWA1 script: ngh = ndh = 4096, nz = 85,
batch 64, 5 critic steps, syn_num 1800, ZSL syn_num 300). An epoch is ceil(23527 / 64) = 368
generator iterations; `--iterations K` times the first K of them and scales to 368 (each
iteration does the same work), so that a loaded machine can measure in a minute or two.
Prints the one-off pre-training of the seen classifier, the GAN part per iteration and per
epoch, the evaluation (synthesis + GZSL and ZSL classifiers), the analytic FLOPs of each and
the fraction of the measured fp32 matmul throughput they reach.

FLOP formula (multiply-adds x 2; a Linear on n rows costs n*in*out MACs forward and the same
again for each of its weight gradient and input gradient when they are needed; I = D + A):
  critic step   : G fwd (no grad) B*((nz+A)*ngh + ngh*D); D fwd + weight grads on 2B rows
                  2 * 2B*I*ndh; gradient penalty in closed form 3*B*ndh*I.
  generator step: G fwd, weight grads (2 * G fwd) and hidden grad B*ngh*D; D fwd + input grad
                  2*B*I*ndh; seen classifier fwd + input grad 2*B*D*C_s.
  pre-training  : 50 epochs * ceil(N/100) steps * 100 rows * D*C_s * 2 (fwd + weight grad).
  evaluation    : G fwd on the generated rows; each classifier step fwd + weight grad, each
                  classifier epoch scores its eval rows.
Elementwise work (activations, Adam) is not counted.
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
from cadavae_epoch import _load, gemm_flops_per_cpu_second  # noqa: E402
from cegzsl_epoch import DEFAULT_MAT, TimingMonitor, awa2_shaped_benchmark  # noqa: E402

from unseen.data.tasks import make_test_task  # noqa: E402
from unseen.methods.fclswgan import FCLSWGAN, FCLSWGANConfig  # noqa: E402

AWA2_SIZES = (23527, 5882, 7913)


class PhaseTimer(TimingMonitor):
    """CE-GZSL's timer (GAN loop and evaluation of each epoch) plus the set-up before the first
    epoch: data tensors, networks and the seen-classifier pre-training."""

    def __init__(self) -> None:
        super().__init__()
        self.start = time.perf_counter()
        self.setup_seconds = 0.0
        self.gan_cpu_seconds: list[float] = []

    def progress(self, iterable, description, total=None):
        if not self.gan_seconds:
            self.setup_seconds = time.perf_counter() - self.start
        # CPU time from the second iteration on (the first builds Adam's state and oneDNN's
        # kernels); the wall-clock figures count every iteration, as before.
        items = iter(super().progress(iterable, description, total))
        yield next(items)
        cpu_start, count = time.process_time(), 0
        for item in items:
            count += 1
            yield item
        self.gan_cpu_seconds.append((time.process_time() - cpu_start) / max(count, 1))


def iteration_flops(c: FCLSWGANConfig, arch: dict[str, int], n_train: int) -> float:
    """FLOPs of one generator iteration (its critic steps and its generator step)."""
    D, A, nz = arch["feature_dim"], arch["semantic_dim"], arch["noise_dim"]
    ngh, ndh, seen = arch["generator_hidden"], arch["critic_hidden"], arch["num_seen"]
    B, I = min(c.batch_size, n_train), D + A
    g_fwd = B * ((nz + A) * ngh + ngh * D)
    critic = g_fwd + 2 * (2 * B * I * ndh) + 3 * B * ndh * I
    generator = 2 * g_fwd + B * ngh * D + 2 * B * I * ndh + 2 * B * D * seen
    return 2.0 * (c.critic_iterations * critic + generator)


def classifier_flops(rows: int, eval_rows: int, dim: int, classes: int, epochs: int,
                     batch: int) -> float:
    steps = math.ceil(rows / batch)
    return 2.0 * epochs * (2 * steps * batch * dim * classes + eval_rows * dim * classes)


def evaluation_flops(c: FCLSWGANConfig, arch: dict[str, int], n_train: int, n_eval: int,
                     n_eval_unseen: int, unseen: int, classes: int) -> float:
    D, A, nz, ngh = (arch[k] for k in ("feature_dim", "semantic_dim", "noise_dim",
                                       "generator_hidden"))
    zsl_syn = c.zsl_syn_num or c.syn_num
    per_class = max(c.syn_num, zsl_syn) if c.zsl_classifier else c.syn_num
    flops = 2.0 * per_class * unseen * ((nz + A) * ngh + ngh * D)
    flops += classifier_flops(n_train + c.syn_num * unseen, n_eval, D, classes,
                              c.classifier_epochs, c.classifier_batch_size or c.syn_num)
    if c.zsl_classifier:
        flops += classifier_flops(zsl_syn * unseen, n_eval_unseen, D, unseen,
                                  c.zsl_classifier_epochs, c.classifier_batch_size or zsl_syn)
    return flops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mat", type=Path, default=DEFAULT_MAT)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=40,
                        help="generator iterations timed per epoch (0: the whole epoch)")
    parser.add_argument("--sizes", type=int, nargs=3, default=AWA2_SIZES,
                        metavar=("TRAINVAL", "TEST_SEEN", "TEST_UNSEEN"))
    parser.add_argument("--no-zsl", action="store_true", help="skip the ZSL classifier")
    parser.add_argument("--onednn", action="store_true", help="option onednn_matmul")
    parser.add_argument("--retain-freed-memory", action="store_true",
                        help="option retain_freed_memory")
    parser.add_argument("--pretrain-epochs", type=int, default=0,
                        help="seen-classifier pre-training epochs (0: the preset's 50)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    mkl, dnn = gemm_flops_per_cpu_second(False), gemm_flops_per_cpu_second(True)
    peak = max(mkl, dnn)
    print(f"torch {torch.__version__} on {os.cpu_count()} CPUs with {torch.get_num_threads()} "
          f"threads, load average {_load()}; fp32 GEMM 4096^2 per CPU second: MKL "
          f"{mkl / 1e9:.1f} GFLOP/s, oneDNN {dnn / 1e9:.1f} GFLOP/s")
    trainval, test_seen, test_unseen = args.sizes
    task = make_test_task(awa2_shaped_benchmark(args.mat, trainval=trainval,
                                                test_seen=test_seen, test_unseen=test_unseen))
    n_train = int(task.train_idx.size)
    config = FCLSWGANConfig().updated({
        **FCLSWGAN.presets["AWA2"], "epochs": args.epochs, "device": "cpu",
        "iterations_per_epoch": args.iterations, "zsl_classifier": not args.no_zsl,
        "onednn_matmul": args.onednn, "retain_freed_memory": args.retain_freed_memory,
        **({"pretrain_epochs": args.pretrain_epochs} if args.pretrain_epochs else {})})
    full_epoch = math.ceil(n_train / min(config.batch_size, n_train))
    timed = args.iterations or full_epoch
    print(f"AWA2 widths (ngh = ndh = 4096), batch {config.batch_size}, {n_train} training rows: "
          f"{full_epoch} generator iterations per epoch, {timed} timed; syn_num "
          f"{config.syn_num}, ZSL classifier {config.zsl_classifier}")
    method = FCLSWGAN(config, seed=9182)
    timer = PhaseTimer()
    method.fit(task, timer)

    arch = method.architecture
    pretrain = 2.0 * config.pretrain_epochs * math.ceil(n_train / config.pretrain_batch_size) \
        * config.pretrain_batch_size * arch["feature_dim"] * arch["num_seen"] * 2
    print(f"set-up incl. seen-classifier pre-training: {timer.setup_seconds:.2f} s, "
          f"{pretrain / 1e12:.3f} TFLOP -> {pretrain / timer.setup_seconds / peak:.0%} of matmul")
    per_iteration = min(timer.gan_seconds) / timed
    cpu_per_iteration = min(timer.gan_cpu_seconds)
    flops = iteration_flops(config, arch, n_train)
    print(f"generator iteration: {per_iteration * 1e3:.1f} ms wall, "
          f"{cpu_per_iteration * 1e3:.1f} ms CPU; {flops / 1e9:.2f} GFLOP -> "
          f"{flops / cpu_per_iteration / 1e9:.1f} GFLOP/s per CPU second = "
          f"{flops / cpu_per_iteration / peak:.0%} of the machine's matmul (MKL's: "
          f"{flops / cpu_per_iteration / mkl:.0%})")
    gan_epoch = per_iteration * full_epoch
    eval_s = min(timer.eval_seconds)
    eval_flops = evaluation_flops(config, arch, n_train, int(task.eval_idx.size),
                                  int(task.eval_unseen_idx.size), int(task.unseen_classes.size),
                                  int(task.classes.size))
    print(f"GAN epoch ({full_epoch} iterations): {gan_epoch:.1f} s"
          + ("" if timed == full_epoch else f" (scaled from {timed})"))
    print(f"evaluation: {eval_s:.2f} s, {eval_flops / 1e12:.3f} TFLOP -> "
          f"{eval_flops / eval_s / 1e9:.1f} GFLOP/s = {eval_flops / eval_s / peak:.0%} of matmul")
    print(f"total {gan_epoch + eval_s:.1f} s per epoch (+ {timer.setup_seconds:.1f} s once)")
    print(f"load average at the end: {_load()}")


if __name__ == "__main__":
    main()
