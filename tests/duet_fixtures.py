"""Tiny random-weight DUET encoders, built offline and saved like hub checkpoints, so that tests
load them through the same `vision_model=<dir>` / `text_model=<dir>` path users take."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

IMAGE_SIZE = 32

# Words the tiny vocabulary knows whole; anything else falls back to single characters.
_WORDS = """
: | , . color pattern shape size texture part has behaviour behavior habit diet role habitat
character limb red green blue yellow black white brown grey orange purple pink striped spotted
solid plain dotted round square triangle circle star small large medium big tiny
attribute group value the a of and
""".split()


def _vocabulary(extra_words: list[str] = ()) -> list[str]:
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = [chr(c) for c in range(ord("a"), ord("z") + 1)] + [str(d) for d in range(10)]
    chars += list(":|,.-_()'")
    pieces = ["##" + c for c in chars]
    words = []
    for word in [*_WORDS, *extra_words]:
        word = word.lower()
        if word not in words and word not in chars:
            words.append(word)
    return special + chars + pieces + words


def save_tiny_bert(directory: Path, extra_words: list[str] = (), with_mlm_head: bool = True,
                   seed: int = 0) -> Path:
    """A 2-layer BERT (hidden 32) + `BertTokenizerFast`, saved with `save_pretrained`."""
    import torch
    from transformers import BertConfig, BertForMaskedLM, BertModel, BertTokenizerFast

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocab = _vocabulary(list(extra_words))
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab={token: i for i, token in enumerate(vocab)},
                                  do_lower_case=True)
    tokenizer.save_pretrained(directory)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=512)
    torch.manual_seed(seed)
    model = BertForMaskedLM(config) if with_mlm_head else BertModel(config)
    model.save_pretrained(directory)
    return directory


def save_tiny_deit(directory: Path, seed: int = 0, with_teacher: bool = False) -> Path:
    """A 2-layer DeiT classifier on 32x32 images (10 logits) + its image processor config."""
    import torch
    from transformers import (
        DeiTConfig,
        DeiTForImageClassification,
        DeiTForImageClassificationWithTeacher,
    )

    directory = Path(directory)
    config = DeiTConfig(image_size=IMAGE_SIZE, patch_size=8, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, num_labels=10)
    torch.manual_seed(seed)
    model_class = DeiTForImageClassificationWithTeacher if with_teacher else \
        DeiTForImageClassification
    model_class(config).save_pretrained(directory)
    _save_processor(directory, "DeiTImageProcessor", crop=True)
    return directory


def save_tiny_vit(directory: Path, seed: int = 0) -> Path:
    """A 2-layer ViT classifier on 32x32 images (10 logits) + its image processor config."""
    import torch
    from transformers import ViTConfig, ViTForImageClassification

    directory = Path(directory)
    config = ViTConfig(image_size=IMAGE_SIZE, patch_size=8, hidden_size=32, num_hidden_layers=2,
                       num_attention_heads=2, intermediate_size=64, num_labels=10)
    torch.manual_seed(seed)
    ViTForImageClassification(config).save_pretrained(directory)
    _save_processor(directory, "ViTImageProcessor", crop=False)
    return directory


def _save_processor(directory: Path, processor: str, crop: bool) -> None:
    config = {
        "image_processor_type": processor, "do_resize": True, "resample": 3,
        "size": {"height": IMAGE_SIZE, "width": IMAGE_SIZE}, "do_rescale": True,
        "rescale_factor": 1 / 255, "do_normalize": True,
        "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225],
    }
    if crop:
        config.update(do_center_crop=True, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    (Path(directory) / "preprocessor_config.json").write_text(json.dumps(config, indent=2))


def random_pixels(n: int, seed: int = 0):
    import torch

    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, IMAGE_SIZE, IMAGE_SIZE, generator=generator)


def random_uint8_images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)


ATTRIBUTE_WORDS = ["red", "green", "blue", "yellow", "round", "square", "triangle", "star",
                   "striped", "spotted", "small", "large"]
ATTRIBUTE_GROUPS = ["color"] * 4 + ["shape"] * 4 + ["pattern"] * 2 + ["size"] * 2


def tiny_image_benchmark(root: Path, num_classes: int = 6, num_unseen: int = 2,
                         images_per_class: int = 6, seed: int = 0):
    """A synthetic benchmark whose images (32x32 PNGs under `root`) are coloured by class, with
    12 named attributes in 4 groups (an attributeindex2prompt-style JSON) for the text side."""
    from PIL import Image

    from unseen.data.synthetic import synthetic_benchmark

    root = Path(root)
    benchmark = synthetic_benchmark(num_classes=num_classes, num_unseen=num_unseen,
                                    images_per_class=images_per_class, feature_dim=8,
                                    semantic_dim=len(ATTRIBUTE_WORDS), seed=seed, name="tiny")
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, (num_classes, 3))
    for row, (path, label) in enumerate(zip(benchmark.image_files, benchmark.labels,
                                            strict=True)):
        noise = np.random.default_rng(row).integers(-40, 40, (IMAGE_SIZE, IMAGE_SIZE, 3))
        pixels = np.clip(colours[label] + noise, 0, 255).astype(np.uint8)
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(target, "PNG")
    groups = root / "attributeindex2prompt.json"
    groups.write_text(json.dumps({str(a): g for a, g in enumerate(ATTRIBUTE_GROUPS)}))
    benchmark.attribute_names = list(ATTRIBUTE_WORDS)
    benchmark.source.update(image_root=str(root), attribute_groups=str(groups),
                            duet_style="generic")
    return benchmark
