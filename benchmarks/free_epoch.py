"""Cost of one FREE epoch at the AWA2 script's settings on AWA2-sized data, against the
machine's matmul speed.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/free_epoch.py --threads 1 --iterations 10
    .venv/bin/python benchmarks/free_epoch.py --iterations 0      # time the whole epoch
    .venv/bin/python benchmarks/free_epoch.py --write-xlsa17 /tmp/free_data/AWA2 --iterations 1
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/free_epoch.py --threads 1 --gan-only

Data: `cegzsl_epoch.awa2_shaped_benchmark`: the REAL AWA2 class semantics and 40/10 partition
with synthetic 2048-d features, at AWA2's sizes (23527 trainval / 5882 test_seen / 7913
test_unseen). Settings: the `AWA2` preset (run_awa2.py: E and G hidden 4096, ngh = ndh = 4096,
nz = 85, batch 64, 1 critic step, 2 passes, syn_num 4600, FR frozen in the generator step).
An epoch is 2 x ceil(23527 / 64) = 736 generator iterations; `--iterations K` times the first K
of them and scales (each does the same work); `--gan-only` stops before the evaluation (for
timing runs interleaved with the official code's on a loaded machine). `--write-xlsa17 DIR`
also writes the data as xlsa17 files (with the `train_loc` / `val_loc` fields the reference
reads) for timing the official code on the same data.

FLOP formula (multiply-adds x 2; a Linear on n rows costs n*in*out MACs forward and the same
again for its weight gradient and for its input gradient when they are needed; I = D + A):
  critic step   : E fwd (no grad) B*(I*hE + hE*2A + 2*2A*A) when the noise is encoded;
                  G fwd (no grad) B*(2A*hG + hG*D); FR fwd + weight grads 2*B*(D*ngh + ngh*2A)
                  + fc3's input grad B*ngh*2A; D fwd + weight grads on 2B rows 2*2B*I*ndh and the
                  closed-form gradient penalty 3*B*ndh*I.
  generator step: E fwd + weight grads + input grads above fc1; G fwd + weight grads + input
                  grads; D fwd + input grad 2*B*I*ndh; FR fwd + input grads 2*B*(D*ngh +
                  ngh*2A) (+ weight grads unless frozen).
  evaluation    : G fwd on the generated rows; FR fwd on every classifier row; each classifier
                  step fwd + weight grad, each classifier epoch scores its eval rows.
Elementwise work (activations, Adam, the SAMC distances) is not counted.
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
from fclswgan_epoch import AWA2_SIZES, PhaseTimer, _load, classifier_flops  # noqa: E402

from unseen.data.tasks import make_test_task  # noqa: E402
from unseen.methods.free import FREE, FREEConfig  # noqa: E402
from unseen.methods.free.losses import samc_loss, squared_distances  # noqa: E402


def iteration_flops(c: FREEConfig, arch: dict[str, int], n_train: int) -> float:
    """FLOPs of one generator iteration (its critic steps and its generator step)."""
    D, A, seen = arch["feature_dim"], arch["semantic_dim"], arch["num_seen"]
    hE, hG, ndh, ngh = (arch[k] for k in ("encoder_hidden", "generator_hidden",
                                          "critic_hidden", "refinement_hidden"))
    B, I = min(c.batch_size, n_train), D + A
    e_fwd = B * (I * hE + hE * 2 * A + 2 * 2 * A * A)
    g_fwd = B * (2 * A * hG + hG * D)
    fr_fwd = B * (D * ngh + ngh * 2 * A)
    critic = ((e_fwd if c.encoded_noise else 0) + g_fwd + 2 * fr_fwd + B * ngh * 2 * A
              + 2 * (2 * B * I * ndh) + 3 * B * ndh * I + B * A * seen * 2)
    e_step = 2 * e_fwd + B * (hE * 2 * A + 2 * 2 * A * A)
    g_step = 3 * g_fwd
    frozen = c.freeze_refinement and c.recons_weight > 0
    generator = (e_step + g_step + (0 if c.encoded_noise else 3 * g_fwd)
                 + 2 * B * I * ndh + (2 if frozen else 3) * fr_fwd)
    return 2.0 * (c.critic_iterations * critic + generator)


def evaluation_flops(c: FREEConfig, arch: dict[str, int], n_train: int, n_eval: int,
                     unseen: int, classes: int) -> float:
    D, A, hG, ngh = (arch[k] for k in ("feature_dim", "semantic_dim", "generator_hidden",
                                       "refinement_hidden"))
    generated = c.syn_num * unseen
    flops = 2.0 * generated * (2 * A * hG + hG * D)
    flops += 2.0 * (n_train + generated + n_eval) * (D * ngh + ngh * 2 * A)
    flops += classifier_flops(n_train + generated, n_eval, D + ngh + A, classes,
                              c.classifier_epochs, c.classifier_batch_size or c.syn_num)
    return flops


def write_reference_files(benchmark, directory: Path) -> None:
    """The benchmark as xlsa17 files, plus the `train_loc` / `val_loc` fields that the
    reference's loader reads (and does not use without --validation)."""
    import scipy.io as sio

    from unseen.data.xlsa17 import write_xlsa17

    write_xlsa17(benchmark, directory)
    path = directory / "att_splits.mat"
    splits = {k: v for k, v in sio.loadmat(path).items() if not k.startswith("__")}
    splits.setdefault("train_loc", splits["trainval_loc"])
    splits.setdefault("val_loc", splits["test_unseen_loc"])
    sio.savemat(path, splits)
    print(f"wrote {directory}/res101.mat and att_splits.mat")


def samc_comparison(batch: int = 64, classes: int = 40, dim: int = 85, repeats: int = 200) -> None:
    """Forward + backward of the nearest-negative SAMC: the masked min against the reference's
    per-sample loop (`TripCenterLoss_min_margin`, re-written as in tests/test_free_losses.py)."""
    torch.manual_seed(0)
    mu = torch.randn(batch, dim, requires_grad=True)
    centers = torch.randn(classes, dim, requires_grad=True)
    labels = torch.randint(classes, (batch,))

    def loop() -> torch.Tensor:
        distances = squared_distances(mu, centers)
        mask = labels[:, None] == torch.arange(classes)[None, :]
        other = torch.zeros(batch, classes - 1)
        for i in range(batch):
            other[i] = distances[i, ~mask[i]]
        hinge = 50.0 + 0.5 * distances[mask] - 0.5 * other.min(dim=1).values
        return torch.max(hinge, torch.tensor(0.0)).sum() / batch

    def vectorised() -> torch.Tensor:
        return samc_loss(mu, labels, centers, 50.0, 0.5, "nearest")

    for name, form in (("per-sample loop", loop), ("masked min", vectorised)):
        for _ in range(5):
            form().backward()
        start = time.perf_counter()
        for _ in range(repeats):
            form().backward()
        print(f"SAMC (B {batch}, C_s {classes}, A {dim}), {name}: "
              f"{(time.perf_counter() - start) / repeats * 1e3:.2f} ms forward + backward")


class GANOnly(PhaseTimer):
    """Stops the run once the first epoch's GAN loop has been timed."""

    def progress(self, iterable, description, total=None):
        yield from super().progress(iterable, description, total)
        raise _Stop


class _Stop(Exception):
    pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mat", type=Path, default=DEFAULT_MAT)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=10,
                        help="generator iterations timed per epoch (0: the whole epoch)")
    parser.add_argument("--sizes", type=int, nargs=3, default=AWA2_SIZES,
                        metavar=("TRAINVAL", "TEST_SEEN", "TEST_UNSEEN"))
    parser.add_argument("--syn-num", type=int, default=0, help="0: the preset's 4600")
    parser.add_argument("--write-xlsa17", type=Path, default=None,
                        help="also write the data as xlsa17 files into this directory")
    parser.add_argument("--gan-only", action="store_true", help="skip the evaluation")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    peak = matmul_flops_per_second()
    print(f"torch {torch.__version__} on {os.cpu_count()} CPUs with {torch.get_num_threads()} "
          f"threads, load average {_load()}; fp32 matmul 4096^2: {peak / 1e9:.1f} GFLOP/s")
    samc_comparison()
    trainval, test_seen, test_unseen = args.sizes
    benchmark = awa2_shaped_benchmark(args.mat, trainval=trainval, test_seen=test_seen,
                                      test_unseen=test_unseen)
    if args.write_xlsa17 is not None:
        write_reference_files(benchmark, args.write_xlsa17)
    task = make_test_task(benchmark)
    n_train = int(task.train_idx.size)
    config = FREEConfig().updated({
        **FREE.presets["AWA2"], "epochs": args.epochs, "device": "cpu",
        "iterations_per_epoch": args.iterations // 2,
        **({"syn_num": args.syn_num} if args.syn_num else {})})
    per_pass = math.ceil(n_train / min(config.batch_size, n_train))
    full_epoch = config.passes_per_epoch * per_pass
    timed = config.passes_per_epoch * (config.iterations_per_epoch or per_pass)
    print(f"AWA2 script (E, G, FR, D hidden 4096), batch {config.batch_size}, {n_train} "
          f"training rows: {full_epoch} generator iterations per epoch "
          f"({config.passes_per_epoch} passes), {timed} timed; syn_num {config.syn_num}")
    method = FREE(config, seed=9182)
    timer = GANOnly() if args.gan_only else PhaseTimer()
    try:
        method.fit(task, timer)
    except _Stop:
        pass

    arch = method.architecture
    per_iteration = min(timer.gan_seconds) / timed
    flops = iteration_flops(config, arch, n_train)
    print(f"generator iteration: {per_iteration * 1e3:.1f} ms, {flops / 1e9:.2f} GFLOP -> "
          f"{flops / per_iteration / 1e9:.1f} GFLOP/s = {flops / per_iteration / peak:.0%} of "
          f"matmul")
    gan_epoch = per_iteration * full_epoch
    if args.gan_only:
        print(f"GAN epoch ({full_epoch} iterations): {gan_epoch:.1f} s (scaled from {timed}); "
              f"load average at the end: {_load()}")
        return
    eval_s = min(timer.eval_seconds)
    eval_flops = evaluation_flops(config, arch, n_train, int(task.eval_idx.size),
                                  int(task.unseen_classes.size), int(task.classes.size))
    print(f"GAN epoch ({full_epoch} iterations): {gan_epoch:.1f} s"
          + ("" if timed == full_epoch else f" (scaled from {timed})"))
    print(f"evaluation: {eval_s:.2f} s, {eval_flops / 1e12:.3f} TFLOP -> "
          f"{eval_flops / eval_s / 1e9:.1f} GFLOP/s = {eval_flops / eval_s / peak:.0%} of matmul")
    print(f"total {gan_epoch + eval_s:.1f} s per epoch (+ {timer.setup_seconds:.1f} s set-up)")
    print(f"load average at the end: {_load()}")


if __name__ == "__main__":
    main()
