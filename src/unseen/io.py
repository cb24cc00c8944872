"""Atomic file writes: a reader never sees a half-written result or checkpoint."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None],
                 binary: bool = True) -> Path:
    """Call `write(fileobj)` on a temporary file beside `path`, fsync it, rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda handle: handle.write(text), binary=False)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, default=_jsonable) + "\n")


def atomic_torch_save(path: str | os.PathLike, obj: Any) -> Path:
    """Save `checkpointable(obj)`, so that `torch.load(path, weights_only=True)` reads it."""
    import torch

    obj = checkpointable(obj)
    return atomic_write(path, lambda handle: torch.save(obj, handle))


def checkpointable(value: Any) -> Any:
    """`value` as tensors and plain containers and primitives only, which is all that
    `torch.load(..., weights_only=True)` accepts: NumPy arrays become tensors, NumPy scalars
    Python numbers, paths strings, dataclasses dicts. Anything else is a TypeError at save
    time rather than an unreadable checkpoint later."""
    import dataclasses
    from collections import OrderedDict

    import numpy as np
    import torch

    if isinstance(value, np.generic):  # before float: np.float64 is a float subclass
        return value.item()
    if value is None or isinstance(value, (str, bytes, bool, int, float, torch.Tensor,
                                           torch.Size, torch.dtype, torch.device)):
        return value
    if isinstance(value, OrderedDict):  # nn.Module.state_dict()
        return OrderedDict((key, checkpointable(item)) for key, item in value.items())
    if isinstance(value, dict):
        return {key: checkpointable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        items = [checkpointable(item) for item in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return [checkpointable(item) for item in value.tolist()]
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return checkpointable(dataclasses.asdict(value))
    raise TypeError(f"cannot write {type(value).__name__} to a checkpoint (tensors and plain "
                    "values only)")


def _jsonable(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
