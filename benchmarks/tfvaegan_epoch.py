"""Cost of one TF-VAEGAN epoch at the paper's AWA2 settings on AWA2-sized data, against the
machine's matmul speed.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tfvaegan_epoch.py --threads 1 --iterations 4
    .venv/bin/python benchmarks/tfvaegan_epoch.py --iterations 0      # time the whole epoch
    ... --gan-only     # the two passes only (a token evaluation, not reported)

Data: `cegzsl_epoch.awa2_shaped_benchmark`: the REAL AWA2 class semantics and 40/10 partition
with synthetic 2048-d features, at AWA2's sizes (23527 trainval / 5882 test_seen / 7913
test_unseen). Settings: the `AWA2` preset (= run_awa_tfvaegan.py: E, G, F, Dec hidden 4096,
critic 4096, batch 64, 5 critic steps, encoded noise, freeze_dec, syn_num 1800). An epoch is
2 passes (the second with feedback) of ceil(23527 / 64) = 368 generator iterations; `--iterations
K` times the first K of each pass and scales each pass to 368 (every iteration of a pass does
the same work), so that a loaded machine can measure in a minute or two. Prints each pass per
iteration, the evaluation (synthesis with feedback, the [x ; Dec(x) ; Dec hidden(x)] transform,
GZSL and ZSL classifiers), the analytic FLOPs of each and the fraction of the measured fp32
matmul throughput they reach.

FLOP formula (multiply-adds x 2; a Linear on n rows costs n*in*out MACs forward and the same
again for each of its weight gradient and input gradient when they are needed). With
I = D + A, E = B*((D+A)*He + He*2A + 2*2A*A), G = B*(2A*H + H*D), Dec = B*(D*H + H*A),
Fb = B*2*H*H, C = B*I*ndh:
  critic step    : Dec step 2*Dec + B*H*A; E fwd (encoded noise) E; G fwd G; critic fwd + weight
                   grads on 2B rows 4*C; closed-form penalty 3*C.
                   Pass 1 adds Dec hidden B*D*H, F fwd Fb and G's second pass G.
  generator step : E fwd + weight grads + input grads except the first layer's 3*E -
                   B*(D+A)*He; G fwd + weight and input grads 3*G; critic fwd + input grad 2*C;
                   Dec on the fake fwd + input grad 2*Dec (+ Dec weight grads unless frozen).
                   Pass 1 adds G fwd (no grad) G, Dec hidden B*D*H, F fwd + weight grads +
                   input grad of its second layer 3*Fb - B*H*H.
  evaluation     : synthesis 2*G + Dec hidden + Fb per generated row; the transform Dec per
                   row of trainval, generated and test; each classifier step fwd + weight grad,
                   each classifier epoch scores its eval rows.
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
from cegzsl_epoch import DEFAULT_MAT, awa2_shaped_benchmark, matmul_flops_per_second  # noqa: E402
from fclswgan_epoch import AWA2_SIZES, classifier_flops  # noqa: E402
from fclswgan_epoch import _load as load_average  # noqa: E402

from unseen.data.tasks import make_test_task  # noqa: E402
from unseen.methods.tfvaegan import TFVAEGAN, TFVAEGANConfig  # noqa: E402


class StepTimer:
    """Clocks every generator iteration of the progress-wrapped loop, and the evaluation."""

    def __init__(self) -> None:
        self.steps: list[list[float]] = []  # per epoch: the time at each iteration's start
        self.eval_seconds: list[float] = []
        self._loop_end = 0.0

    def progress(self, iterable, description, total=None):
        stamps = []
        for item in iterable:
            stamps.append(time.perf_counter())
            yield item
        self._loop_end = time.perf_counter()
        self.steps.append(stamps + [self._loop_end])

    def epoch_end(self, method, report) -> None:
        self.eval_seconds.append(time.perf_counter() - self._loop_end)
        print(f"  epoch {report.epoch + 1}: evaluation {self.eval_seconds[-1]:.2f} s")


def pass_flops(c: TFVAEGANConfig, arch: dict[str, int], batch: int, feedback: bool) -> float:
    """FLOPs of one generator iteration of a pass (its critic steps and its generator step)."""
    D, A = arch["feature_dim"], arch["semantic_dim"]
    He, H, ndh = arch["encoder_hidden"], arch["generator_hidden"], arch["critic_hidden"]
    B, I = batch, D + A
    enc = B * ((D + A) * He + He * 2 * A + 2 * 2 * A * A)
    gen = B * (2 * A * H + H * D)
    dec = B * (D * H + H * A)
    fb = B * 2 * H * H
    crit = B * I * ndh
    critic = 2 * dec + B * H * A + gen + 7 * crit + (enc if c.encoded_noise else 0)
    generator = 3 * enc - B * (D + A) * He + 3 * gen + 2 * crit + 2 * dec
    if not c.freeze_dec:
        generator += dec
    if not c.encoded_noise:
        generator += 3 * gen
    if feedback:
        critic += B * D * H + fb + gen
        generator += gen + B * D * H + 3 * fb - B * H * H
        if not c.encoded_noise:
            generator += gen + B * D * H + 3 * fb - B * H * H
    return 2.0 * (c.critic_iterations * critic + generator)


def evaluation_flops(c: TFVAEGANConfig, arch: dict[str, int], n_train: int, n_eval: int,
                     n_eval_unseen: int, unseen: int, classes: int) -> float:
    D, A, H = arch["feature_dim"], arch["semantic_dim"], arch["generator_hidden"]
    generated = c.syn_num * unseen
    per_row_synthesis = 2 * (2 * A * H + H * D) + D * H + 2 * H * H
    flops = 2.0 * generated * per_row_synthesis
    flops += 2.0 * (n_train + generated + n_eval) * (D * H + H * A)
    dim = D + A + H
    batch = c.classifier_batch_size or c.syn_num
    flops += classifier_flops(n_train + generated, n_eval, dim, classes, c.classifier_epochs,
                              batch)
    if c.zsl_classifier:
        flops += classifier_flops(generated, n_eval_unseen, dim, unseen,
                                  c.zsl_classifier_epochs, batch)
    return flops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mat", type=Path, default=DEFAULT_MAT)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=4,
                        help="generator iterations timed per pass (0: the whole epoch)")
    parser.add_argument("--sizes", type=int, nargs=3, default=AWA2_SIZES,
                        metavar=("TRAINVAL", "TEST_SEEN", "TEST_UNSEEN"))
    parser.add_argument("--no-zsl", action="store_true", help="skip the ZSL classifier")
    parser.add_argument("--gan-only", action="store_true",
                        help="a token evaluation (1 feature per class, 1 classifier epoch)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    peak = matmul_flops_per_second()
    print(f"torch {torch.__version__} on {os.cpu_count()} CPUs with {torch.get_num_threads()} "
          f"threads, load average {load_average()}; fp32 matmul 4096^2: {peak / 1e9:.1f} GFLOP/s")
    trainval, test_seen, test_unseen = args.sizes
    task = make_test_task(awa2_shaped_benchmark(args.mat, trainval=trainval,
                                                test_seen=test_seen, test_unseen=test_unseen))
    n_train = int(task.train_idx.size)
    config = TFVAEGANConfig().updated({
        **TFVAEGAN.presets["AWA2"], "epochs": args.epochs, "device": "cpu",
        "iterations_per_epoch": args.iterations, "zsl_classifier": not args.no_zsl,
        **({"syn_num": 1, "classifier_epochs": 1, "classifier_batch_size": 4096,
            "zsl_classifier": False} if args.gan_only else {})})
    batch = min(config.batch_size, n_train)
    full_pass = math.ceil(n_train / batch)
    timed = args.iterations or full_pass
    print(f"AWA2 preset (hidden 4096, batch {batch}, encoded noise, freeze_dec), {n_train} "
          f"training rows: 2 passes x {full_pass} generator iterations per epoch, {timed} timed "
          f"per pass; syn_num {config.syn_num}, ZSL classifier {config.zsl_classifier}")
    method = TFVAEGAN(config, seed=9182)
    timer = StepTimer()
    method.fit(task, timer)

    arch = method.architecture
    stamps = timer.steps[-1]
    epoch_seconds = 0.0
    for index in range(config.passes_per_epoch):
        seconds = (stamps[(index + 1) * timed] - stamps[index * timed]) / timed
        flops = pass_flops(config, arch, batch, feedback=index == 1)
        epoch_seconds += seconds * full_pass
        print(f"pass {index} ({'with' if index == 1 else 'without'} feedback): "
              f"{seconds * 1e3:.0f} ms per generator iteration, {flops / 1e9:.1f} GFLOP -> "
              f"{flops / seconds / 1e9:.1f} GFLOP/s = {flops / seconds / peak:.0%} of matmul")
    print(f"GAN epoch (2 x {full_pass} iterations): {epoch_seconds:.1f} s"
          + ("" if timed == full_pass else f" (scaled from 2 x {timed})"))
    if args.gan_only:
        print(f"load average at the end: {load_average()}")
        return
    eval_s = min(timer.eval_seconds)
    eval_flops = evaluation_flops(config, arch, n_train, int(task.eval_idx.size),
                                  int(task.eval_unseen_idx.size), int(task.unseen_classes.size),
                                  int(task.classes.size))
    print(f"evaluation: {eval_s:.2f} s, {eval_flops / 1e12:.3f} TFLOP -> "
          f"{eval_flops / eval_s / 1e9:.1f} GFLOP/s = {eval_flops / eval_s / peak:.0%} of matmul")
    print(f"total {epoch_seconds + eval_s:.1f} s per epoch")
    print(f"load average at the end: {load_average()}")


if __name__ == "__main__":
    main()
