"""The packaged EfficientNet-Lite0: really pretrained, preprocessing, batched extraction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from unseen.backbones.efficientnet_lite import (
    FEATURE_DIM,
    PIXEL_MEAN,
    PIXEL_STD,
    EfficientNetLite0Features,
    extract_features,
    extract_features_from_files,
    load_efficientnet_lite0,
    preprocess,
)
from unseen.errors import UnseenInputError

GRACE_HOPPER = Path(__import__("matplotlib").get_data_path()) / "sample_data" / "grace_hopper.jpg"
MILITARY_UNIFORM = 652  # ImageNet class index


@pytest.fixture(scope="module")
def encoder() -> EfficientNetLite0Features:
    return EfficientNetLite0Features()


def _images(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    images = np.full((n, 28, 28), 255, np.uint8)
    for i in range(n):  # a dark blob of varying size on white
        size = 6 + 2 * i
        images[i, 14 - size // 2:14 + size // 2, 14 - size // 2:14 + size // 2] = 0
    noisy = images.astype(int) + rng.integers(-10, 10, images.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def test_weights_are_the_pretrained_ones_not_a_fresh_init() -> None:
    from efficientnet_lite_pytorch import EfficientNet

    pretrained = load_efficientnet_lite0().state_dict()
    torch.manual_seed(0)
    fresh = EfficientNet.from_name("efficientnet-lite0").state_dict()
    assert set(pretrained) == set(fresh)
    assert not torch.equal(pretrained["_fc.weight"], fresh["_fc.weight"])
    assert not torch.equal(pretrained["_conv_stem.weight"], fresh["_conv_stem.weight"])
    # Trained batch norm statistics are far from the init (mean 0, var 1).
    assert pretrained["_bn1.running_var"].std() > 0.1


@pytest.mark.skipif(not GRACE_HOPPER.is_file(), reason="matplotlib sample image missing")
def test_real_photo_is_classified_as_imagenet_would(encoder: EfficientNetLite0Features) -> None:
    from PIL import Image

    with Image.open(GRACE_HOPPER) as image:
        pixels = np.asarray(image.convert("RGB").resize((224, 224)))[None]
    with torch.inference_mode():
        _, logits = encoder(preprocess(pixels, 224))
    probabilities = logits.softmax(dim=1)[0]
    assert int(probabilities.argmax()) == MILITARY_UNIFORM
    assert float(probabilities.max()) > 0.3


def test_logits_on_a_synthetic_image_are_far_from_uniform(encoder) -> None:
    features, logits = extract_features(_images(2), 64, encoder=encoder, return_logits=True,
                                        progress=False)
    probabilities = torch.from_numpy(logits).softmax(dim=1)
    entropy = -(probabilities * probabilities.log()).sum(dim=1)
    assert (entropy < np.log(1000) - 1.0).all()
    assert features.shape == (2, FEATURE_DIM) and (features >= 0).all()  # pooled ReLU6 outputs


def test_preprocess_grey_and_rgb_normalisation() -> None:
    grey = np.zeros((2, 28, 28), np.uint8)
    grey[1] = 255
    batch = preprocess(grey, 32)
    assert batch.shape == (2, 3, 32, 32) and batch.dtype == torch.float32
    assert torch.allclose(batch[0], torch.full((3, 32, 32), -PIXEL_MEAN / PIXEL_STD))
    assert torch.allclose(batch[1], torch.full((3, 32, 32), (255 - PIXEL_MEAN) / PIXEL_STD))
    rgb = np.zeros((1, 40, 40, 3), np.uint8)
    rgb[..., 0] = 255
    red = preprocess(rgb, 32)
    assert red[0, 0].min() > 0.99 and red[0, 1].max() < -0.99  # channel order kept
    with pytest.raises(UnseenInputError):
        preprocess(grey.astype(np.float32), 32)
    with pytest.raises(UnseenInputError):
        preprocess(grey, 50)  # not a multiple of 32


def test_extraction_is_batch_invariant_and_matches_the_classifier(encoder) -> None:
    images = _images(5)
    whole, logits = extract_features(images, 64, batch_size=5, encoder=encoder,
                                     return_logits=True, progress=False)
    pieces = extract_features(images, 64, batch_size=2, encoder=encoder, progress=False)
    np.testing.assert_allclose(whole, pieces, rtol=1e-4, atol=1e-5)
    with torch.inference_mode():
        reference = encoder.model(preprocess(images, 64)).numpy()
    np.testing.assert_allclose(logits, reference, rtol=1e-4, atol=1e-4)
    assert np.abs(whole[0] - whole[4]).max() > 1e-2  # different pictures, different features


def test_features_from_files_match_in_memory_extraction(tmp_path: Path, encoder) -> None:
    from PIL import Image

    images = _images(3)
    paths = []
    for i, image in enumerate(images):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(image).resize((96, 80), Image.NEAREST).save(paths[-1])  # any size
    from_files = extract_features_from_files(paths, 64, progress=False)
    rgb = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])  # [3, 80, 96, 3]
    expected = extract_features(rgb, 64, encoder=encoder, progress=False)
    # Files are resized to uint8 first, so the inputs differ by pixel rounding only.
    assert from_files.shape == (3, FEATURE_DIM)
    cosine = (from_files * expected).sum(1) / np.linalg.norm(from_files, axis=1) / np.linalg.norm(
        expected, axis=1)
    assert (cosine > 0.98).all()
    cross = (from_files[0] * expected[2]).sum() / np.linalg.norm(from_files[0]) / np.linalg.norm(
        expected[2])
    assert cross < cosine.min()
    bad = tmp_path / "not_an_image.png"
    bad.write_text("hello")
    with pytest.raises(UnseenInputError, match="not_an_image.png"):
        extract_features_from_files([bad], 64)
