"""DUET training and evaluation data: whole batches built in DataLoader workers.

Each item of `DuetTrainingBatches` is one complete training batch: the per-batch branch coin
(mask branch with probability `mask_probability`), masked texts and ACL 6-tuples from the text
builder (part A), pool images for the contrastive terms, padded tensors and uint8 pixels
(normalised later on the device). Every batch draws from its own generator seeded by
(seed, epoch, batch index), so batches do not depend on the number of workers or on which
rank builds them, and a resumed run rebuilds exactly the same batches.

Deviation: the reference pops pool images from per-class lists (descending index order on the
first pass); we draw them uniformly from the class pool with the batch's generator, which
workers can do without shared state. Pools hold the task's training rows only; the reference
also draws test-seen images (spec §6.1), which we do only under `replicate_reference_bugs` on
the test task.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

# Tokenizers are used inside forked workers; their own thread pool would deadlock there.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PixelSource = Callable[[np.ndarray], Tensor]  # global rows -> uint8 [n, H, W, 3]


@dataclass
class DuetBatch:
    """One training batch. Pixels are uint8 [n, H, W, 3] until `normalised`."""

    pixels: Tensor
    labels: Tensor  # [B] seen-local class index
    masked: bool
    input_ids: Tensor | None = None  # [B, L] masked anchor texts
    attention_mask: Tensor | None = None
    label_ids: Tensor | None = None  # [B, L] unmasked anchor texts (padding = pad id)
    mask_positions: Tensor | None = None  # bool [B, L]
    mask_weights: Tensor | None = None  # [B] 3 * w(y, a*)
    contrast_pixels: Tensor | None = None  # [6T, ...] anchor, positive, 4 negatives per tuple
    contrast_ids: Tensor | None = None  # [6T, L']
    contrast_attention: Tensor | None = None
    contrast_positions: Tensor | None = None  # bool [6T, L']
    contrast_weights: Tensor | None = None  # [T]
    view_pixels: Tensor | None = None  # [B, ...] a second same-class image (template branch)

    @property
    def size(self) -> int:
        return int(self.labels.shape[0])

    def to(self, device: torch.device, normalise: Callable[[Tensor], Tensor]) -> DuetBatch:
        """Move to `device` and normalise the uint8 pixel fields there."""
        moved = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Tensor):
                value = value.to(device, non_blocking=True)
                if f.name.endswith("pixels"):
                    value = normalise(value)
            moved[f.name] = value
        return replace(self, **moved)


class ClassPools:
    """Per-class image pools (seen-local classes), drawn from without Python loops."""

    def __init__(self, rows: np.ndarray, classes: np.ndarray, num_classes: int) -> None:
        order = np.argsort(classes, kind="stable")
        self.rows = np.asarray(rows, np.int64)[order]
        counts = np.bincount(np.asarray(classes)[order], minlength=num_classes)
        self.counts = counts
        self.starts = np.concatenate([[0], np.cumsum(counts)[:-1]])

    def draw(self, classes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One uniformly drawn row of each requested class."""
        classes = np.asarray(classes, np.int64)
        counts = self.counts[classes]
        if (counts == 0).any():
            raise ValueError(f"empty image pool for classes {classes[counts == 0][:5].tolist()}")
        offsets = np.floor(rng.random(classes.size) * counts).astype(np.int64)
        return self.rows[self.starts[classes] + offsets]


def pad_to_tensor(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[Tensor, Tensor]:
    """Right-pad token lists: (ids [n, L], attention mask [n, L])."""
    lengths = np.fromiter((len(s) for s in sequences), np.int64, len(sequences))
    width = int(lengths.max()) if lengths.size else 0
    ids = np.full((len(sequences), width), pad_id, np.int64)
    mask = np.arange(width)[None, :] < lengths[:, None]
    ids[mask] = np.fromiter((t for s in sequences for t in s), np.int64, int(lengths.sum()))
    return torch.from_numpy(ids), torch.from_numpy(mask.astype(np.int64))


def positions_mask(positions: Sequence[Sequence[int]], width: int) -> Tensor:
    """Token-position lists -> bool [n, width]."""
    rows = np.repeat(np.arange(len(positions)), [len(p) for p in positions])
    cols = np.fromiter((c for p in positions for c in p), np.int64, rows.size)
    mask = np.zeros((len(positions), width), bool)
    mask[rows, cols] = True
    return torch.from_numpy(mask)


def batch_generator(seed: int, epoch: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch, index, 0xD0E7])


class DuetTrainingBatches(Dataset):
    """Item b = training batch b of the current epoch (call `set_epoch` before iterating)."""

    def __init__(self, rows: np.ndarray, labels: np.ndarray, builder, pixels: PixelSource,
                 pools: ClassPools, batch_size: int, mask_probability: float, pad_id: int,
                 seed: int, build_contrast: bool = True) -> None:
        self.rows = np.asarray(rows, np.int64)
        self.labels = np.asarray(labels, np.int64)  # seen-local class of each row
        self.builder = builder
        self.pixels = pixels
        self.pools = pools
        self.batch_size = batch_size
        self.mask_probability = mask_probability
        self.pad_id = pad_id
        self.seed = seed
        self.build_contrast = build_contrast
        self.epoch = 0
        self.order = self._order(0)

    def _order(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch, 0x5EED]).permutation(self.rows.size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.order = self._order(epoch)

    def __len__(self) -> int:
        return -(-self.rows.size // self.batch_size)

    def __getitem__(self, index: int) -> DuetBatch:
        chosen = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        rng = batch_generator(self.seed, self.epoch, index)
        return self.build(self.rows[chosen], self.labels[chosen], rng)

    def build(self, rows: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> DuetBatch:
        """The batch of these rows: coin, texts, tuples, pool images, padding."""
        pixels = self.pixels(rows)
        label_tensor = torch.from_numpy(labels.copy())
        if rng.random() < self.mask_probability:
            return self._masked(rows, labels, pixels, label_tensor, rng)
        views = None
        if rows.size == self.batch_size:  # the reference's naive contrast needs a full batch
            views = self.pixels(self.pools.draw(labels, rng))
        return DuetBatch(pixels=pixels, labels=label_tensor, masked=False, view_pixels=views)

    def _masked(self, rows, labels, pixels, label_tensor, rng) -> DuetBatch:
        examples = [self.builder.masked_example(int(y), rng) for y in labels]
        input_ids, attention = pad_to_tensor([e.input_ids for e in examples], self.pad_id)
        label_ids, _ = pad_to_tensor([e.label_ids for e in examples], self.pad_id)
        batch = DuetBatch(
            pixels=pixels, labels=label_tensor, masked=True, input_ids=input_ids,
            attention_mask=attention, label_ids=label_ids,
            mask_positions=positions_mask([e.mask_positions for e in examples],
                                          input_ids.shape[1]),
            mask_weights=torch.tensor([e.weight for e in examples], dtype=torch.float32))
        if not self.build_contrast:
            return batch
        tuples = [(i, self.builder.contrast_example(int(y), e, rng))
                  for i, (y, e) in enumerate(zip(labels, examples, strict=True))]
        tuples = [(i, t) for i, t in tuples if t is not None]
        if not tuples:
            return batch
        anchors = np.array([i for i, _ in tuples])
        others = np.array([t.classes[1:] for _, t in tuples], np.int64)  # [T, 5]
        other_pixels = self.pixels(self.pools.draw(others.reshape(-1), rng))
        other_pixels = other_pixels.view(len(tuples), 5, *other_pixels.shape[1:])
        contrast_pixels = torch.cat([pixels[anchors][:, None], other_pixels], 1).flatten(0, 1)
        sequences = [ids for _, t in tuples for ids in t.input_ids]
        contrast_ids, contrast_attention = pad_to_tensor(sequences, self.pad_id)
        batch.contrast_pixels = contrast_pixels
        batch.contrast_ids = contrast_ids
        batch.contrast_attention = contrast_attention
        batch.contrast_positions = positions_mask([p for _, t in tuples for p in t.positions],
                                                  contrast_ids.shape[1])
        batch.contrast_weights = torch.tensor([t.weight for _, t in tuples], dtype=torch.float32)
        return batch


class RowTable:
    """A `PixelSource` stand-in over a precomputed per-image table: rows -> table[rows]
    (the frozen vision trunk's outputs, indexed by benchmark row)."""

    def __init__(self, table: Tensor) -> None:
        self.table = table

    def __len__(self) -> int:
        return int(self.table.shape[0])

    def __call__(self, rows: np.ndarray) -> Tensor:
        return self.table[torch.from_numpy(np.asarray(rows, np.int64))]


def identity(tensor: Tensor) -> Tensor:
    """The `normalise` of inputs that need none (picklable, unlike a lambda)."""
    return tensor


class EvaluationImages(Dataset):
    """Item k = uint8 pixels of the k-th chunk of `rows` (kept in order)."""

    def __init__(self, rows: np.ndarray, pixels: PixelSource, batch_size: int) -> None:
        self.rows = np.asarray(rows, np.int64)
        self.pixels = pixels
        self.batch_size = batch_size

    def __len__(self) -> int:
        return -(-self.rows.size // self.batch_size)

    def __getitem__(self, index: int) -> Tensor:
        return self.pixels(self.rows[index * self.batch_size:(index + 1) * self.batch_size])


def unbatched(item):
    """DataLoader collate for datasets whose items are already batches."""
    return item
