"""Preprocessed images as one uint8 memmap [N, H, W, 3]: decode and resize each JPEG once.

The DUET reference pickles every image as float32 3x224x224 and loads the whole pickle into RAM
(~22 GB for AWA2). Here the backbone's resize/crop output is stored as uint8 (4x smaller) in a
memory-mapped file and normalised per batch (`pixels`), on the device that will use it.

The build is resumable: a sidecar JSON records how many rows are written and is updated after
each chunk is flushed, so a killed build continues where it stopped; a finished cache is marked
complete and reused. The file name is a hash of the paths and the preprocessor settings.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from unseen.backbones.image_processing import ImagePreprocessor
from unseen.errors import UnseenInputError, input_error
from unseen.io import atomic_write_json

FORMAT_VERSION = 1
DEFAULT_CHUNK = 256


def cache_key(paths: list[Path], preprocessor: ImagePreprocessor) -> str:
    """16 hex digits identifying (image paths in order, preprocessor settings, format)."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"version": FORMAT_VERSION, "preprocessor": preprocessor.config()},
                             sort_keys=True).encode())
    for path in paths:
        digest.update(str(path).encode() + b"\0")
    return digest.hexdigest()[:16]


def load_uint8(path: Path, preprocessor: ImagePreprocessor) -> np.ndarray:
    """One image file -> the preprocessor's resized/cropped uint8 [H, W, 3]."""
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
    except OSError as error:
        raise input_error(str(path), None, "a readable image file",
                          f"{type(error).__name__}: {error}") from error
    return preprocessor.to_uint8(image)


_worker_preprocessor: ImagePreprocessor | None = None


def _init_worker(preprocessor: ImagePreprocessor) -> None:
    global _worker_preprocessor
    _worker_preprocessor = preprocessor


def _load_in_worker(path: Path) -> np.ndarray:
    assert _worker_preprocessor is not None
    return load_uint8(path, _worker_preprocessor)


class PixelCache:
    """Read access to a built cache; `build` creates or resumes one."""

    def __init__(self, data_path: Path, shape: tuple[int, int, int, int],
                 preprocessor: ImagePreprocessor) -> None:
        self.data_path = Path(data_path)
        self.shape = tuple(int(s) for s in shape)
        self.preprocessor = preprocessor
        self._array: np.memmap | None = None

    @classmethod
    def build(cls, paths: list[Path], preprocessor: ImagePreprocessor, cache_dir: Path,
              progress: bool = True, chunk_size: int = DEFAULT_CHUNK,
              num_workers: int = 0) -> PixelCache:
        """Create, resume or reuse the cache of `paths` (rows in that order) under `cache_dir`.

        Memory stays bounded by `chunk_size` images; `num_workers` > 0 decodes in processes.
        """
        paths = [Path(p) for p in paths]
        if not paths:
            raise UnseenInputError("pixel cache: expected at least one image path, found none")
        cache_dir = Path(cache_dir)
        cache_dir.mkdir(parents=True, exist_ok=True)
        key = cache_key(paths, preprocessor)
        data_path = cache_dir / f"pixels-{key}.u8"
        state_path = cache_dir / f"pixels-{key}.json"
        state = _read_state(state_path, data_path, len(paths))
        if state is None:
            height, width = preprocessor.output_size or load_uint8(paths[0], preprocessor).shape[:2]
            state = {"version": FORMAT_VERSION, "key": key, "rows": len(paths),
                     "height": int(height), "width": int(width),
                     "rows_done": 0, "complete": False, "preprocessor": preprocessor.config(),
                     "first_path": str(paths[0]), "last_path": str(paths[-1])}
            np.memmap(data_path, np.uint8, "w+", shape=(len(paths), height, width, 3)).flush()
            atomic_write_json(state_path, state)
        shape = (len(paths), state["height"], state["width"], 3)
        if not state["complete"]:
            _fill(paths, preprocessor, data_path, state_path, state, shape, progress,
                  max(1, chunk_size), num_workers)
        return cls(data_path, shape, preprocessor)

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def array(self) -> np.memmap:
        """The read-only memmap [N, H, W, 3], opened lazily (and again in each worker)."""
        if self._array is None:
            self._array = np.memmap(self.data_path, np.uint8, "r", shape=self.shape)
        return self._array

    def uint8(self, rows: np.ndarray) -> torch.Tensor:
        """uint8 pixels [n, H, W, 3] of the given rows."""
        rows = np.asarray(rows, dtype=np.int64)
        return torch.from_numpy(np.ascontiguousarray(self.array[rows]))

    def pixels(self, rows: np.ndarray) -> torch.Tensor:
        """Normalised float32 pixels [n, 3, H, W] of the given rows."""
        return self.preprocessor.normalise(self.uint8(rows))

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_array"] = None  # never pickle the mapped data into DataLoader workers
        return state


def _read_state(state_path: Path, data_path: Path, rows: int) -> dict | None:
    """The sidecar of a build that can be continued or reused, else None (start afresh)."""
    if not state_path.is_file() or not data_path.is_file():
        return None
    try:
        state = json.loads(state_path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    expected_bytes = rows * state.get("height", 0) * state.get("width", 0) * 3
    if (state.get("version") != FORMAT_VERSION or state.get("rows") != rows
            or data_path.stat().st_size != expected_bytes):
        return None
    return state


def _fill(paths: list[Path], preprocessor: ImagePreprocessor, data_path: Path,
          state_path: Path, state: dict, shape: tuple[int, ...], progress: bool,
          chunk_size: int, num_workers: int) -> None:
    array = np.memmap(data_path, np.uint8, "r+", shape=shape)
    done = int(state["rows_done"])
    quiet = not (progress and sys.stderr.isatty())
    bar = tqdm(total=len(paths), initial=done, desc="caching pixels", unit="img", disable=quiet)
    try:
        for start, images in _decoded_chunks(paths, done, preprocessor, chunk_size, num_workers):
            for offset, image in enumerate(images):
                if image.shape != shape[1:]:
                    raise input_error(str(paths[start + offset]), None,
                                      f"a preprocessed size of {shape[1:3]} like the first image "
                                      "(the preprocessor must crop or resize to a fixed size)",
                                      f"{image.shape[:2]}")
            array[start:start + len(images)] = np.stack(images)
            array.flush()  # data on disk before the sidecar says it is there
            state["rows_done"] = start + len(images)
            atomic_write_json(state_path, state)
            bar.update(len(images))
        state["complete"] = True
        atomic_write_json(state_path, state)
    finally:
        bar.close()
        del array


def _decoded_chunks(paths: list[Path], start: int, preprocessor: ImagePreprocessor,
                    chunk_size: int, num_workers: int) -> Iterator[tuple[int, list[np.ndarray]]]:
    starts = range(start, len(paths), chunk_size)
    if num_workers <= 0:
        for first in starts:
            yield first, [load_uint8(p, preprocessor) for p in paths[first:first + chunk_size]]
        return
    with ProcessPoolExecutor(num_workers, initializer=_init_worker,
                             initargs=(preprocessor,)) as pool:
        for first in starts:
            chunk = paths[first:first + chunk_size]
            yield first, list(pool.map(_load_in_worker, chunk,
                                       chunksize=max(1, len(chunk) // (4 * num_workers))))
