"""Run directory checkpoints: written as tensors and plain values, read without unpickling code."""

from __future__ import annotations

import random
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from unseen.errors import UnseenInputError
from unseen.io import checkpointable
from unseen.methods.base import capture_rng_state, restore_rng_state
from unseen.methods.registry import get_method, method_names
from unseen.rundir import RunDirectory


@dataclass
class _Point:
    x: int
    where: Path


def test_checkpointable_turns_numpy_paths_and_dataclasses_into_plain_values():
    value = checkpointable({
        "array": np.arange(3, dtype=np.int16), "scalar": np.float64(0.5),
        "path": Path("/a/b"), "point": _Point(2, Path("c")), "nested": [(np.int64(3), None)],
        "weights": OrderedDict(w=torch.ones(2)), "names": np.array(["x", "y"], dtype=object)})
    assert torch.equal(value["array"], torch.tensor([0, 1, 2], dtype=torch.int16))
    assert value["scalar"] == 0.5 and type(value["scalar"]) is float
    assert value["path"] == "/a/b" and value["point"] == {"x": 2, "where": "c"}
    assert value["nested"] == [(3, None)] and type(value["nested"][0][0]) is int
    assert isinstance(value["weights"], OrderedDict) and value["names"] == ["x", "y"]
    with pytest.raises(TypeError, match="set to a checkpoint"):
        checkpointable({"bad": {1, 2}})


def test_saved_checkpoint_loads_with_weights_only(tmp_path):
    directory = RunDirectory(tmp_path)
    path = tmp_path / "checkpoints" / "c.pt"
    directory.save_checkpoint(path, {"minmax": {"low": np.zeros(3, np.float32)},
                                     "source": {"directory": tmp_path}})
    loaded = torch.load(path, weights_only=True)  # raises if anything but plain values
    assert loaded["source"]["directory"] == str(tmp_path)
    assert torch.equal(loaded["minmax"]["low"], torch.zeros(3))


def test_rng_state_round_trips_through_a_safe_checkpoint(tmp_path):
    path = tmp_path / "rng.pt"
    RunDirectory(tmp_path).save_checkpoint(path, {"rng": capture_rng_state()})
    expected = (torch.rand(2), random.random(), np.random.rand(2))
    restore_rng_state(RunDirectory.load_checkpoint(path)["rng"])
    again = (torch.rand(2), random.random(), np.random.rand(2))
    assert torch.equal(expected[0], again[0]) and expected[1] == again[1]
    assert np.array_equal(expected[2], again[2])


@pytest.mark.parametrize("content, found", [
    (b"", "truncated or corrupt file (EOFError)"),
    (b"hello, not a checkpoint", "truncated or corrupt file"),
])
def test_damaged_checkpoints_are_one_clear_error(tmp_path, content, found):
    path = tmp_path / "c.pt"
    path.write_bytes(content)
    with pytest.raises(UnseenInputError, match=f"checkpoint {path}: expected a torch checkpoint"
                                               r", found a " + found.replace("(", r"\(")
                                               .replace(")", r"\)")):
        RunDirectory.load_checkpoint(path)


def test_a_checkpoint_that_is_not_a_dictionary_is_refused(tmp_path):
    path = tmp_path / "c.pt"
    torch.save([1, 2], path)
    with pytest.raises(UnseenInputError, match="expected a dictionary, found list"):
        RunDirectory.load_checkpoint(path)


@pytest.mark.parametrize("name", method_names())
def test_every_method_refuses_non_positive_epochs(name):
    config = get_method(name).config_class()
    for bad in ("0", "-1"):
        with pytest.raises(UnseenInputError, match=f"epochs={bad}': expected a positive integer"):
            config.updated({"epochs": bad})
    assert config.updated({"epochs": "2"}).epochs == 2
