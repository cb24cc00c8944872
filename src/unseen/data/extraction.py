"""Backbone features of image files, streamed into a `FeatureCache`.

DataLoader workers read each file once: they hash its bytes (the cache key) and, unless the key
is already cached, decode it and run the backbone's uint8 preprocessing. The main process
normalises on the device and runs the model under `torch.inference_mode` (bf16/fp16 autocast on
CUDA). Only one batch per worker is in flight, and features go to disk in chunks, so memory does
not grow with the number of images. Unreadable files are reported, not fatal.

Under torchrun each rank takes every world_size-th batch of the same global batching, so each
image is computed in the same batch as in a one-process build: the merged features are equal.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset

from unseen.backbones.auto import Backbone
from unseen.backbones.image_processing import ImagePreprocessor
from unseen.data.feature_cache import FeatureCache


@dataclass
class _Item:
    index: int
    key: bytes
    pixels: np.ndarray | None  # uint8 [H, W, 3]; None when cached or unreadable
    error: str | None = None


class _ImageFiles(Dataset):
    """Reads, hashes and (unless cached) decodes one image file per item."""

    def __init__(self, paths: list[Path], preprocessor: ImagePreprocessor,
                 cached: frozenset[bytes]) -> None:
        self.paths, self.preprocessor, self.cached = paths, preprocessor, cached

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> _Item:
        path = self.paths[index]
        try:
            data = path.read_bytes()
        except OSError as error:
            return _Item(index, b"", None, f"{type(error).__name__}: {error}")
        key = hashlib.sha256(data).digest()
        if key in self.cached:
            return _Item(index, key, None)
        try:
            with Image.open(io.BytesIO(data)) as image:
                image.load()  # a truncated file fails here, not later in the batch
                return _Item(index, key, self.preprocessor.to_uint8(image))
        except UnidentifiedImageError:
            return _Item(index, key, None, "not an image format Pillow reads")
        except Exception as error:  # noqa: BLE001 - Pillow raises many types for bad files
            return _Item(index, key, None, f"{type(error).__name__}: {error}")


def _as_list(items: list[_Item]) -> list[_Item]:
    return items


@dataclass
class ExtractionResult:
    """Per image of this process's shard: content key (b"" when unreadable), and errors."""

    keys: dict[int, bytes]
    errors: dict[int, str]
    computed: int  # images that went through the model (the rest were cached)


def precision_for(device: torch.device) -> str:
    if device.type != "cuda":
        return "float32"
    return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"


def shard_batches(n: int, batch_size: int, rank: int = 0, world_size: int = 1) -> list[list[int]]:
    """Batches [start, start + batch_size) of range(n); rank r takes batches r, r + W, ..."""
    batches = [list(range(start, min(start + batch_size, n))) for start in range(0, n, batch_size)]
    return batches[rank::world_size]


def extract_to_cache(paths: list[Path], backbone: Backbone, cache: FeatureCache,
                     device: torch.device, batch_size: int = 64, workers: int = 0,
                     rank: int = 0, world_size: int = 1, chunk_size: int = 4096,
                     progress: bool = True) -> ExtractionResult:
    """Compute and cache the features of this rank's share of `paths` that are not cached."""
    cached = frozenset(cache.keys())
    dataset = _ImageFiles(paths, backbone.preprocessor, cached)
    batches = shard_batches(len(paths), batch_size, rank, world_size)
    loader = DataLoader(dataset, batch_sampler=batches, num_workers=workers,
                        collate_fn=_as_list, persistent_workers=False,
                        prefetch_factor=2 if workers else None)
    precision = precision_for(device)
    autocast = (torch.autocast("cuda", dtype=getattr(torch, precision))
                if device.type == "cuda" else contextlib.nullcontext())
    keys: dict[int, bytes] = {}
    errors: dict[int, str] = {}
    computed = 0
    bar = _progress(sum(map(len, batches)), backbone.name, progress and rank == 0)
    with torch.inference_mode(), autocast:
        for items in loader:
            for item in items:
                keys[item.index] = item.key
                if item.error is not None:
                    errors[item.index] = item.error
            fresh = [item for item in items if item.pixels is not None]
            for group in _same_shape_groups(fresh):
                pixels = torch.from_numpy(np.stack([item.pixels for item in group]))
                normalised = backbone.preprocessor.normalise(pixels.to(device, non_blocking=True))
                features = backbone.model(normalised).float().cpu().numpy()
                cache.add([item.key for item in group], features, chunk_size)
                computed += len(group)
            bar.update(len(items))
    bar.close()
    cache.flush()
    return ExtractionResult(keys, errors, computed)


def _same_shape_groups(items: list[_Item]) -> list[list[_Item]]:
    """Items grouped by pixel shape (processors without a fixed output size vary by image)."""
    groups: dict[tuple, list[_Item]] = {}
    for item in items:
        groups.setdefault(item.pixels.shape, []).append(item)
    return list(groups.values())


def _progress(total: int, name: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"features ({name})", unit="img",
                disable=not (enabled and sys.stderr.isatty()))


def default_workers() -> int:
    """Decoding workers per process: the CPUs shared among torchrun's local processes, <= 8."""
    local_processes = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return min(8, (os.cpu_count() or 1) // local_processes)
