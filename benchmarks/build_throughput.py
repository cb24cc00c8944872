"""Images per second of `unseen data build` against the backbone's own limit, and peak memory.

    PYTHONPATH=src .venv/bin/python benchmarks/build_throughput.py --images 1000 --threads 1
    PYTHONPATH=src .venv/bin/python benchmarks/build_throughput.py --images 20000 --image-size 64

Writes an ImageFolder of `--images` JPEG files (Animal-MNIST silhouettes, tinted per image and
upscaled to 96x96 so that decoding costs something) under /tmp, then measures, on this CPU and
with the same torch threads:

- limit: the bare EfficientNet-Lite0 forward on pre-decoded, pre-normalised batches (images/s);
- build: the feature extraction of a fresh `unseen data build` (DataLoader workers decoding,
  hashing for the cache, normalising, the forward, chunked cache writes), as a fraction of the
  limit (target >= 80 %), and the whole build's wall time (model loading, text encoding,
  split and .mat writing included). On a shared machine the limit moves with the load, so it is
  measured before and after the build, and the build also reports the share of its extraction
  time spent inside the forward itself (the same ratio, measured under the same load);
- naive: one image at a time (open, preprocess, forward a batch of 1), on `--naive` images;
- peak memory: the highest proportional set size (PSS: shared pages split between the processes
  that share them, so forked workers are not counted twice) of the build's whole process tree
  (main process plus decoding workers, summed, sampled every second from /proc; Linux only).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from unseen.backbones.auto import load_backbone
from unseen.data.embedded_sources import load_animal_mnist

CHILD = """
import json, sys, time
from pathlib import Path
import torch
from unseen.data import extraction
from unseen.data.build import BuildOptions, build_dataset
if {threads}:
    torch.set_num_threads({threads})
from unseen.backbones import auto
timing = {{"forward_s": 0.0}}
original_load = auto.load_backbone
class Timed(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.inner = model
    def forward(self, pixels):
        start = time.perf_counter()
        out = self.inner(pixels)
        timing["forward_s"] += time.perf_counter() - start
        return out
def timed_load(*args, **kwargs):
    backbone = original_load(*args, **kwargs)
    backbone.model = Timed(backbone.model)
    return backbone
auto.load_backbone = timed_load
original = extraction.extract_to_cache
def timed(*args, **kwargs):
    start = time.perf_counter()
    result = original(*args, **kwargs)
    timing["extract_s"] = time.perf_counter() - start
    timing["computed"] = result.computed
    return result
import unseen.data.build as build
extraction.extract_to_cache = timed
start = time.perf_counter()
build_dataset(BuildOptions(out_dir=Path({out!r}), images=Path({images!r}), image_size={size},
                           batch_size={batch}, workers={workers}, cache_dir=Path({cache!r}),
                           unseen_fraction=0.2, progress=False, overwrite=True))
timing["total_s"] = time.perf_counter() - start
print(json.dumps(timing))
"""


def write_folder(root: Path, count: int, side: int = 96) -> Path:
    """`count` JPEG files in 10 class folders (reused when already complete)."""
    marker = root / f".complete-{count}-{side}"
    if marker.is_file():
        return root
    raw = load_animal_mnist()
    rng = np.random.default_rng(0)
    for i in range(count):
        label = i % len(raw.class_names)
        pool = np.flatnonzero(raw.labels == label)
        grey = raw.images[pool[(i // len(raw.class_names)) % pool.size]]
        tint = rng.integers(64, 256, 3).astype(np.float32) / 255.0
        rgb = (grey[..., None].astype(np.float32) * tint).astype(np.uint8)
        folder = root / raw.class_names[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgb).resize((side, side), Image.Resampling.BILINEAR).save(
            folder / f"{i:06d}.jpg", quality=90)
    marker.write_text("ok\n")
    return root


def bare_forward_rate(backbone, images: list[Path], batch_size: int, seconds: float) -> float:
    """Images/s of the forward alone on pre-decoded, pre-normalised batches."""
    decoded = []
    for path in images[:batch_size]:
        with Image.open(path) as image:
            decoded.append(backbone.preprocessor.to_uint8(image))
    pixels = backbone.preprocessor.normalise(np.stack(decoded))
    done, start = 0, None
    with torch.inference_mode():
        backbone.model(pixels)  # warm-up
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            backbone.model(pixels)
            done += pixels.shape[0]
    return done / (time.perf_counter() - start)


def naive_rate(backbone, images: list[Path]) -> float:
    """Images/s of the one-at-a-time loop a first script would write."""
    start = time.perf_counter()
    with torch.inference_mode():
        for path in images:
            with Image.open(path) as image:
                backbone.model(backbone.preprocessor([image.convert("RGB")]))
    return len(images) / (time.perf_counter() - start)


def _tree_pss(pid: int) -> int:
    """Proportional set size in bytes of `pid` and all its descendants (from /proc)."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/smaps_rollup") as handle:
                total += next(int(line.split()[1]) * 1024 for line in handle
                              if line.startswith("Pss:"))
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    stack += [int(child) for child in handle.read().split()]
        except (FileNotFoundError, ProcessLookupError, StopIteration, ValueError):
            continue
    return total


def run_build(args, images: Path, work: Path) -> tuple[dict, int]:
    cache = work / f"cache-{time.time_ns()}"  # fresh: every image goes through the model
    code = CHILD.format(threads=args.threads, out=str(work / "built"), images=str(images),
                        size=args.image_size, batch=args.batch_size, workers=args.workers,
                        cache=str(cache))
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    peak = [0]

    def sample() -> None:
        while process.poll() is None:
            peak[0] = max(peak[0], _tree_pss(process.pid))
            # Reading smaps_rollup takes the target's mmap lock: sampled often, it slows the
            # build it measures (2.4x at every 50 ms, measured), so once a second.
            time.sleep(1.0)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, _ = process.communicate()
    sampler.join()
    if process.returncode:
        raise SystemExit(f"build failed with exit code {process.returncode}")
    return json.loads(stdout.strip().splitlines()[-1]), peak[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--image-size", type=int, default=224,
                        help="EfficientNet-Lite0 input side (the build's default, 224; 64 "
                             "keeps 20,000 images to a few minutes on 2 loaded cores)")
    parser.add_argument("--batch-size", type=int, default=16,
                        help="the build's CPU default (16: the fastest at 224 px here)")
    parser.add_argument("--workers", type=int, default=None,
                        help="decoding workers (default: the build's own default)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's)")
    parser.add_argument("--naive", type=int, default=300, help="images for the naive loop")
    parser.add_argument("--work-dir", default="/tmp/unseen-build-throughput")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from unseen.data.extraction import default_workers

    args.workers = default_workers() if args.workers is None else args.workers
    work = Path(args.work_dir)
    started = time.perf_counter()
    images = write_folder(work / f"images-{args.images}", args.images)
    print(f"folder: {args.images} JPEG files (96x96) in {images} "
          f"({time.perf_counter() - started:.0f} s to write or reuse)")
    files = sorted(images.rglob("*.jpg"))
    backbone = load_backbone("efficientnet-lite0", image_size=args.image_size)
    print(f"backbone: efficientnet-lite0 @{args.image_size}px, batch {args.batch_size}, "
          f"torch threads {torch.get_num_threads()}, decoding workers {args.workers}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    before = bare_forward_rate(backbone, files, args.batch_size, seconds=10.0)
    timing, peak = run_build(args, images, work)
    after = bare_forward_rate(backbone, files, args.batch_size, seconds=10.0)
    limit = (before + after) / 2
    print(f"limit  (bare forward, pre-decoded): {limit:8.1f} images/s (before the build "
          f"{before:.1f}, after {after:.1f})")
    rate = timing["computed"] / timing["extract_s"]
    print(f"build  (unseen data build):         {rate:8.1f} images/s = {rate / limit:.0%} of "
          f"the limit ({timing['computed']} images in {timing['extract_s']:.1f} s; whole build "
          f"{timing['total_s']:.1f} s)")
    print(f"       forward share of the build's extraction time: "
          f"{timing['forward_s'] / timing['extract_s']:.0%} (its forward alone ran at "
          f"{timing['computed'] / timing['forward_s']:.1f} images/s)")
    naive = naive_rate(backbone, files[:args.naive])
    print(f"naive  (one image at a time):       {naive:8.1f} images/s "
          f"(build is {rate / naive:.1f}x faster)")
    print(f"peak memory of the build (process tree, PSS): {peak / 2**20:.0f} MiB for "
          f"{args.images} images; load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
