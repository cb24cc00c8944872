"""Run fingerprints: a run directory holds one configuration, refused or overwritten otherwise."""

from __future__ import annotations

import csv
import json
import os

import pytest

from unseen.errors import UnseenInputError
from unseen.fingerprint import dataset_identity, differences, file_sha256, fingerprint_of
from unseen.runner import Runner, RunSpec


@pytest.fixture(autouse=True)
def hash_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("UNSEEN_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "file-hashes.json"


def train(data_dir, out, overrides=None, protocol="clean", seeds=(0,), overwrite=False):
    spec = RunSpec(method="eszsl", dataset=str(data_dir), protocol=protocol, seeds=list(seeds),
                   out=str(out), overwrite=overwrite,
                   overrides={"feature_regularisation": "1", "semantic_regularisation": "1",
                              **(overrides or {})})
    return Runner(spec).run()


def test_other_hyperparameters_are_refused_and_leave_the_run_untouched(tmp_path, xlsa17_dir):
    out = tmp_path / "run"
    train(xlsa17_dir, out)
    config_before = (out / "config.json").read_text()
    results_before = (out / "results.json").read_text()
    with pytest.raises(UnseenInputError) as error:
        train(xlsa17_dir, out, {"feature_regularisation": "1000"})
    message = str(error.value)
    assert "hyperparameters.feature_regularisation: [1.0] -> [1000.0]" in message
    assert "--out NEW_DIR" in message and "--overwrite" in message
    assert "semantic_regularisation" not in message  # only what differs
    assert (out / "config.json").read_text() == config_before
    assert (out / "results.json").read_text() == results_before


def test_another_protocol_is_refused(tmp_path, xlsa17_dir):
    out = tmp_path / "run"
    train(xlsa17_dir, out)
    with pytest.raises(UnseenInputError, match="protocol: clean -> paper"):
        train(xlsa17_dir, out, protocol="paper")
    assert json.loads((out / "config.json").read_text())["protocol"] == "clean"


def test_changed_data_files_are_refused(tmp_path, xlsa17_dir):
    out = tmp_path / "run"
    train(xlsa17_dir, out)
    splits = xlsa17_dir / "att_splits.mat"
    splits.write_bytes(splits.read_bytes() + b"\0")  # other bytes, same meaning: still refused
    with pytest.raises(UnseenInputError, match=r"dataset\.files\.att_splits\.mat: "):
        train(xlsa17_dir, out)


def test_same_settings_reuse_finished_seeds_and_run_new_ones(tmp_path, xlsa17_dir):
    out = tmp_path / "run"
    first = train(xlsa17_dir, out)
    rows_before = list(csv.DictReader((out / "metrics.csv").open()))
    checkpoint = out / "checkpoints" / "seed0_final.pt"
    written = checkpoint.stat().st_mtime_ns
    both = train(xlsa17_dir, out, seeds=(0, 1))
    assert both["per_seed"][0] == first["per_seed"][0]
    assert checkpoint.stat().st_mtime_ns == written  # seed 0 was not trained again
    rows_after = list(csv.DictReader((out / "metrics.csv").open()))
    assert rows_after[:len(rows_before)] == rows_before
    assert {row["seed"] for row in rows_after} == {"0", "1"}


def test_overwrite_discards_the_old_run_only(tmp_path, xlsa17_dir):
    out = tmp_path / "run"
    train(xlsa17_dir, out, seeds=(0, 1))
    (out / "notes.txt").write_text("mine")
    train(xlsa17_dir, out, {"feature_regularisation": "1000"}, overwrite=True)
    config = json.loads((out / "config.json").read_text())
    assert config["hyperparameters"]["feature_regularisation"] == [1000.0]
    assert config["spec"]["overwrite"] is False  # a resume must never wipe the run
    results = json.loads((out / "results.json").read_text())
    assert results["seeds"] == [0]
    assert not (out / "checkpoints" / "seed1_final.pt").exists()
    assert not (out / "scores" / "seed1.pt").exists()
    assert {row["seed"] for row in csv.DictReader((out / "metrics.csv").open())} == {"0"}
    assert (out / "notes.txt").read_text() == "mine"
    fingerprint = json.loads((out / "fingerprint.json").read_text())
    assert fingerprint["fingerprint"] == config["fingerprint"]
    assert fingerprint["document"]["hyperparameters"]["feature_regularisation"] == [1000.0]


def test_resume_checks_the_fingerprint(tmp_path, xlsa17_dir):
    out = tmp_path / "run"
    train(xlsa17_dir, out)
    config = json.loads((out / "config.json").read_text())
    config["spec"]["overrides"]["semantic_regularisation"] = "10"
    (out / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnseenInputError, match=r"semantic_regularisation: \[1.0\] -> \[10.0\]"):
        Runner.resume(out).run()


def test_a_run_directory_without_a_fingerprint_is_refused(tmp_path, xlsa17_dir):
    out = tmp_path / "run"
    train(xlsa17_dir, out)
    (out / "fingerprint.json").unlink()
    with pytest.raises(UnseenInputError, match="without a fingerprint"):
        train(xlsa17_dir, out)


def test_code_version_is_fingerprinted_but_not_the_git_sha(tmp_path, xlsa17_dir, monkeypatch):
    out = tmp_path / "run"
    train(xlsa17_dir, out)
    monkeypatch.setattr("unseen.runner._environment", lambda: {"git_sha": "another commit"})
    train(xlsa17_dir, out)  # a commit between a kill and --resume keeps the run resumable
    monkeypatch.setattr("unseen.__version__", "99.0")
    with pytest.raises(UnseenInputError, match="code_version: 0.1.0 -> 99.0"):
        train(xlsa17_dir, out)


def test_file_hash_is_cached_by_path_size_and_mtime(tmp_path, hash_cache):
    path = tmp_path / "data.bin"
    path.write_bytes(b"abc")
    real = file_sha256(path)
    assert real == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    # A cache hit does not read the file: a planted value comes back while the file is unchanged.
    cache = json.loads(hash_cache.read_text())
    (key,) = cache
    hash_cache.write_text(json.dumps({key: "planted"}))
    assert file_sha256(path) == "planted"
    path.write_bytes(b"abcd")
    os.utime(path, ns=(1, 1))
    assert file_sha256(path) == ("88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589")
    assert len(json.loads(hash_cache.read_text())) == 1  # the stale entry is dropped


def test_dataset_identity_of_a_directory_hashes_its_data_files(xlsa17_dir):
    identity = dataset_identity(str(xlsa17_dir))
    assert identity["kind"] == "directory"
    assert identity["files"] == {name: file_sha256(xlsa17_dir / name)
                                 for name in ("res101.mat", "att_splits.mat")}
    # The same folder found by name under a data root is the same data set.
    assert dataset_identity(xlsa17_dir.name, xlsa17_dir.parent) == identity


def test_differences_name_every_changed_leaf():
    old = {"method": "eszsl", "hyperparameters": {"a": 1, "b": [1, 2]}, "gone": 1}
    new = {"method": "eszsl", "hyperparameters": {"a": 2, "b": (1, 2)}, "added": "x"}
    assert differences(old, new) == ["added: (absent) -> x", "gone: 1 -> (absent)",
                                     "hyperparameters.a: 1 -> 2"]
    assert fingerprint_of({"x": [1, 2], "y": 1}) == fingerprint_of({"y": 1, "x": (1, 2)})
