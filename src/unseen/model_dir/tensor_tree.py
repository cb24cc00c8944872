"""Nested state (dicts, lists, tuples, numbers, strings, tensors) <-> JSON + named tensors.

A method's state is split into a JSON skeleton, where every tensor is replaced by
`{"__tensor__": KEY}`, and a flat {KEY: tensor} map saved with safetensors: nothing is
pickled, and loading rebuilds exactly the same structure. Tuples and dicts with non-string keys
(optimiser states) are tagged so that they come back as they were.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

_TENSOR, _ARRAY, _TUPLE, _ITEMS = "__tensor__", "__ndarray__", "__tuple__", "__items__"
_TAGS = (_TENSOR, _ARRAY, _TUPLE, _ITEMS)


def flatten(obj: Any, tensors: dict[str, torch.Tensor], prefix: str = "") -> Any:
    """The JSON skeleton of `obj`; its tensors are added to `tensors` under path-like keys."""
    if isinstance(obj, torch.Tensor):
        return {_TENSOR: _store(tensors, prefix, obj)}
    if isinstance(obj, np.ndarray):
        return {_ARRAY: _store(tensors, prefix, torch.from_numpy(np.array(obj)))}
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, tuple):
        return {_TUPLE: [flatten(v, tensors, f"{prefix}/{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [flatten(v, tensors, f"{prefix}/{i}") for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        if all(isinstance(k, str) and k not in _TAGS for k in obj):
            return {k: flatten(v, tensors, f"{prefix}/{k}" if prefix else k)
                    for k, v in obj.items()}
        return {_ITEMS: [[flatten(k, tensors, f"{prefix}/key{i}"),
                          flatten(v, tensors, f"{prefix}/{i}")]
                         for i, (k, v) in enumerate(obj.items())]}
    raise TypeError(f"cannot store {type(obj).__name__} in a model directory")


def _store(tensors: dict[str, torch.Tensor], key: str, tensor: torch.Tensor) -> str:
    key = key or "tensor"
    unique, n = key, 1
    while unique in tensors:
        n += 1
        unique = f"{key}#{n}"
    tensors[unique] = tensor.detach().cpu().contiguous().clone()
    return unique


def unflatten(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Rebuild what `flatten` took apart; KeyError names a tensor the skeleton lacks."""
    if isinstance(skeleton, list):
        return [unflatten(v, tensors) for v in skeleton]
    if not isinstance(skeleton, dict):
        return skeleton
    if _TENSOR in skeleton:
        return tensors[skeleton[_TENSOR]]
    if _ARRAY in skeleton:
        return tensors[skeleton[_ARRAY]].numpy()
    if _TUPLE in skeleton:
        return tuple(unflatten(v, tensors) for v in skeleton[_TUPLE])
    if _ITEMS in skeleton:
        return {_hashable(unflatten(k, tensors)): unflatten(v, tensors)
                for k, v in skeleton[_ITEMS]}
    return {k: unflatten(v, tensors) for k, v in skeleton.items()}


def tensor_keys(skeleton: Any) -> list[str]:
    """Every tensor key the skeleton refers to."""
    if isinstance(skeleton, list):
        return [key for v in skeleton for key in tensor_keys(v)]
    if not isinstance(skeleton, dict):
        return []
    for tag in (_TENSOR, _ARRAY):
        if tag in skeleton:
            return [skeleton[tag]]
    if _TUPLE in skeleton:
        return tensor_keys(skeleton[_TUPLE])
    if _ITEMS in skeleton:
        return [key for pair in skeleton[_ITEMS] for key in tensor_keys(pair)]
    return [key for v in skeleton.values() for key in tensor_keys(v)]


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value
