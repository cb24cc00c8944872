"""PixelCache: uint8 memmap of preprocessed images, resumable after an interrupted build."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from unseen.backbones.image_processing import ImagePreprocessor
from unseen.errors import UnseenInputError
from unseen.methods.duet.pixel_cache import PixelCache, cache_key

NUM_IMAGES = 7


class Interrupted(RuntimeError):
    pass


class CountingPreprocessor(ImagePreprocessor):
    """The EfficientNet input at 32 px, counting `to_uint8` calls and failing on call `fail_at`."""

    def __init__(self, fail_at: int | None = None) -> None:
        base = ImagePreprocessor.for_efficientnet_lite0(32)
        super().__init__(base.processor, base.name)
        self.calls, self.fail_at = 0, fail_at

    def to_uint8(self, image: Image.Image) -> np.ndarray:
        self.calls += 1
        if self.calls == self.fail_at:
            raise Interrupted(f"killed at image {self.calls}")
        return super().to_uint8(image)


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("pictures")
    rng = np.random.default_rng(0)
    out = []
    for k in range(NUM_IMAGES):
        out.append(folder / f"{k}.png")
        Image.fromarray(rng.integers(0, 256, (40 + k, 50, 3), dtype=np.uint8)).save(out[-1])
    return out


def test_interrupted_build_resumes_and_matches_an_uninterrupted_one(paths: list[Path],
                                                                    tmp_path: Path) -> None:
    reference = PixelCache.build(paths, CountingPreprocessor(), tmp_path / "clean",
                                 progress=False, chunk_size=2)
    broken = CountingPreprocessor(fail_at=6)  # chunks [0,1] [2,3] are flushed, [4,5] is not
    with pytest.raises(Interrupted):
        PixelCache.build(paths, broken, tmp_path / "resumed", progress=False, chunk_size=2)
    sidecar = json.loads(next((tmp_path / "resumed").glob("*.json")).read_text())
    assert sidecar["rows_done"] == 4 and sidecar["complete"] is False

    resuming = CountingPreprocessor()
    cache = PixelCache.build(paths, resuming, tmp_path / "resumed", progress=False, chunk_size=2)
    assert resuming.calls == NUM_IMAGES - 4  # only the rows not yet on disk
    assert len(cache) == NUM_IMAGES and cache.shape == (NUM_IMAGES, 32, 32, 3)
    rows = np.arange(NUM_IMAGES)
    assert torch.equal(cache.uint8(rows), reference.uint8(rows))

    reusing = CountingPreprocessor()
    PixelCache.build(paths, reusing, tmp_path / "resumed", progress=False)
    assert reusing.calls == 0
    assert json.loads(next((tmp_path / "resumed").glob("*.json")).read_text())["complete"]


def test_pixels_equal_the_preprocessor_and_pickle_without_data(paths: list[Path],
                                                               tmp_path: Path) -> None:
    preprocessor = ImagePreprocessor.for_efficientnet_lite0(32)
    cache = PixelCache.build(paths, preprocessor, tmp_path, progress=False, chunk_size=3)
    rows = np.array([5, 0, 5])
    expected = preprocessor([Image.open(paths[r]) for r in rows])
    assert torch.allclose(cache.pixels(rows), expected, atol=1e-6)
    blob = pickle.dumps(cache)
    assert len(blob) < NUM_IMAGES * 32 * 32 * 3  # the memmap is reopened, not copied
    assert torch.equal(pickle.loads(blob).uint8(rows), cache.uint8(rows))


def test_key_depends_on_paths_and_settings_and_workers_agree(paths: list[Path],
                                                            tmp_path: Path) -> None:
    small, large = (ImagePreprocessor.for_efficientnet_lite0(r) for r in (32, 64))
    assert cache_key(paths, small) != cache_key(paths, large)
    assert cache_key(paths, small) != cache_key(paths[::-1], small)
    assert cache_key(paths, small) == cache_key(list(paths), ImagePreprocessor(small.processor))
    serial = PixelCache.build(paths, small, tmp_path / "serial", progress=False)
    parallel = PixelCache.build(paths, small, tmp_path / "parallel", progress=False,
                                chunk_size=4, num_workers=2)
    rows = np.arange(NUM_IMAGES)
    assert torch.equal(serial.uint8(rows), parallel.uint8(rows))


def test_unreadable_image_is_named(paths: list[Path], tmp_path: Path) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(UnseenInputError, match="broken.jpg"):
        PixelCache.build([paths[0], bad], ImagePreprocessor.for_efficientnet_lite0(32),
                         tmp_path / "cache", progress=False)
