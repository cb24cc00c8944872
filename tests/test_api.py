"""The Python API: unseen.train on in-memory benchmarks, typed overrides, seeds, resume."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

import unseen
from unseen.data.benchmark import benchmark_fingerprint
from unseen.data.synthetic import synthetic_benchmark
from unseen.errors import UnseenInputError
from unseen.methods.cegzsl import CEGZSLConfig
from unseen.methods.eszsl import ESZSLConfig
from unseen.runner import RunSpec, resolve_config


@pytest.fixture(scope="module")
def benchmark():
    return synthetic_benchmark(seed=5)


def test_train_accepts_an_in_memory_benchmark_with_typed_overrides(benchmark, tmp_path):
    out = tmp_path / "run"
    results = unseen.train("eszsl", benchmark, seeds=range(2), out=str(out),
                           overrides={"feature_regularisation": [0.1, 10],
                                      "semantic_regularisation": np.array([1.0]),
                                      "val_folds": np.int64(2)})
    assert results["seeds"] == [0, 1] and results["dataset"] == "synthetic"
    config = json.loads((out / "config.json").read_text())
    assert config["spec"]["dataset_fingerprint"] == benchmark_fingerprint(benchmark)
    assert config["spec"]["overrides"] == {"feature_regularisation": [0.1, 10],
                                           "semantic_regularisation": [1.0], "val_folds": 2}
    assert config["hyperparameters"]["feature_regularisation"] == [0.1, 10.0]
    assert config["run_options"]["val_folds"] == 2
    checkpoints = {p.name for p in out.glob("checkpoints/*")}
    assert checkpoints >= {"seed0_validation2.pt", "seed1_validation2.pt"}


def test_metrics_csv_names_the_regularisation_apart_from_the_stacking_gamma(benchmark, tmp_path):
    out = tmp_path / "run"
    unseen.train("eszsl", benchmark, out=str(out), overrides={"feature_regularisation": [1, 10]})
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert rows and all(r["candidate"].startswith("feature_regularisation=") for r in rows)
    assert all("semantic_regularisation=" in r["candidate"] and "gamma" not in r["candidate"]
               for r in rows)
    assert all(np.isfinite(float(r["gamma"])) for r in rows)  # calibrated stacking's gamma


def test_the_runner_records_the_selected_pair_in_the_final_checkpoint(benchmark, tmp_path):
    out = tmp_path / "run"
    results = unseen.train("eszsl", benchmark, out=str(out),
                           overrides={"feature_regularisation": [0.01, 100]})
    final = torch.load(out / "checkpoints" / "seed0_final.pt", weights_only=False)
    chosen = results["per_seed"][0]["selected"]["candidate"]
    assert final["method_state"]["selected_candidate"] == chosen == final["candidate"]


@pytest.mark.parametrize(("seeds", "fragment"), [
    (5, r"use seeds=\[5\] or seeds=range\(5\)"),
    ("0", "found '0'"),
    ([0, -1], "found -1"),
    ([0, 1.0], "found 1.0"),
    ([1, 1], "distinct seeds"),
    ([], "at least one seed"),
])
def test_bad_seeds_are_one_clear_error(benchmark, tmp_path, seeds, fragment):
    with pytest.raises(UnseenInputError, match=fragment):
        unseen.train("eszsl", benchmark, seeds=seeds, out=str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_partitions_are_refused_for_an_in_memory_benchmark(benchmark, tmp_path):
    with pytest.raises(UnseenInputError, match="in-memory benchmark 'synthetic'"):
        unseen.train("eszsl", benchmark, partitions=[1], out=str(tmp_path / "run"))
    with pytest.raises(UnseenInputError, match="a name, a directory or a Benchmark"):
        unseen.train("eszsl", 42, out=str(tmp_path / "run"))


@pytest.mark.parametrize(("values", "expected"), [
    ({"lr": 5e-4, "epochs": 7, "zsl_classifier": False}, {"lr": 5e-4, "epochs": 7,
                                                            "zsl_classifier": False}),
    ({"lr": "5e-4", "epochs": "7", "zsl_classifier": "false"}, {"lr": 5e-4, "epochs": 7,
                                                                 "zsl_classifier": False}),
    ({"lr": 1, "epochs": np.int32(3), "syn_num": 20.0}, {"lr": 1.0, "epochs": 3, "syn_num": 20}),
])
def test_method_config_takes_cli_strings_and_python_values_alike(values, expected):
    config = CEGZSLConfig().updated(values)
    assert {key: getattr(config, key) for key in expected} == expected
    assert all(type(getattr(config, key)) is type(value) for key, value in expected.items())


@pytest.mark.parametrize(("values", "fragment"), [
    ({"epochs": 2.5}, r"option 'epochs': expected an integer, found 2.5 \(a float\)"),
    ({"epochs": True}, "option 'epochs': expected an integer, found True"),
    ({"zsl_classifier": 1}, "option 'zsl_classifier': expected true or false, found 1"),
    ({"lr": "fast"}, "option 'lr': expected a number, found 'fast'"),
    ({"device": 0}, "option 'device': expected a string, found 0"),
    ({"learning_rate": 1e-3}, "option 'learning_rate': unknown for CEGZSLConfig"),
])
def test_bad_typed_values_name_the_key_the_type_and_the_value(values, fragment):
    with pytest.raises(UnseenInputError, match=fragment):
        CEGZSLConfig().updated(values)


def test_regularisation_grids_take_lists_tuples_arrays_scalars_and_cli_strings():
    for value in ([1, 10, 100], (1.0, 10.0, 100.0), np.array([1, 10, 100]), range(1, 101, 99),
                  "1,10,100"):
        grid = ESZSLConfig().updated({"feature_regularisation": value}).feature_regularisation
        assert grid[0] == 1.0 and grid[-1] == 100.0 and all(type(v) is float for v in grid)
    assert ESZSLConfig().updated({"semantic_regularisation": 3}).semantic_regularisation == (3.0,)
    with pytest.raises(UnseenInputError, match="option 'feature_regularisation': expected a list "
                                               "of floats, found"):
        ESZSLConfig().updated({"feature_regularisation": [1, "x"]})
    with pytest.raises(UnseenInputError, match="non-empty"):
        ESZSLConfig().updated({"feature_regularisation": []})


def test_run_options_take_python_values_and_check_them():
    spec = RunSpec(method="eszsl", dataset="synthetic",
                   overrides={"gamma": 1, "val_folds": 3, "feature_preprocessing": "none"})
    _, _, options = resolve_config(spec)
    assert options.gamma == 1.0 and type(options.gamma) is float and options.val_folds == 3
    assert options.preprocessing.features == "none"
    with pytest.raises(UnseenInputError, match="option 'val_folds': expected an integer"):
        resolve_config(replace(spec, overrides={"val_folds": "three"}))
    with pytest.raises(UnseenInputError, match="option 'selection_window': expected a positive"):
        resolve_config(replace(spec, overrides={"selection_window": 0}))


def test_fingerprint_follows_the_arrays_not_the_name(benchmark):
    same = replace(benchmark, name="renamed", features=benchmark.features.copy(),
                   source={"other": True})
    assert benchmark_fingerprint(same) == benchmark_fingerprint(benchmark)
    changed = benchmark.features.copy()
    changed[7, 3] += 1e-3
    assert benchmark_fingerprint(replace(benchmark, features=changed)) != \
        benchmark_fingerprint(benchmark)
    moved = np.concatenate([benchmark.trainval_idx, benchmark.test_seen_idx[:1]])
    assert benchmark_fingerprint(replace(benchmark, trainval_idx=moved,
                                         test_seen_idx=benchmark.test_seen_idx[1:])) != \
        benchmark_fingerprint(benchmark)
    assert len(benchmark_fingerprint(benchmark)) == 64


def test_an_in_memory_run_resumes_only_with_its_own_benchmark(benchmark, tmp_path):
    out = tmp_path / "run"
    first = unseen.train("eszsl", benchmark, seeds=[0, 1], out=str(out))
    state_path = out / "state.json"
    state = json.loads(state_path.read_text())
    del state["seeds"]["1"]  # as if the run had been killed before seed 1
    state_path.write_text(json.dumps(state))
    with pytest.raises(UnseenInputError, match=r"in-memory benchmark 'synthetic'.*benchmark="):
        unseen.resume(str(out))
    other = synthetic_benchmark(seed=6)
    with pytest.raises(UnseenInputError, match="dataset_fingerprint"):
        unseen.resume(str(out), benchmark=other)
    resumed = unseen.resume(str(out), benchmark=benchmark)
    assert resumed["per_seed"][1]["H"] == pytest.approx(first["per_seed"][1]["H"])
    assert resumed["per_seed"][1]["selected"] == first["per_seed"][1]["selected"]


def test_an_in_memory_run_directory_is_claimed_by_the_benchmark_content(benchmark, tmp_path):
    out = tmp_path / "run"
    first = unseen.train("eszsl", benchmark, out=str(out), quiet=True)
    again = unseen.train("eszsl", benchmark, out=str(out), quiet=True)  # same content: reused
    assert again["per_seed"] == first["per_seed"]
    recorded = json.loads((out / "fingerprint.json").read_text())["document"]["dataset"]
    assert recorded == {"kind": "benchmark", "name": "synthetic",
                        "sha256": benchmark_fingerprint(benchmark)}
    other = synthetic_benchmark(seed=6)  # same name, other arrays
    with pytest.raises(UnseenInputError, match=r"dataset\.sha256.*--overwrite"):
        unseen.train("eszsl", other, out=str(out), quiet=True)
    replaced = unseen.train("eszsl", other, out=str(out), quiet=True, overwrite=True)
    assert replaced["per_seed"][0]["H"] != first["per_seed"][0]["H"]
