"""DUET training throughput through the real `DUET.fit` loop (with its batch building, host
syncs, optimizer steps and accumulation), and evaluation throughput.

    .venv/bin/python benchmarks/duet_throughput.py                       # small models, CPU
    .venv/bin/python benchmarks/duet_throughput.py --size tiny --steps 10
    .venv/bin/python benchmarks/duet_throughput.py --size base --device cuda --amp off bf16

`--size base` is DeiT-B/16 (224 px) + BERT-base with random weights (the paper's sizes; on a
GPU: fp32 vs bf16 with `--amp off bf16`). Models are built offline with `save_pretrained` (no
download); the tokenizer is the packaged MiniLM's (bert-base-uncased WordPiece vocabulary).
Images are synthetic class-coloured PNGs. A step is timed from one batch to the next inside
`fit` (a progress wrapper), so it includes everything `fit` does per step; the first step and
the epoch-end evaluation are excluded. `--sync-debug` (CUDA) makes every host sync in the
timed steps an error. The numbers measure the pipeline, not accuracy.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

SIZES = {  # image, patch, hidden, layers, heads, ffn
    "tiny": (32, 8, 32, 2, 2, 64),
    "small": (64, 8, 128, 4, 4, 512),
    "base": (224, 16, 768, 12, 12, 3072),  # DeiT-B/16 and BERT-base
}
WORDS = ["red", "green", "blue", "yellow", "round", "square", "triangle", "star", "striped",
         "spotted", "small", "large"]
GROUPS = ["color"] * 4 + ["shape"] * 4 + ["pattern"] * 2 + ["size"] * 2


def build_models(root: Path, size: str) -> tuple[Path, Path]:
    from transformers import BertConfig, BertForMaskedLM, DeiTConfig, DeiTForImageClassification

    from unseen.methods.duet.model import resolve_text_model

    image, patch, hidden, layers, heads, ffn = SIZES[size]
    vision, text = root / "deit", root / "bert"
    torch.manual_seed(0)
    DeiTForImageClassification(DeiTConfig(
        image_size=image, patch_size=patch, hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=heads, intermediate_size=ffn, num_labels=1000)).save_pretrained(vision)
    (vision / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "DeiTImageProcessor", "do_resize": True, "resample": 3,
        "size": {"height": image, "width": image}, "do_center_crop": True,
        "crop_size": {"height": image, "width": image}, "do_rescale": True,
        "rescale_factor": 1 / 255, "do_normalize": True,
        "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}))
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_text_model("minilm"))
    tokenizer.save_pretrained(text)
    BertForMaskedLM(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=hidden,
                               num_hidden_layers=layers, num_attention_heads=heads,
                               intermediate_size=ffn)).save_pretrained(text)
    return vision, text


def build_benchmark(root: Path, classes: int, per_class: int, image: int):
    from PIL import Image

    from unseen.data.synthetic import synthetic_benchmark

    benchmark = synthetic_benchmark(num_classes=classes, num_unseen=max(2, classes // 4),
                                    images_per_class=per_class, feature_dim=8,
                                    semantic_dim=len(WORDS), name="throughput")
    colours = np.random.default_rng(0).integers(0, 256, (classes, 3))
    for row, (path, label) in enumerate(zip(benchmark.image_files, benchmark.labels,
                                            strict=True)):
        noise = np.random.default_rng(row).integers(-40, 40, (image, image, 3))
        target = root / "images" / path
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(colours[label] + noise, 0, 255).astype(np.uint8)).save(target,
                                                                                      "PNG")
    groups = root / "groups.json"
    groups.write_text(json.dumps({str(a): g for a, g in enumerate(GROUPS)}))
    benchmark.attribute_names = list(WORDS)
    benchmark.source.update(image_root=str(root / "images"), attribute_groups=str(groups),
                            duet_style="generic")
    return benchmark


class StepTimer:
    """A `TrainingMonitor` that times `fit`'s steps: from receiving one batch to receiving the
    next (`compute`: the loop body; `wait`: waiting for the loader)."""

    def __init__(self, steps: int, sync_debug: bool) -> None:
        self.steps, self.sync_debug = steps, sync_debug
        self.compute = self.wait = 0.0
        self.images = self.timed = 0

    def progress(self, iterable, description, total=None):
        import time

        import torch

        requested = time.perf_counter()
        for index, batch in enumerate(iterable):
            received = time.perf_counter()
            if index > 0:
                self.wait += received - requested
            if self.sync_debug:
                torch.cuda.set_sync_debug_mode("error" if index > 0 else "default")
            yield batch
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            requested = time.perf_counter()
            if index > 0:
                self.compute += requested - received
                self.images += batch.size
                self.timed += 1
            if index >= self.steps:
                break
        if self.sync_debug:
            torch.cuda.set_sync_debug_mode("default")

    def epoch_end(self, method, report) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--mask-probability", type=float, default=0.4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", nargs="+", default=["off"], choices=["auto", "bf16", "off"])
    parser.add_argument("--sync-debug", action="store_true")
    args = parser.parse_args()

    from unseen.data.tasks import make_test_task
    from unseen.methods.duet import DUET, DUETConfig
    from unseen.methods.duet.model import parameter_count

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        vision, text = build_models(root, args.size)
        image = SIZES[args.size][0]
        per_class = max(12, -(-(args.steps + 2) * args.batch_size // 9))
        benchmark = build_benchmark(root, classes=12, per_class=per_class, image=image)
        task = make_test_task(benchmark)
        for amp in args.amp:
            config = DUETConfig(vision_model=str(vision), text_model=str(text), epochs=1,
                                batch_size=args.batch_size, gradient_accumulation=1,
                                num_workers=args.num_workers,
                                mask_probability=args.mask_probability, max_length=128,
                                pixel_cache_dir=str(root / "cache"), device=args.device,
                                amp=amp)
            method = DUET(config, seed=0)
            timer = StepTimer(args.steps, args.sync_debug and args.device.startswith("cuda"))
            start = time.perf_counter()
            method.fit(task, timer)
            wall = time.perf_counter() - start
            total = timer.compute + timer.wait
            print(f"model {args.size}: {parameter_count(method.model) / 1e6:.1f} M parameters, "
                  f"{image}px, batch {args.batch_size}, device {method._device}, amp {amp}, "
                  f"workers {args.num_workers}, torch threads {torch.get_num_threads()}")
            print(f"  training (fit): {timer.images / total:.1f} images/s over {timer.timed} "
                  f"steps; waiting for batches {timer.wait / total:.1%}; wall {wall:.1f} s "
                  f"incl. setup and one evaluation")
            rows = task.eval_idx
            method._evaluation_logits(task)  # warm-up
            t0 = time.perf_counter()
            method._evaluation_logits(task)
            elapsed = time.perf_counter() - t0
            print(f"  evaluation: {rows.size / elapsed:.1f} images/s over {rows.size} images")


if __name__ == "__main__":
    main()
