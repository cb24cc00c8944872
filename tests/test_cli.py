"""The `unseen` command: exit codes, messages, and the train -> eval round trip."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from unseen.cli import main
from unseen.data.synthetic import synthetic_benchmark
from unseen.data.xlsa17 import write_xlsa17


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Data file hashes (run fingerprints) are cached in the test's own folder."""
    monkeypatch.setenv("UNSEEN_CACHE", str(tmp_path / "cache"))


@pytest.fixture()
def dataset_dir(tmp_path):
    directory = tmp_path / "SYN"
    write_xlsa17(synthetic_benchmark(images_per_class=30), directory)
    return directory


def test_train_then_eval_round_trip(tmp_path, dataset_dir, capsys):
    out = tmp_path / "run"
    code = main(["train", "eszsl", "--dataset", str(dataset_dir), "--seed", "0", "1",
                 "--out", str(out), "--set", "feature_regularisation=1,10",
                 "--set", "semantic_regularisation=0.1,1"])
    assert code == 0
    printed = capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert results["method"] == "eszsl" and results["seeds"] == [0, 1]
    assert f"H {results['H'] * 100:5.1f}" in printed
    assert results["per_seed"][0]["selected"]["candidate"].startswith("feature_regularisation=")
    assert main(["eval", str(out)]) == 0
    again = capsys.readouterr().out
    assert f"H {results['H'] * 100:5.1f}" in again
    # A gamma that makes every prediction unseen gives S = 0.
    assert main(["eval", str(out), "--gamma", "1e9"]) == 0
    assert "S   0.0" in capsys.readouterr().out


def test_parent_data_root_is_accepted(tmp_path, dataset_dir):
    code = main(["train", "eszsl", "--dataset", "SYN", "--data-root", str(dataset_dir.parent),
                 "--out", str(tmp_path / "run"), "--set", "feature_regularisation=1",
                 "--set", "semantic_regularisation=1"])
    assert code == 0


@pytest.mark.parametrize("argv, fragment", [
    (["train", "nosuchmethod", "--dataset", "AWA2"], "method 'nosuchmethod'"),
    (["train", "eszsl", "--dataset", "NOSUCHSET"], "NOSUCHSET"),
    (["train", "eszsl", "--dataset", "AWA2", "--set", "novalue"], "KEY=VALUE"),
    (["train", "eszsl"], "--dataset"),
    (["train", "eszsl", "--dataset", "animals", "--seed", "0", "1", "--partition", "2"],
     "one partition (>= 0) per seed (2)"),
    (["data", "info", "/nonexistent/dir/x"], "/nonexistent/dir/x"),
    (["train", "cegzsl", "--dataset", "AWA2", "--set", "epochs=0"],
     "option '--set epochs=0': expected a positive integer"),
    (["train", "eszsl", "--dataset", "AWA2", "--set", "epochs=-2"], "epochs=-2"),
    (["train", "eszsl", "--dataset", "AWA2", "--seed", "0", "-1"],
     "argument --seed: expected a seed (an integer >= 0), found '-1'"),
    (["--threads", "-3", "methods"],
     "argument --threads: expected a number of threads (an integer >= 1), found '-3'"),
    (["--threads", "0", "methods"], "found '0'"),
    (["predict", "runs/x", "image.png", "--seed", "-5"], "found '-5'"),
    (["train", "eszsl", "--protocol", "bogus"], "invalid choice: 'bogus'"),
    (["train", "--resume", "runs/x", "--overwrite"], "found --resume, which continues a run"),
])
def test_bad_input_exits_2_with_one_clear_line(argv, fragment, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err
    assert err.count("\n") == 1


def test_unknown_hyperparameter_names_the_known_ones(tmp_path, dataset_dir, capsys):
    code = main(["train", "eszsl", "--dataset", str(dataset_dir), "--out", str(tmp_path / "r"),
                 "--set", "learning_rat=3"])
    assert code == 2
    err = capsys.readouterr().err
    assert "learning_rat" in err and "feature_regularisation" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output_directory(tmp_path, dataset_dir, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    assert main(["train", "eszsl", "--dataset", str(dataset_dir),
                 "--out", str(locked / "run")]) == 2
    assert "writable" in capsys.readouterr().err


def test_output_directory_under_a_file_is_refused(tmp_path, dataset_dir, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main(["train", "eszsl", "--dataset", str(dataset_dir),
                 "--out", str(blocker / "run")]) == 2
    assert "expected a writable directory" in capsys.readouterr().err


def test_methods_lists_every_method_and_preset(capsys):
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    for name in ("eszsl", "cegzsl", "duet"):
        assert name in out
    assert "AWA2" in out


def test_console_script_usage_error_exits_2():
    result = subprocess.run([sys.executable, "-m", "unseen.cli", "train", "--protocol", "bogus"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "bogus" in result.stderr


def _rewrite_mat(path, **changes):
    from scipy.io import loadmat, savemat

    content = {k: v for k, v in loadmat(path).items() if not k.startswith("__")}
    for key, value in changes.items():
        if value is None:
            content.pop(key)
        else:
            content[key] = value(content[key]) if callable(value) else value
    savemat(path, content)


def _nan_first(features):
    features = features.astype(float)
    features[0, 0] = float("nan")
    return features


BAD_FILES = {
    "missing file": ("res101.mat", "delete", "res101.mat"),
    "missing field": ("att_splits.mat", {"trainval_loc": None}, "trainval_loc"),
    "features transposed": ("res101.mat", {"features": lambda f: f.T}, "features"),
    "label out of range": ("res101.mat", {"labels": lambda l: l * 0 + 999}, "labels"),
    "loc index zero": ("att_splits.mat", {"test_seen_loc": lambda l: l * 0}, "1-based"),
    "NaN feature": ("res101.mat", {"features": _nan_first}, "NaN"),
    "att columns": ("att_splits.mat", {"att": lambda a: a[:, :-1]}, "att"),
    "not MATLAB": ("att_splits.mat", "garbage", "att_splits.mat"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_data_file_exits_2_and_writes_no_results(tmp_path, dataset_dir, capsys, case):
    filename, change, fragment = BAD_FILES[case]
    path = dataset_dir / filename
    if change == "delete":
        path.unlink()
    elif change == "garbage":
        path.write_bytes(b"this is not a MATLAB file at all")
    else:
        _rewrite_mat(path, **change)
    out = tmp_path / "run"
    assert main(["train", "eszsl", "--dataset", str(dataset_dir), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert fragment in err and filename in err and "Traceback" not in err
    assert not (out / "results.json").exists()


def _train(dataset_dir, out, *extra):
    return main(["train", "eszsl", "--dataset", str(dataset_dir), "--out", str(out),
                 "--set", "feature_regularisation=1", "semantic_regularisation=1", *extra])


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_rerun_with_other_settings_is_refused_and_overwrite_replaces_it(tmp_path, dataset_dir,
                                                                         capsys):
    out = tmp_path / "run"
    assert _train(dataset_dir, out) == 0
    capsys.readouterr()
    assert _train(dataset_dir, out, "--set", "feature_regularisation=1000",
                  "semantic_regularisation=1000") == 2
    err = _one_error_line(capsys)
    assert "hyperparameters.feature_regularisation: [1.0] -> [1000.0]" in err
    assert "hyperparameters.semantic_regularisation: [1.0] -> [1000.0]" in err
    assert "use --out NEW_DIR, or --overwrite to discard the old run" in err
    config = json.loads((out / "config.json").read_text())
    assert config["hyperparameters"]["feature_regularisation"] == [1.0]  # it does not lie
    assert _train(dataset_dir, out, "--protocol", "paper") == 2
    assert "protocol: clean -> paper" in _one_error_line(capsys)
    assert json.loads((out / "results.json").read_text())["protocol"] == "clean"
    assert _train(dataset_dir, out, "--protocol", "paper", "--overwrite") == 0
    assert json.loads((out / "results.json").read_text())["protocol"] == "paper"
    assert json.loads((out / "config.json").read_text())["protocol"] == "paper"


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_truncated_checkpoint_under_predict_is_one_line_naming_it(tmp_path, dataset_dir, capsys):
    out = tmp_path / "run"
    assert _train(dataset_dir, out) == 0
    checkpoint = out / "checkpoints" / "seed0_final.pt"
    _truncate(checkpoint)
    image = tmp_path / "image.png"
    image.write_bytes(b"not used: the checkpoint is read first")
    capsys.readouterr()
    assert main(["predict", str(out), str(image)]) == 2
    err = _one_error_line(capsys)
    assert f"checkpoint {checkpoint}: expected a torch checkpoint, found a truncated" in err


def test_truncated_checkpoint_under_resume_is_one_line_naming_it(tmp_path, dataset_dir, capsys):
    out = tmp_path / "run"
    assert _train(dataset_dir, out) == 0
    # As if killed during the test phase: the seed is not done, its latest checkpoint is bad.
    state = json.loads((out / "state.json").read_text())
    del state["seeds"]["0"]["done"]
    (out / "state.json").write_text(json.dumps(state))
    checkpoint = out / "checkpoints" / "seed0_test.pt"
    _truncate(checkpoint)
    capsys.readouterr()
    assert main(["train", "--resume", str(out)]) == 2
    err = _one_error_line(capsys)
    assert f"checkpoint {checkpoint}: expected a torch checkpoint, found a truncated" in err


class _Payload:
    """Unpickling this would create the marker file: loading must refuse it instead."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_checkpoint_with_a_pickled_object_is_refused_not_run(tmp_path, dataset_dir, capsys):
    import torch

    out = tmp_path / "run"
    assert _train(dataset_dir, out) == 0
    scores = out / "scores" / "seed0.pt"
    saved = torch.load(scores, weights_only=True)
    marker = tmp_path / "executed"
    torch.save({**saved, "gamma": _Payload(marker)}, scores)
    capsys.readouterr()
    assert main(["eval", str(out)]) == 2
    err = _one_error_line(capsys)
    assert f"checkpoint {scores}: expected tensors and plain values only" in err
    assert not marker.exists()


def test_interrupt_hint_names_the_real_run_directory(tmp_path, dataset_dir, capsys, monkeypatch):
    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr("unseen.runner.Runner.run", interrupted)
    out = tmp_path / "my run"
    assert _train(dataset_dir, out) == 130
    err = capsys.readouterr().err
    assert f"continue with `unseen train --resume '{out}'`" in err and "RUN_DIR" not in err


@pytest.mark.parametrize("overlap", [False, True])
def test_data_info_says_overlap_only_when_there_is_one(tmp_path, overlap, capsys):
    import numpy as np

    benchmark = synthetic_benchmark(images_per_class=30)
    train = benchmark.trainval_idx[:20] + 1  # 1-based, inside trainval
    val = (benchmark.test_seen_idx[:7] if overlap else benchmark.trainval_idx[20:30]) + 1
    directory = write_xlsa17(benchmark, tmp_path / "SYN", extra_split_fields={
        "train_loc": train.reshape(-1, 1).astype(np.float64),
        "val_loc": val.reshape(-1, 1).astype(np.float64)})
    assert main(["data", "info", str(directory)]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("ignored fields"))
    if overlap:
        assert "overlap the test splits" in line and "val_loc 7 and 0" in line
    else:
        assert "disjoint from test_seen_loc and test_unseen_loc" in line
        assert "overlap" not in line


def test_bad_unseen_threads_variable_is_one_clear_line(monkeypatch, capsys):
    monkeypatch.setenv("UNSEEN_THREADS", "-3")
    assert main(["methods"]) == 2
    err = _one_error_line(capsys)
    assert "environment variable UNSEEN_THREADS: expected a number of threads" in err
    assert "found '-3'" in err
