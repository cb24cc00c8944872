"""ImagePreprocessor: uint8 resize/crop + normalise must equal the HF processor's pixel_values."""

from __future__ import annotations

import pickle
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image
from transformers import DeiTImageProcessor, ViTImageProcessor

from unseen.backbones.image_processing import ImagePreprocessor
from unseen.errors import UnseenInputError

IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def _images() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    photo = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    images = [Image.fromarray(rng.integers(0, 256, (300, 410, 3), dtype=np.uint8)),
              Image.fromarray(rng.integers(0, 256, (90, 60), dtype=np.uint8), mode="L"),
              Image.fromarray(rng.integers(0, 256, (257, 256, 4), dtype=np.uint8), mode="RGBA")]
    if photo.is_file():
        images.append(Image.open(photo).convert("RGB"))
    return images


@pytest.fixture(scope="module")
def deit_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The hub's deit-base-distilled-patch16-224 config: 256 bicubic square resize, 224 crop.
    directory = tmp_path_factory.mktemp("deit")
    DeiTImageProcessor(image_mean=IMAGENET_MEAN, image_std=IMAGENET_STD).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def vit_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Swin's hub config is a ViT processor: 224 bicubic square resize, no crop.
    directory = tmp_path_factory.mktemp("vit")
    ViTImageProcessor(size={"height": 224, "width": 224}, resample=3, image_mean=IMAGENET_MEAN,
                      image_std=IMAGENET_STD).save_pretrained(directory)
    return directory


@pytest.mark.parametrize("which", ["deit", "vit"])
def test_normalise_of_uint8_equals_the_hf_processor(which: str, deit_dir: Path,
                                                    vit_dir: Path) -> None:
    preprocessor = ImagePreprocessor.from_model_dir(deit_dir if which == "deit" else vit_dir)
    assert preprocessor.output_size == (224, 224)
    for image in _images():
        rgb = image.convert("RGB")
        expected = preprocessor.processor(rgb, return_tensors="pt")["pixel_values"]
        cached = preprocessor.to_uint8(image)
        assert cached.dtype == np.uint8 and cached.shape == (224, 224, 3)
        ours = preprocessor.normalise(torch.from_numpy(cached))
        assert ours.shape == (1, 3, 224, 224) and ours.dtype == torch.float32
        assert torch.allclose(ours, expected, atol=1e-5), (ours - expected).abs().max()
    batch = preprocessor(_images()[:2])
    assert batch.shape == (2, 3, 224, 224)


def test_deit_resizes_square_then_crops_the_centre(deit_dir: Path) -> None:
    preprocessor = ImagePreprocessor.from_model_dir(deit_dir)
    image = np.zeros((256, 256, 3), np.uint8)
    image[16:240, 16:240] = 200  # exactly the 224 centre at the 256 working size
    out = preprocessor.to_uint8(Image.fromarray(image))
    assert out.min() == 200 and out.max() == 200
    assert preprocessor.config()["crop_size"] == {"height": 224, "width": 224}


def test_efficientnet_lite0_input_matches_the_backbone_module() -> None:
    from unseen.backbones.efficientnet_lite import preprocess

    preprocessor = ImagePreprocessor.for_efficientnet_lite0(64)
    image = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    ours = preprocessor([Image.fromarray(image)])
    assert torch.allclose(ours, preprocess(image[None], 64), atol=1e-5)
    pixels = torch.tensor([[[[127, 255, 0]]]], dtype=torch.uint8)
    assert preprocessor.normalise(pixels).flatten().tolist() == pytest.approx(
        [0.0, 1.0, -127 / 128], abs=1e-6)
    with pytest.raises(UnseenInputError):
        ImagePreprocessor.for_efficientnet_lite0(50)


def test_bad_inputs_and_pickling(tmp_path: Path, deit_dir: Path) -> None:
    with pytest.raises(UnseenInputError, match="preprocessor_config.json"):
        ImagePreprocessor.from_model_dir(tmp_path)
    preprocessor = ImagePreprocessor.from_model_dir(deit_dir)
    with pytest.raises(UnseenInputError, match="\\[n, H, W, 3\\]"):
        preprocessor.normalise(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))
    preprocessor.normalise(torch.zeros(1, 4, 4, 3, dtype=torch.uint8))  # fills the device cache
    clone = pickle.loads(pickle.dumps(preprocessor))
    image = _images()[0]
    assert np.array_equal(clone.to_uint8(image), preprocessor.to_uint8(image))
    assert clone.config() == preprocessor.config()
