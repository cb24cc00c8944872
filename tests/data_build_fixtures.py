"""Small real inputs for `unseen data build`: Animal-MNIST silhouettes saved as PNG files in an
ImageFolder tree, class attribute tables, descriptions, and tiny saved transformers models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from unseen.data.embedded_sources import load_animal_mnist

CLASSES = ("bear", "bird", "cat", "cow", "dog")
IMAGES_PER_CLASS = 12
IMAGE_SIDE = 32

# Coarse, hand-written attributes of the five animals (not learned from the images).
ATTRIBUTES = {"big": [1, 0, 0, 1, 0], "flies": [0, 1, 0, 0, 0], "four_legs": [1, 0, 1, 1, 1],
              "horns": [0, 0, 0, 1, 0], "pet": [0, 1, 1, 0, 1], "wild": [1, 1, 0, 0, 0]}
DESCRIPTIONS = {
    "bear": "a large heavy furry animal with four thick legs",
    "bird": "a small animal with wings and feathers that can fly",
    "cat": "a small furry pet with whiskers and a long tail",
    "cow": "a large farm animal with horns and four legs",
    "dog": "a furry pet with four legs that barks",
}


def _animal_images(per_class: int) -> dict[str, np.ndarray]:
    raw = load_animal_mnist()
    return {name: raw.images[raw.labels == raw.class_names.index(name)][:per_class]
            for name in CLASSES}


def write_image_folder(root: Path, per_class: int = IMAGES_PER_CLASS, nested: bool = True) -> Path:
    """root/<class>/[sub/]NN.png: Animal-MNIST silhouettes, 32x32 RGB (a few in a sub-folder)."""
    for name, images in _animal_images(per_class).items():
        for i, pixels in enumerate(images):
            folder = root / name / ("more" if nested and i % 4 == 3 else "")
            folder.mkdir(parents=True, exist_ok=True)
            image = Image.fromarray(pixels).convert("RGB").resize((IMAGE_SIDE, IMAGE_SIDE))
            image.save(folder / f"{i:02d}.png")
    return root


def add_bad_files(root: Path) -> list[str]:
    """A truncated PNG and a text file named .jpg; returns their relative paths."""
    good = (root / "cat" / "00.png").read_bytes()
    (root / "cat" / "truncated.png").write_bytes(good[: len(good) // 2])
    (root / "dog" / "not_an_image.jpg").write_text("this is not an image\n")
    (root / "dog" / "notes.txt").write_text("ignored: not an image extension\n")
    return ["cat/truncated.png", "dog/not_an_image.jpg"]


def write_attributes(path: Path, classes=CLASSES, delimiter: str = ",") -> Path:
    header = ["class", *ATTRIBUTES]
    rows = [[name, *(str(ATTRIBUTES[a][CLASSES.index(name)]) for a in ATTRIBUTES)]
            for name in classes]
    path.write_text("\n".join(delimiter.join(row) for row in [header, *rows]) + "\n")
    return path


def write_descriptions(path: Path, classes=CLASSES) -> Path:
    chosen = {c: DESCRIPTIONS[c] for c in classes}
    if path.suffix == ".json":
        path.write_text(json.dumps(chosen))
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps({"class": c, "text": t}) + "\n"
                                for c, t in chosen.items()))
    else:
        path.write_text("".join(f"{c}: {t}\n" for c, t in chosen.items()))
    return path


def save_tiny_resnet(directory: Path, seed: int = 0) -> Path:
    """A random 2-stage transformers ResNet + a processor with a fixed 32x32 output."""
    import torch
    from transformers import ResNetConfig, ResNetModel

    config = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1],
                          layer_type="basic")
    torch.manual_seed(seed)
    ResNetModel(config).save_pretrained(directory)
    processor = {"image_processor_type": "ViTImageProcessor", "do_resize": True, "resample": 2,
                 "size": {"height": 32, "width": 32}, "do_rescale": True,
                 "rescale_factor": 1 / 255, "do_normalize": True,
                 "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}
    (Path(directory) / "preprocessor_config.json").write_text(json.dumps(processor))
    return Path(directory)
