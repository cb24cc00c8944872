"""Read and write MATLAB .mat files, v5 (scipy) and v7.3 (HDF5 via h5py), with one result shape.

`load_mat` returns every variable in the orientation `scipy.io.loadmat` gives (MATLAB's own
shape: a 2048 x N matrix is `(2048, N)`), whichever version the file is, and turns cell arrays
of strings into `list[str]`. v7.3 files store arrays transposed (HDF5 is row-major) and strings
as object references; both are undone here so callers never see the difference.
"""

from __future__ import annotations

import os
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import scipy.io

from unseen.errors import input_error
from unseen.io import atomic_write

MatValue = np.ndarray | list | str | dict
_V5_MAGIC = b"MATLAB 5.0 MAT-file"
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_USERBLOCK = 512
_EXPECTED = "a MATLAB v5 or v7.3 .mat file"


def load_mat(path: str | os.PathLike) -> dict[str, MatValue]:
    """All variables of a v5 or v7.3 .mat file, in scipy's orientation.

    Raises `UnseenInputError` naming the file when it is missing, truncated or not MATLAB.
    """
    path = Path(path)
    if not path.is_file():
        raise input_error(str(path), None, _EXPECTED, "no such file")
    kind = mat_version(path)
    try:
        return _load_v73(path) if kind == "v7.3" else _load_v5(path)
    except (OSError, ValueError, TypeError, KeyError, IndexError, EOFError, RuntimeError,
            UnicodeDecodeError, zlib.error, scipy.io.matlab.MatReadError) as exc:
        raise input_error(str(path), None, _EXPECTED,
                          f"an unreadable or truncated {kind} file ({type(exc).__name__}: {exc})"
                          ) from exc


def mat_version(path: str | os.PathLike) -> str:
    """'v5' or 'v7.3' from the file's first bytes; `UnseenInputError` for anything else."""
    path = Path(path)
    with open(path, "rb") as handle:
        head = handle.read(_USERBLOCK + len(_HDF5_SIGNATURE))
    if head[_USERBLOCK:].startswith(_HDF5_SIGNATURE) or head.startswith(_HDF5_SIGNATURE):
        return "v7.3"
    if head.startswith(_V5_MAGIC) and len(head) >= 128:
        return "v5"
    found = "an empty file" if not head else f"a file starting with {head[:24]!r}"
    if head.startswith(_V5_MAGIC):
        found = f"a truncated v5 header ({len(head)} bytes)"
    raise input_error(str(path), None, _EXPECTED, found)


def _load_v5(path: Path) -> dict[str, MatValue]:
    raw = scipy.io.loadmat(str(path))
    return {key: _from_scipy(value) for key, value in raw.items() if not key.startswith("__")}


def _from_scipy(value: Any) -> MatValue:
    if isinstance(value, np.ndarray) and value.dtype == object:
        # A cell array: strings become `str`, so a cell of strings is a `list[str]`.
        return [_from_scipy(item) for item in value.ravel(order="F")]
    if isinstance(value, np.ndarray) and value.dtype.kind == "U":
        # A char matrix: one string per row (a cell element is a 1-row char array).
        return "".join(value.ravel().tolist()) if value.size <= 1 else value
    return value


def _load_v73(path: Path) -> dict[str, MatValue]:
    with h5py.File(path, "r") as handle:
        return {key: _from_hdf5(handle, item) for key, item in handle.items()
                if not key.startswith("#")}


def _matlab_class(item: h5py.HLObject) -> str:
    value = item.attrs.get("MATLAB_class", b"")
    return value.decode() if isinstance(value, bytes) else str(value)


def _from_hdf5(handle: h5py.File, item: h5py.HLObject | None) -> MatValue:
    if item is None:  # h5py gives None for a link it cannot resolve (a damaged file)
        raise ValueError("an object that cannot be opened")
    if isinstance(item, h5py.Group):
        return {key: _from_hdf5(handle, child) for key, child in item.items()}
    matlab_class = _matlab_class(item)
    if item.attrs.get("MATLAB_empty", 0):
        # MATLAB stores an empty array as its dimensions; rebuild the empty shape.
        dims = tuple(int(d) for d in np.asarray(item[()]).ravel())
        if matlab_class == "char":
            return ""
        if matlab_class == "cell":
            return []
        return np.zeros(dims, dtype=np.float64)
    data = item[()]
    if matlab_class == "char":
        return _decode_chars(data)
    if matlab_class == "cell" or data.dtype == object:
        return _read_cell(handle, data.T.ravel(order="F"))  # MATLAB's column-major order
    if matlab_class == "logical":
        data = data.astype(bool)
    return data.T


def _read_cell(handle: h5py.File, references: np.ndarray) -> list:
    """The elements of a cell array. Strings (one dataset each) are read with h5py's low-level
    API, one open dataset at a time: the high-level path costs ~200 us per element, too slow
    for 30k+ image paths, and keeping them all open costs ~14 kB each."""
    items = []
    chars: bool | None = None  # whether uint16 elements are MATLAB char, from the first one
    for ref in references:
        target = h5py.h5r.dereference(ref, handle.id)
        if isinstance(target, h5py.h5d.DatasetID) and target.dtype == np.uint16:
            if chars is None:
                # MATLAB stores char as uint16; cells in xlsa17 files are homogeneous, so the
                # first element's class tells text from uint16 numbers for all of them.
                chars = _matlab_class(h5py.Dataset(target)) == "char"
            if chars:
                codes = np.empty(target.shape, dtype=np.uint16)
                target.read(h5py.h5s.ALL, h5py.h5s.ALL, codes)
                items.append(_decode_chars(codes))
                continue
        items.append(_from_hdf5(handle, handle[ref]))
    return items


def _decode_chars(data: np.ndarray) -> str | np.ndarray:
    codes = np.asarray(data, dtype=np.uint16)
    if codes.ndim == 2 and codes.shape[1] > 1 and codes.shape[0] > 1:
        # A char matrix (several rows) stays a matrix of strings, like scipy gives.
        rows = codes.T
        return np.array(["".join(map(chr, row)) for row in rows])
    return codes.ravel().tobytes().decode("utf-16-le")


def save_mat_v5(path: str | os.PathLike, variables: dict[str, Any],
                compress: bool = False) -> Path:
    """Write `variables` as a MATLAB v5 file; lists of strings become N x 1 cell arrays."""
    converted = {key: _to_scipy(value) for key, value in variables.items()}
    return atomic_write(path, lambda handle: scipy.io.savemat(
        handle, converted, do_compression=compress, oned_as="column"))


def _to_scipy(value: Any) -> Any:
    if isinstance(value, list | tuple):
        cell = np.empty((len(value), 1), dtype=object)
        cell[:, 0] = [np.array([item]) if isinstance(item, str) else item for item in value]
        return cell
    return value


def save_mat_v73(path: str | os.PathLike, variables: dict[str, Any]) -> Path:
    """Write `variables` as a MATLAB v7.3 (HDF5) file with MATLAB's layout and 512-byte header.

    Arrays are stored transposed with a `MATLAB_class` attribute; lists of strings become
    N x 1 cell arrays of char references under `#refs#`, as MATLAB writes them.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        _write_v73(Path(tmp), variables)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _write_v73(path: Path, variables: dict[str, Any]) -> None:
    with h5py.File(path, "w", userblock_size=_USERBLOCK, libver="earliest") as out:
        refs = None
        for key, value in variables.items():
            if isinstance(value, list | tuple):
                refs = refs if refs is not None else out.create_group("#refs#")
                _write_cell(out, refs, key, value)
            elif isinstance(value, str):
                _write_char(out, key, value)
            else:
                _write_array(out, key, np.asarray(value))
    with open(path, "r+b") as handle:
        handle.write(_v73_header())
        handle.flush()
        os.fsync(handle.fileno())


def _v73_header() -> bytes:
    created = time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime())
    text = (f"MATLAB 7.3 MAT-file, Platform: unseen, Created on: {created} "
            "HDF5 schema 1.00 .").encode("ascii")
    # 116 bytes of text, 8 bytes of subsystem offset, version 0x0200, endian indicator.
    return text.ljust(116, b" ") + b" " * 8 + b"\x00\x02IM" + b"\x00" * (_USERBLOCK - 128)


_MATLAB_CLASSES = {"float64": "double", "float32": "single", "int8": "int8", "uint8": "uint8",
                   "int16": "int16", "uint16": "uint16", "int32": "int32", "uint32": "uint32",
                   "int64": "int64", "uint64": "uint64", "bool": "logical"}


def _write_array(group: h5py.Group, key: str, array: np.ndarray) -> h5py.Dataset:
    if array.dtype.name not in _MATLAB_CLASSES:
        raise TypeError(f"cannot write {array.dtype} array '{key}' to a MATLAB v7.3 file")
    matlab_class = _MATLAB_CLASSES[array.dtype.name]
    if array.ndim < 2:
        array = array.reshape(-1, 1)  # MATLAB has no 1-D arrays: a vector is a column
    if array.size == 0:
        dataset = group.create_dataset(key, data=np.array(array.shape, dtype=np.uint64))
        dataset.attrs["MATLAB_empty"] = np.uint8(1)
    else:
        data = array.astype(np.uint8) if array.dtype == bool else array
        dataset = group.create_dataset(key, data=np.ascontiguousarray(data.T))
    dataset.attrs["MATLAB_class"] = np.bytes_(matlab_class)
    if matlab_class == "logical":
        dataset.attrs["MATLAB_int_decode"] = np.int32(1)
    return dataset


def _write_char(group: h5py.Group, key: str, text: str) -> h5py.Dataset:
    codes = np.frombuffer(text.encode("utf-16-le"), dtype=np.uint16)
    if codes.size == 0:
        dataset = group.create_dataset(key, data=np.array([0, 0], dtype=np.uint64))
        dataset.attrs["MATLAB_empty"] = np.uint8(1)
    else:
        dataset = group.create_dataset(key, data=codes.reshape(-1, 1))
    dataset.attrs["MATLAB_class"] = np.bytes_("char")
    dataset.attrs["MATLAB_int_decode"] = np.int32(2)
    return dataset


def _write_cell(group: h5py.Group, refs: h5py.Group, key: str, items: list | tuple) -> None:
    references = np.empty((1, len(items)), dtype=h5py.ref_dtype)  # an N x 1 cell, transposed
    for position, item in enumerate(items):
        name = f"{key}_{position}"
        if isinstance(item, str):
            element = _write_char(refs, name, item)
        else:
            element = _write_array(refs, name, np.asarray(item))
        references[0, position] = element.ref
    dataset = group.create_dataset(key, data=references, dtype=h5py.ref_dtype)
    dataset.attrs["MATLAB_class"] = np.bytes_("cell")
