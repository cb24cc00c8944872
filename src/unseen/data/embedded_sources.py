"""Raw images of the embedded benchmarks, read from installed packages (never downloaded).

- `animals`: the `animal-mnist` wheel (v0.4), 10 classes x 1000 silhouettes of 28x28 uint8,
  stored as two gzipped numpy pickles. Its own loader imports tensorflow, so we read the files
  ourselves with a restricted unpickler that can rebuild numpy arrays and nothing else.
- `fashion`: Debian's `dataset-fashion-mnist` (`/usr/share/datasets/fashion-mnist`), the
  10,000-image `t10k` split (1000 per class) in the idx format, so both benchmarks have the
  same size.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unseen.cache import installed_package_dir
from unseen.errors import UnseenInputError, input_error

# The package README lists the classes alphabetically ("Bear, Bird, Cat, Cow, Dog, Elephant,
# Giraffe, Horse, Sheep, Zebra"); labels 0..9 follow that order (label 6 has the narrow,
# tall silhouettes of giraffes, label 5 the widest ones).
ANIMAL_CLASSES = ("bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep",
                  "zebra")
# Fashion-MNIST's documented label order (its README).
FASHION_CLASSES = ("t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt",
                   "sneaker", "bag", "ankle boot")
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")

# Exactly the globals the two animal-mnist pickles reference (checked with pickletools):
# numpy's array reconstructor, ndarray and dtype. Both module spellings are accepted because
# numpy 2 renamed `numpy.core` to `numpy._core`; no builtins are needed.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that rebuilds plain numpy arrays and refuses every other global."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name}: only numpy arrays are allowed")
        if name == "_reconstruct":
            from numpy._core.multiarray import _reconstruct

            return _reconstruct
        return np.ndarray if name == "ndarray" else np.dtype


def restricted_load_array(raw: bytes, source: str) -> np.ndarray:
    """Unpickle `raw` (bytes of a pickle) into a numpy array, refusing anything else."""
    try:
        value = RestrictedUnpickler(io.BytesIO(raw)).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as error:
        raise input_error(source, None, "a pickled numpy array", str(error)) from error
    if not isinstance(value, np.ndarray):
        raise input_error(source, None, "a pickled numpy array", type(value).__name__)
    return value


@dataclass(frozen=True)
class RawImages:
    """Images uint8 [N, H, W], labels int64 [N] in 0..C-1, class names, provenance."""

    name: str
    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    source: dict


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def animal_mnist_dir() -> Path:
    package = installed_package_dir("animal_mnist", "animal-mnist",
                                    "the images of the default benchmark")
    return package / "data" / "Animal_MNIST"


def load_animal_mnist() -> RawImages:
    """The 10,000 Animal-MNIST silhouettes, read without the package's tensorflow loader."""
    directory = animal_mnist_dir()
    files = {"images": directory / "animal_data_version_3.gz",
             "labels": directory / "animal_label_version_3.gz"}
    arrays = {}
    for key, path in files.items():
        if not path.is_file():
            raise input_error(str(path), None, "the animal-mnist data file", "no such file")
        arrays[key] = restricted_load_array(gzip.decompress(path.read_bytes()), str(path))
    images, labels = arrays["images"], arrays["labels"].astype(np.int64)
    if images.dtype != np.uint8 or images.ndim != 3 or labels.shape != (images.shape[0],):
        raise input_error(str(files["images"]), None, "uint8 images [N, 28, 28] with N labels",
                          f"{images.dtype} {images.shape}, labels {labels.shape}")
    source = {"package": "animal-mnist", "files": {k: str(p) for k, p in files.items()},
              "sha256": {k: _file_sha256(p) for k, p in files.items()}}
    return RawImages("animals", images, labels, ANIMAL_CLASSES, source)


def _read_idx(path: Path, expected_dims: int) -> np.ndarray:
    """Read a gzipped idx file (MNIST format: big-endian header, then uint8 data)."""
    raw = gzip.decompress(path.read_bytes())
    magic = int.from_bytes(raw[:4], "big")
    dims = magic & 0xFF
    if magic >> 8 != 0x08 or dims != expected_dims:  # 0x08: unsigned byte data
        raise input_error(str(path), "magic", f"an idx file of uint8 with {expected_dims} dims",
                          f"0x{magic:08x}")
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims))
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * dims)
    if data.size != int(np.prod(shape)):
        raise input_error(str(path), "data", f"{int(np.prod(shape))} bytes for shape {shape}",
                          f"{data.size}")
    return data.reshape(shape)


def fashion_mnist_available(directory: Path = FASHION_DIR) -> bool:
    return all((directory / name).is_file() for name in FASHION_FILES)


def load_fashion_mnist(directory: Path = FASHION_DIR) -> RawImages:
    """Fashion-MNIST's 10,000 test images from Debian's `dataset-fashion-mnist`."""
    if not fashion_mnist_available(directory):
        raise UnseenInputError(f"{directory}: expected Fashion-MNIST's {FASHION_FILES[0]} and "
                               f"{FASHION_FILES[1]} (Debian: apt-get install "
                               "dataset-fashion-mnist), found them missing")
    image_path, label_path = (directory / name for name in FASHION_FILES)
    images = _read_idx(image_path, 3)
    labels = _read_idx(label_path, 1).astype(np.int64)
    if labels.shape != (images.shape[0],):
        raise input_error(str(label_path), None, f"{images.shape[0]} labels", str(labels.shape))
    source = {"package": "dataset-fashion-mnist (Debian)",
              "files": {"images": str(image_path), "labels": str(label_path)},
              "sha256": {"images": _file_sha256(image_path), "labels": _file_sha256(label_path)}}
    return RawImages("fashion", images.copy(), labels, FASHION_CLASSES, source)
