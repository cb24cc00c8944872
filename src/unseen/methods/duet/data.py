"""DUET training and evaluation data: whole batches built in DataLoader workers.

Each item of `DuetTrainingBatches` is one complete training batch: the per-batch branch coin
(mask branch with probability `mask_probability`), masked texts and ACL 6-tuples from the text
builder (part A), pool images for the contrastive terms, padded tensors and uint8 pixels
(normalised later on the device). Every batch draws from its own generator seeded by
(seed, epoch, batch index), so batches do not depend on the number of workers or on which
rank builds them, and a resumed run rebuilds exactly the same batches. Items are addressed by
(epoch, index) pairs (`EpochSampler`), so persistent workers need no per-epoch state.

Pool images (the ACL's positive and negative images, the template branch's second view):
- clean (`ClassPools`): drawn uniformly, with replacement, from the class's training images by
  the batch's own generator, in the worker. A draw depends only on the batch, which is what
  keeps batches independent of worker count, rank and resume point;
- reference (`ReferencePools`, `replicate_reference_bugs`): per-class lists of ALL the class's
  images in ascending index order (test-seen included on the test task, spec §6.1), popped
  from the end; an empty list is refilled from the original and shuffled (spec §1.4). The
  pops depend on every earlier batch, so the batch carries its requests (`PendingPool`) and
  the main process pops them in order (`attach_pool_images`); the pool state is checkpointed.
  Pops happen where the reference pops: the positive's image even when the negatives then
  fail, and one view per sample in template batches even when the batch is not full (the
  image contrast then skips, as coded).

The image-level contrast (template branch) runs only when `contrast_weight != 0`
(`build_contrast`), as in the reference (`construct_loss_weight != 0` gates both terms).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler

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
    # the masked spans as flat positions into [B * L], their sample, and tokens per sample
    # (computed here, so the loss needs no boolean indexing, i.e. no host sync)
    span_index: Tensor | None = None  # [M]
    span_rows: Tensor | None = None  # [M]
    span_counts: Tensor | None = None  # [B] float
    contrast_pixels: Tensor | None = None  # [6T, ...] anchor, positive, 4 negatives per tuple
    contrast_ids: Tensor | None = None  # [6T, L']
    contrast_attention: Tensor | None = None
    contrast_positions: Tensor | None = None  # bool [6T, L']
    contrast_cross_mask: Tensor | None = None  # [6T, L'] reference: each tuple's own padding
    contrast_weights: Tensor | None = None  # [T]
    view_pixels: Tensor | None = None  # [B, ...] a second same-class image (template branch)
    pending_pool: PendingPool | None = None  # reference pools: images still to pop

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


@dataclass
class PendingPool:
    """Pool images a batch asks for, in the reference's pop order: `classes` [n] (seen-local),
    `keep` [n] which pops feed the batch (the others are popped and discarded, as coded)."""

    classes: np.ndarray
    keep: np.ndarray
    target: str  # "views" | "contrast"
    anchors: np.ndarray | None = None  # contrast: batch position of each tuple's anchor


class ClassPools:
    """Per-class image pools (seen-local classes), drawn from without Python loops."""

    stateless = True

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


class ReferencePools:
    """The reference's `seenclass2imageindexs` (spec §1.4): pop from the end of each class's
    list (ascending row order at first, so the first pass runs in descending order); an empty
    list is refilled from the original list and shuffled. State persists across epochs."""

    stateless = False

    def __init__(self, rows: np.ndarray, classes: np.ndarray, num_classes: int,
                 seed: int) -> None:
        rows, classes = np.asarray(rows, np.int64), np.asarray(classes, np.int64)
        order = np.argsort(rows, kind="stable")
        rows, classes = rows[order], classes[order]
        self.original = [rows[classes == c] for c in range(num_classes)]  # once per task
        self.remaining = [list(map(int, pool)) for pool in self.original]
        self.rng = np.random.default_rng([seed, 0x9001])

    @property
    def rows(self) -> np.ndarray:
        """Every row any pool holds."""
        return np.concatenate(self.original) if self.original else np.zeros(0, np.int64)

    def take(self, classes: np.ndarray) -> np.ndarray:
        """Pop one row per requested class, in order (a pop depends on every earlier one, so
        this is a loop over the <= 6B requests of a batch)."""
        out = np.empty(len(classes), np.int64)
        for k, c in enumerate(np.asarray(classes, np.int64).tolist()):
            pool = self.remaining[c]
            if not pool:
                if self.original[c].size == 0:
                    raise ValueError(f"empty image pool for class {c}")
                pool = self.original[c].tolist()
                self.rng.shuffle(pool)
                self.remaining[c] = pool
            out[k] = pool.pop()
        return out

    def state_dict(self) -> dict:
        return {"remaining": [list(p) for p in self.remaining],
                "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.remaining = [list(p) for p in state["remaining"]]
        self.rng.bit_generator.state = state["rng"]


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


class EpochSampler(Sampler):
    """Yields (epoch, batch index) pairs: the epoch travels with the index, so persistent
    DataLoader workers build the right epoch's batches. `inner` (a DistributedSampler, or None
    for 0..n-1) gives the indices; `set_epoch(epoch, start)` skips the first `start` of them
    (resuming mid-epoch)."""

    def __init__(self, length: int, inner: Sampler | None = None) -> None:
        self.length = length
        self.inner = inner
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start
        if self.inner is not None and hasattr(self.inner, "set_epoch"):
            self.inner.set_epoch(epoch)

    def __len__(self) -> int:
        return (len(self.inner) if self.inner is not None else self.length) - self.start

    def __iter__(self):
        indices = iter(self.inner) if self.inner is not None else iter(range(self.length))
        for position, index in enumerate(indices):
            if position >= self.start:
                yield self.epoch, int(index)


class DuetTrainingBatches(Dataset):
    """Item b = training batch b of the current epoch (call `set_epoch` before iterating)."""

    def __init__(self, rows: np.ndarray, labels: np.ndarray, builder, pixels: PixelSource,
                 pools: ClassPools | ReferencePools, batch_size: int, mask_probability: float,
                 pad_id: int, seed: int, build_contrast: bool = True,
                 per_tuple_padding: bool = False) -> None:
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
        # reference: each ACL tuple is its own forward, padded to its own longest text, and the
        # X-layer attends that padding; batched, the X-layer masks only the extra padding
        self.per_tuple_padding = per_tuple_padding
        self.epoch = 0
        self._orders: dict[int, np.ndarray] = {}

    def order(self, epoch: int) -> np.ndarray:
        if epoch not in self._orders:
            self._orders = {epoch: np.random.default_rng([self.seed, epoch, 0x5EED]).permutation(
                self.rows.size)}
        return self._orders[epoch]

    def set_epoch(self, epoch: int) -> None:
        """The epoch of plain integer indices (an `EpochSampler` passes it with the index)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-self.rows.size // self.batch_size)

    def __getitem__(self, key: int | tuple[int, int]) -> DuetBatch:
        epoch, index = key if isinstance(key, tuple) else (self.epoch, key)
        chosen = self.order(epoch)[index * self.batch_size:(index + 1) * self.batch_size]
        rng = batch_generator(self.seed, epoch, index)
        return self.build(self.rows[chosen], self.labels[chosen], rng)

    def build(self, rows: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> DuetBatch:
        """The batch of these rows: coin, texts, tuples, pool images, padding."""
        pixels = self.pixels(rows)
        label_tensor = torch.from_numpy(labels.copy())
        if rng.random() < self.mask_probability:
            return self._masked(rows, labels, pixels, label_tensor, rng)
        batch = DuetBatch(pixels=pixels, labels=label_tensor, masked=False)
        if not self.build_contrast:
            return batch
        full = rows.size == self.batch_size  # the reference's naive contrast needs a full batch
        if self.pools.stateless:
            if full:
                batch.view_pixels = self.pixels(self.pools.draw(labels, rng))
            return batch
        # the reference pops one view per sample even when the batch is not full
        batch.pending_pool = PendingPool(np.asarray(labels, np.int64),
                                         np.full(labels.size, full), "views")
        return batch

    def attach_pool_images(self, batch: DuetBatch) -> DuetBatch:
        """Pop a batch's pending pool images from the reference pools (main process, in
        batch order) and attach the kept ones."""
        pending = batch.pending_pool
        if pending is None:
            return batch
        rows = self.pools.take(pending.classes)[pending.keep]
        batch.pending_pool = None
        if rows.size:
            self._attach(batch, pending.target, rows, pending.anchors)
        return batch

    def _attach(self, batch: DuetBatch, target: str, rows: np.ndarray,
                anchors: np.ndarray | None) -> None:
        images = self.pixels(rows)
        if target == "views":
            batch.view_pixels = images
            return
        images = images.view(anchors.size, 5, *images.shape[1:])
        batch.contrast_pixels = torch.cat([batch.pixels[anchors][:, None], images], 1).flatten(0, 1)

    def _masked(self, rows, labels, pixels, label_tensor, rng) -> DuetBatch:
        examples = [self.builder.masked_example(int(y), rng) for y in labels]
        input_ids, attention = pad_to_tensor([e.input_ids for e in examples], self.pad_id)
        label_ids, _ = pad_to_tensor([e.label_ids for e in examples], self.pad_id)
        width = input_ids.shape[1]
        spans = [e.mask_positions for e in examples]
        counts = np.fromiter((len(p) for p in spans), np.int64, len(spans))
        span_rows = np.repeat(np.arange(len(spans)), counts)
        span_cols = np.fromiter((c for p in spans for c in p), np.int64, span_rows.size)
        batch = DuetBatch(
            pixels=pixels, labels=label_tensor, masked=True, input_ids=input_ids,
            attention_mask=attention, label_ids=label_ids,
            mask_positions=positions_mask(spans, width),
            mask_weights=torch.tensor([e.weight for e in examples], dtype=torch.float32),
            span_index=torch.from_numpy(span_rows * width + span_cols),
            span_rows=torch.from_numpy(span_rows),
            span_counts=torch.from_numpy(counts.astype(np.float32)))
        if not self.build_contrast:
            return batch
        drawn = [(i, self.builder.contrast_example(int(y), e, rng))
                 for i, (y, e) in enumerate(zip(labels, examples, strict=True))]
        drawn = [(i, t) for i, t in drawn if t is not None]
        tuples = [(i, t) for i, t in drawn if t.complete]
        anchors = np.array([i for i, _ in tuples], np.int64)
        if self.pools.stateless:
            if tuples:
                others = np.array([t.classes[1:] for _, t in tuples], np.int64)  # [T, 5]
                self._attach(batch, "contrast", self.pools.draw(others.reshape(-1), rng), anchors)
        else:  # the reference pops the positive's image even when the negatives then fail
            classes = [np.asarray(t.classes[1:], np.int64) for _, t in drawn]
            if classes:
                keep = [np.full(c.size, t.complete) for c, (_, t) in zip(classes, drawn,
                                                                         strict=True)]
                batch.pending_pool = PendingPool(np.concatenate(classes), np.concatenate(keep),
                                                 "contrast", anchors)
        if not tuples:
            return batch
        sequences = [ids for _, t in tuples for ids in t.input_ids]
        contrast_ids, contrast_attention = pad_to_tensor(sequences, self.pad_id)
        batch.contrast_ids = contrast_ids
        batch.contrast_attention = contrast_attention
        batch.contrast_positions = positions_mask([p for _, t in tuples for p in t.positions],
                                                  contrast_ids.shape[1])
        if self.per_tuple_padding:
            lengths = contrast_attention.sum(1).view(-1, 6).amax(1).repeat_interleave(6)
            batch.contrast_cross_mask = (torch.arange(contrast_ids.shape[1])[None]
                                         < lengths[:, None]).long()
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
