"""DUET throughput on small offline models (CPU by default): training images/s, evaluation
images/s, and the share of a training step spent outside the model's forward/backward (batch
building: text construction, mining, tokenisation, pool images, padding, pixel transfer).

    .venv/bin/python benchmarks/duet_throughput.py                  # small random models
    .venv/bin/python benchmarks/duet_throughput.py --size tiny --steps 10
    .venv/bin/python benchmarks/duet_throughput.py --num-workers 2  # batches built in workers

Models are random-weight DeiT / BERT built offline with `save_pretrained` (no download); the
tokenizer is the packaged MiniLM's (bert-base-uncased WordPiece vocabulary). Images are
synthetic class-coloured PNGs. The numbers measure the pipeline, not accuracy.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--mask-probability", type=float, default=0.4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", default="off", choices=["auto", "bf16", "off"])
    args = parser.parse_args()

    from torch.utils.data import DataLoader

    from unseen.data.tasks import make_test_task
    from unseen.methods.duet import DUET, DUETConfig
    from unseen.methods.duet.data import unbatched
    from unseen.methods.duet.model import parameter_count

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        vision, text = build_models(root, args.size)
        image = SIZES[args.size][0]
        benchmark = build_benchmark(root, classes=12, per_class=max(12, args.batch_size * 2),
                                    image=image)
        task = make_test_task(benchmark)
        config = DUETConfig(vision_model=str(vision), text_model=str(text), epochs=1,
                            batch_size=args.batch_size, gradient_accumulation=1,
                            num_workers=args.num_workers, mask_probability=args.mask_probability,
                            max_length=128, pixel_cache_dir=str(root / "cache"),
                            device=args.device, amp=args.amp)
        method = DUET(config, seed=0)
        method._prepare(task)
        data = method._training_batches(task)
        model, objective = method.model, method._objective
        model.train()
        optimizer = method._new_optimizer(config.lr)
        device = method._device
        print(f"model: {args.size}, {parameter_count(model) / 1e6:.2f} M parameters, "
              f"images {image}px, batch {args.batch_size}, device {device}, "
              f"workers {args.num_workers}, torch threads {torch.get_num_threads()}")

        data_time = compute_time = 0.0
        images = steps = masked = tuples = 0
        start = time.perf_counter()
        while steps < args.steps:
            data.set_epoch(steps)
            loader = DataLoader(data, batch_size=None, collate_fn=unbatched,
                                num_workers=args.num_workers)
            batches = iter(loader)
            while steps < args.steps:
                t0 = time.perf_counter()
                try:
                    batch = next(batches)
                except StopIteration:
                    break
                batch = batch.to(device, method._input_normaliser)
                t1 = time.perf_counter()
                with method._autocast():
                    loss, _ = objective(batch)
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                t2 = time.perf_counter()
                if steps > 0:  # the first step pays one-off allocation and import costs
                    data_time += t1 - t0
                    compute_time += t2 - t1
                    images += batch.size
                    masked += int(batch.masked)
                    if batch.contrast_weights is not None:
                        tuples += batch.contrast_weights.numel()
                steps += 1
        total = data_time + compute_time
        print(f"training: {images / total:.1f} images/s over {steps - 1} timed steps "
              f"({masked} mask-branch batches, {tuples} ACL tuples); "
              f"outside forward/backward/step: {data_time / total:.1%} "
              f"(wall {time.perf_counter() - start:.1f} s incl. warm-up)")

        rows = task.eval_idx
        method._evaluation_logits(task)  # warm-up
        t0 = time.perf_counter()
        method._evaluation_logits(task)
        elapsed = time.perf_counter() - t0
        print(f"evaluation: {rows.size / elapsed:.1f} images/s over {rows.size} images "
              f"(template language-model states computed once per evaluation)")


if __name__ == "__main__":
    main()
