"""Pixel-cache build rate and read rate on the rendered `shapes` images, DeiT preprocessing.

Builds the cache of every `shapes` image with a DeiT image processor (256 bicubic resize,
224 centre crop; the config is written offline) serially and with worker processes, then times
random-batch reads (`uint8`, `pixels`), and the xlsa17 path rewriting of 37,322 AWA2-like paths.

    .venv/bin/python benchmarks/pixel_cache_build.py [--workers 2] [--images-per-class 80]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from unseen.backbones.image_processing import ImagePreprocessor
from unseen.data.images import rewrite_image_path
from unseen.data.rendered import build_rendered_benchmark, load_rendered
from unseen.methods.duet.pixel_cache import PixelCache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--images-per-class", type=int, default=80)
    args = parser.parse_args()
    from transformers import DeiTImageProcessor

    scratch = Path(tempfile.mkdtemp(prefix="pixel-cache-"))
    DeiTImageProcessor(image_mean=[0.485, 0.456, 0.406],
                       image_std=[0.229, 0.224, 0.225]).save_pretrained(scratch / "deit")
    preprocessor = ImagePreprocessor.from_model_dir(scratch / "deit")
    build_rendered_benchmark(scratch, args.images_per_class, progress=False)
    benchmark = load_rendered(0, scratch, args.images_per_class, progress=False)
    root = Path(benchmark.source["image_root"])
    paths = [root / f for f in benchmark.image_files]

    for workers in sorted({0, args.workers}):
        start = time.perf_counter()
        cache = PixelCache.build(paths, preprocessor, scratch / f"cache-{workers}",
                                 progress=False, num_workers=workers)
        seconds = time.perf_counter() - start
        print(f"build, {workers} workers: {len(paths)} images in {seconds:.2f} s "
              f"({len(paths) / seconds:.0f} img/s), {cache.array.nbytes / 2**20:.0f} MiB uint8")
    rng = np.random.default_rng(0)
    batches = [rng.integers(0, len(cache), 64) for _ in range(20)]
    for kind in ("uint8", "pixels"):
        start = time.perf_counter()
        for rows in batches:
            getattr(cache, kind)(rows)
        per_batch = (time.perf_counter() - start) / len(batches)
        print(f"read {kind}: {1000 * per_batch:.1f} ms per random batch of 64")

    stored = [f"/BS/xian/work/data/Animals_with_Attributes2/JPEGImages/c{i % 50}/x_{i}.jpg"
              for i in range(37_322)]
    start = time.perf_counter()
    [rewrite_image_path(path, Path("/data"), "awa2") for path in stored]
    print(f"rewrite 37,322 AWA2 paths: {1000 * (time.perf_counter() - start):.0f} ms")


if __name__ == "__main__":
    main()
