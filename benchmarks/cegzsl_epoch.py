"""Cost of one CE-GZSL epoch on an AWA2-shaped benchmark, against the machine's matmul speed.

    .venv/bin/python benchmarks/cegzsl_epoch.py                 # paper AWA2 widths, batch 512
    .venv/bin/python benchmarks/cegzsl_epoch.py --epochs 2 --no-reference-loop

Data: the REAL AWA2 class semantics (`att_splits.mat`, `att` transposed) and its 40/10
seen/unseen partition, with synthetic 2048-d features (1482 trainval / 369 test_seen /
445 test_unseen, the sizes of the reference timing in spec §7). Prints seconds per GAN epoch and
per evaluation (classifier) separately, the analytic FLOPs of one epoch, the measured fp32
matmul throughput and the fraction of it achieved, and the reference per-sample class-loss loop
against the factored form (B = 512, C_s = 40).

FLOP formula (multiply-adds x 2; a Linear on n rows costs n*in*out MACs forward and the same
again for each of its weight gradient and input gradient when they are needed):
  critic step  : G fwd (no grad); E fwd + weight grads + dh; D fwd/weight grads on 2B rows;
                 GP closed form: (slope*w2) @ W_x fwd + 2 grads (B*ndh*D each);
                 SupCon B^2*Z fwd, 2x bwd; F: P = h W_h^T fwd + dW_h + dh, plus the pairwise
                 block counted as its fc2 dot: 2*B*C_s*nhF fwd, 2x bwd.
  generator step: G fwd + weight grads + hidden grad; D fwd + input grad on [x ; a]; E fwd on
                 fake + input grads, E fwd on real (no grad); SupCon on 2B rows; F: P fwd + dh,
                 pairwise fwd + grad of P.
  evaluation   : G fwd and E.embed on the synthetic rows, E.embed on train and eval rows;
                 each classifier step fwd + weight grad, each classifier epoch scores eval rows.
Elementwise work (activations, Adam) is not counted.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

import numpy as np
import scipy.io as sio
import torch
import torch.nn.functional as F

from unseen.data.benchmark import Benchmark
from unseen.data.tasks import make_test_task
from unseen.methods.cegzsl import CEGZSL, CEGZSLConfig
from unseen.methods.cegzsl.losses import class_cross_entropy, comparator_chunk_rows
from unseen.methods.cegzsl.networks import Comparator

AWA2_UNSEEN = ["bat", "blue+whale", "bobcat", "dolphin", "giraffe", "horse", "rat", "seal",
               "sheep", "walrus"]
DEFAULT_MAT = Path(__file__).resolve().parents[2] / "shared/data/xlsa17/AWA2/att_splits.mat"


def awa2_shaped_benchmark(mat_path: Path, seed: int = 0, trainval: int = 1482,
                          test_seen: int = 369, test_unseen: int = 445) -> Benchmark:
    """Real AWA2 semantics and partition; features from a fixed random map of them + noise."""
    mat = sio.loadmat(str(mat_path))
    semantics = mat["att"].T.astype(np.float32)
    names = [str(entry[0][0]) for entry in mat["allclasses_names"]]
    unseen = np.array(sorted(names.index(name) for name in AWA2_UNSEEN))
    seen = np.setdiff1d(np.arange(len(names)), unseen)
    rng = np.random.default_rng(seed)
    projection = rng.normal(0.0, 1.0, (semantics.shape[1], 2048)).astype(np.float32)
    prototypes = np.maximum(semantics @ projection, 0.0)
    labels = np.concatenate([rng.choice(seen, trainval + test_seen),
                             rng.choice(unseen, test_unseen)])
    features = prototypes[labels] + 0.5 * rng.normal(0.0, 1.0, (labels.size, 2048))
    features = np.maximum(features, 0.0).astype(np.float32)
    idx = np.arange(labels.size)
    return Benchmark(name="AWA2-shaped", features=features, labels=labels.astype(np.int64),
                     semantics=semantics, class_names=names, trainval_idx=idx[:trainval],
                     test_seen_idx=idx[trainval:trainval + test_seen],
                     test_unseen_idx=idx[trainval + test_seen:])


class TimingMonitor:
    """Splits each epoch into the GAN part (the progress-wrapped loop) and the evaluation."""

    def __init__(self) -> None:
        self.gan_seconds: list[float] = []
        self.eval_seconds: list[float] = []
        self._loop_end = 0.0

    def progress(self, iterable, description, total=None):
        start = time.perf_counter()
        yield from iterable
        self._loop_end = time.perf_counter()
        self.gan_seconds.append(self._loop_end - start)

    def epoch_end(self, method, report) -> None:
        self.eval_seconds.append(time.perf_counter() - self._loop_end)
        losses = ", ".join(f"{k}={v:.3f}" for k, v in report.losses.items()
                           if k in ("critic_loss", "generator_loss", "real_class"))
        print(f"  epoch {report.epoch + 1}: GAN {self.gan_seconds[-1]:.2f} s, "
              f"evaluation {self.eval_seconds[-1]:.2f} s ({losses})")


def epoch_flops(c: CEGZSLConfig, arch: dict[str, int], n_train: int, n_eval: int,
                n_eval_unseen: int, seen: int, unseen: int, classes: int) -> tuple[float, float]:
    """(GAN FLOPs, evaluation FLOPs) of one epoch, by the formula in the module docstring."""
    D, A, nz = arch["feature_dim"], arch["semantic_dim"], arch["noise_dim"]
    ngh, ndh, E, Z, nhF = (arch[k] for k in ("generator_hidden", "critic_hidden", "embed_dim",
                                             "projection_dim", "comparator_hidden"))
    B = min(c.batch_size, n_train)
    g_fwd = B * ((nz + A) * ngh + ngh * D)
    e_fwd = B * (D * E + E * Z)
    critic = (g_fwd + e_fwd + e_fwd + B * E * Z  # G fwd; E fwd, weight grads, dz->dh
              + 2 * (2 * B * D * ndh + B * A * ndh)  # D fwd + weight grads on real and fake
              + 3 * B * ndh * D  # gradient penalty, closed form
              + 3 * B * B * Z  # SupCon
              + 3 * B * E * nhF + 3 * B * seen * nhF)  # F: P fwd/dW/dh; pairwise fc2 dot
    generator = (g_fwd + g_fwd + B * ngh * D  # G fwd, weight grads, hidden grad
                 + 2 * B * (D + A) * ndh  # D fwd + input grad
                 + e_fwd + B * (E * Z + D * E) + e_fwd  # E on fake (+ input grads), on real
                 + 3 * (2 * B) ** 2 * Z  # SupCon on 2B rows
                 + 2 * B * E * nhF + 2 * B * seen * nhF)  # F: P fwd + dh; pairwise
    iterations = math.ceil(n_train / B)
    gan = 2.0 * iterations * (c.critic_iterations * critic + generator)
    syn = c.syn_num * unseen
    batch = c.classifier_batch_size or c.syn_num
    evaluation = syn * ((nz + A) * ngh + ngh * D) + (n_train + syn + n_eval) * D * E
    steps = math.ceil((n_train + syn) / batch)
    evaluation += c.classifier_epochs * (2 * steps * batch * E * classes + n_eval * E * classes)
    if c.zsl_classifier:
        steps = math.ceil(syn / batch)
        evaluation += c.zsl_classifier_epochs * (2 * steps * batch * E * unseen
                                                 + n_eval_unseen * E * unseen)
    return gan, 2.0 * evaluation


def matmul_flops_per_second(size: int = 4096, repeats: int = 5) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def class_loss_comparison(batch: int, seen: int, embed: int, semantic_dim: int, hidden: int,
                          run_loop: bool) -> None:
    torch.manual_seed(0)
    comparator = Comparator(embed, semantic_dim, hidden)
    h = torch.rand(batch, embed, requires_grad=True)
    semantics = torch.rand(seen, semantic_dim)
    labels = torch.randint(0, seen, (batch,))
    rows = comparator_chunk_rows(seen, hidden, 256 << 20, torch.device("cpu"))

    def factored() -> torch.Tensor:
        return class_cross_entropy(comparator, h, semantics, labels, 0.1, rows)

    def reference_loop() -> torch.Tensor:  # the reference's class_scores_for_loop
        scores = torch.empty(batch, seen)
        for i in range(batch):
            scores[i] = (comparator(h[i].repeat(seen, 1), semantics) / 0.1).squeeze()
        return F.cross_entropy(scores, labels)

    def timed(loss_fn) -> tuple[float, torch.Tensor, list[torch.Tensor]]:
        start = time.perf_counter()
        loss = loss_fn()
        grads = torch.autograd.grad(loss, [h, *comparator.parameters()])
        return time.perf_counter() - start, loss.detach(), list(grads)

    timed(factored)
    fast_s, fast_loss, fast_grads = min((timed(factored) for _ in range(3)), key=lambda t: t[0])
    print(f"class loss B={batch} C_s={seen} nhF={hidden}: factored {fast_s * 1e3:.1f} ms "
          f"(fwd+bwd, chunk {rows} rows)")
    if run_loop:
        loop_s, loop_loss, loop_grads = timed(reference_loop)
        error = max(float((a - b).abs().max()) for a, b in zip(fast_grads, loop_grads,
                                                                 strict=True))
        print(f"  reference loop {loop_s:.2f} s -> speed-up {loop_s / fast_s:.0f}x; "
              f"|loss diff| {float((fast_loss - loop_loss).abs()):.1e}, max |grad diff| "
              f"{error:.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mat", type=Path, default=DEFAULT_MAT)
    parser.add_argument("--epochs", type=int, default=2, help="the first includes warm-up")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--syn-num", type=int, default=100,
                        help="synthetic features per unseen class (the reference default, 100, "
                             "fits the reference timing of spec §7; the AWA2 preset uses 2400)")
    parser.add_argument("--no-zsl", action="store_true", help="skip the ZSL classifier")
    parser.add_argument("--no-reference-loop", action="store_true")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (0: torch's default); on a machine shared with other "
                             "busy processes, 1 avoids OpenMP threads waiting for each other")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"load average {load}")
    peak = matmul_flops_per_second()
    print(f"fp32 matmul 4096^2: {peak / 1e9:.1f} GFLOP/s")
    task = make_test_task(awa2_shaped_benchmark(args.mat))
    overrides = {**CEGZSL.presets["AWA2"], "batch_size": args.batch_size, "syn_num": args.syn_num,
                 "epochs": args.epochs, "device": "cpu", "zsl_classifier": not args.no_zsl}
    config = CEGZSLConfig().updated(overrides)
    method = CEGZSL(config, seed=9182)
    monitor = TimingMonitor()
    print(f"AWA2 widths, batch {config.batch_size}, syn_num {config.syn_num}, "
          f"ZSL classifier {config.zsl_classifier}")
    method.fit(task, monitor)
    gan_flops, eval_flops = epoch_flops(
        config, method.architecture, task.train_idx.size, task.eval_idx.size,
        task.eval_unseen_idx.size, task.seen_classes.size, task.unseen_classes.size,
        task.classes.size)
    gan_s, eval_s = min(monitor.gan_seconds), min(monitor.eval_seconds)
    print(f"GAN epoch: {gan_s:.2f} s, {gan_flops / 1e12:.3f} TFLOP -> "
          f"{gan_flops / gan_s / 1e9:.1f} GFLOP/s = {gan_flops / gan_s / peak:.0%} of matmul")
    print(f"evaluation: {eval_s:.2f} s, {eval_flops / 1e12:.3f} TFLOP -> "
          f"{eval_flops / eval_s / 1e9:.1f} GFLOP/s = {eval_flops / eval_s / peak:.0%} of matmul")
    total = gan_s + eval_s
    print(f"total {total:.2f} s/epoch; reference (spec §7) 110.3 s/epoch -> {110.3 / total:.1f}x")
    class_loss_comparison(512, 40, 2048, task.semantics.shape[1], 2048,
                          not args.no_reference_loop)
    print(f"load average at the end: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
