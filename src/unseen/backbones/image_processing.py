"""A backbone's own image preprocessing, split into a uint8 part and a normalising part.

`to_uint8` resizes and crops exactly as the backbone's Hugging Face image processor does (it *is*
that processor, run with rescaling and normalisation switched off), so its output can be cached
as uint8 (4x smaller than float32). `normalise` then applies the processor's rescale factor and
mean/std on tensors, on any device, so `normalise(to_uint8(image))` equals the processor's
`pixel_values`. Only the PIL ("slow") processors are used: they need no torchvision.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from unseen.errors import UnseenInputError, input_error


class ImagePreprocessor:
    """Wraps a PIL-backend HF image processor; see the module docstring."""

    def __init__(self, processor: Any, name: str = "") -> None:
        self.processor = processor
        self.name = name or type(processor).__name__
        rescale = float(processor.rescale_factor) if processor.do_rescale else 1.0
        if processor.do_normalize:
            mean = np.asarray(processor.image_mean, dtype=np.float32).reshape(-1)
            std = np.asarray(processor.image_std, dtype=np.float32).reshape(-1)
        else:
            mean, std = np.zeros(3, np.float32), np.ones(3, np.float32)
        self.rescale_factor = rescale
        self.mean = np.broadcast_to(mean, (3,)).copy()
        self.std = np.broadcast_to(std, (3,)).copy()
        self._stats: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    @classmethod
    def from_model_dir(cls, model_dir: Path | str) -> ImagePreprocessor:
        """Load the image processor saved beside a model (`preprocessor_config.json`), offline."""
        from transformers import AutoImageProcessor

        source = str(model_dir)
        if Path(source).is_dir() and not (Path(source) / "preprocessor_config.json").is_file():
            raise input_error(source, None, "a model directory with a preprocessor_config.json",
                              f"only {sorted(p.name for p in Path(source).iterdir())[:8]}")
        try:
            try:
                processor = AutoImageProcessor.from_pretrained(source, backend="pil",
                                                               local_files_only=True)
            except TypeError:  # transformers releases before the `backend` argument
                processor = AutoImageProcessor.from_pretrained(source, use_fast=False,
                                                               local_files_only=True)
        except (OSError, ValueError) as error:
            raise input_error(source, None, "a local model directory or cached hub id with an "
                              "image processor config",
                              f"{type(error).__name__}: {error}") from error
        return cls(processor, name=Path(source).name)

    @classmethod
    def for_efficientnet_lite0(cls, resolution: int = 224) -> ImagePreprocessor:
        """Input of `unseen.backbones.efficientnet_lite`: square bilinear resize to `resolution`,
        then (pixel - 127) / 128, the TensorFlow Lite checkpoint's own normalisation."""
        from transformers.image_processing_backends import PilBackend

        from unseen.backbones.efficientnet_lite import PIXEL_MEAN, PIXEL_STD, check_resolution

        resolution = check_resolution(resolution)
        processor = PilBackend(
            do_resize=True, size={"height": resolution, "width": resolution},
            resample=Image.Resampling.BILINEAR, do_center_crop=False, do_rescale=True,
            rescale_factor=1 / 255, do_normalize=True, image_mean=[PIXEL_MEAN / 255] * 3,
            image_std=[PIXEL_STD / 255] * 3)
        return cls(processor, name=f"efficientnet-lite0@{resolution}")

    @property
    def output_size(self) -> tuple[int, int] | None:
        """(height, width) of every `to_uint8` output, or None when it depends on the image."""
        p = self.processor
        if getattr(p, "do_center_crop", False) and p.crop_size is not None:
            return int(p.crop_size["height"]), int(p.crop_size["width"])
        size = p.size if getattr(p, "do_resize", False) else None
        if size is not None and size.get("height") and size.get("width"):
            return int(size["height"]), int(size["width"])
        return None

    def config(self) -> dict:
        """JSON-able description of everything that changes the output (for cache keys)."""
        return json.loads(json.dumps(self.processor.to_dict(), default=str))

    def to_uint8(self, image: Image.Image) -> np.ndarray:
        """Resized and cropped exactly as the processor does, as uint8 [H, W, 3]."""
        if image.mode != "RGB":
            image = image.convert("RGB")
        out = self.processor(image, do_rescale=False, do_normalize=False)["pixel_values"][0]
        out = np.asarray(out)
        if out.dtype != np.uint8:  # a processor step that already converted to float
            out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.moveaxis(out, 0, -1))

    def normalise(self, pixels_uint8: torch.Tensor | np.ndarray) -> torch.Tensor:
        """uint8 [n, H, W, 3] (or [H, W, 3]) -> float32 [n, 3, H, W] on the input's device."""
        pixels = torch.as_tensor(pixels_uint8)
        if pixels.ndim == 3:
            pixels = pixels[None]
        if pixels.ndim != 4 or pixels.shape[-1] != 3:
            raise UnseenInputError(f"{self.name}: normalise expects uint8 pixels [n, H, W, 3], "
                                   f"found shape {tuple(pixels.shape)}")
        scale, shift = self._device_stats(pixels.device)
        # (x * rescale - mean) / std as one multiply-add, on a channel-first uint8 copy first
        # (permuting the float tensor instead is ~2.5x slower on CPU).
        channels_first = pixels.permute(0, 3, 1, 2).contiguous().to(torch.float32)
        return channels_first.mul_(scale).add_(shift)

    def __call__(self, images: list[Image.Image]) -> torch.Tensor:
        """Float pixel values [n, 3, H, W], like the processor's `pixel_values`."""
        return self.normalise(np.stack([self.to_uint8(image) for image in images]))

    def _device_stats(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if device not in self._stats:
            scale = self.rescale_factor / self.std.astype(np.float64)
            shift = -self.mean.astype(np.float64) / self.std.astype(np.float64)
            self._stats[device] = (
                torch.tensor(scale, dtype=torch.float32, device=device).view(1, 3, 1, 1),
                torch.tensor(shift, dtype=torch.float32, device=device).view(1, 3, 1, 1))
        return self._stats[device]

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_stats"] = {}  # device tensors are rebuilt lazily in a worker
        return state

    def __repr__(self) -> str:
        return (f"ImagePreprocessor({self.name!r}, output_size={self.output_size}, "
                f"mean={self.mean.tolist()}, std={self.std.tolist()})")
