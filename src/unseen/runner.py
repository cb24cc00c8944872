"""Train a method on a benchmark under a protocol, for several seeds, into a run directory.

    files -> Benchmark -> GZSLTask -> method.fit -> candidate scores -> SelectionMonitor
          -> final test evaluation -> results.json, metrics.csv, plots, checkpoints

Protocols:
- `clean` (default): phase "validation" trains on the validation task (built from trainval
  only) and picks the epoch, the classifier candidate and gamma there; phase "test" retrains
  on trainval for the chosen number of epochs and evaluates once on the test splits with the
  chosen candidate and gamma. With `val_folds=K` phases validation, validation2, ... train on
  K class splits and the choice is made on their mean H (`selection.combine_folds`).
- `paper`: one phase on the test task; epoch and candidate are the best on the test set, gamma
  is the method's published constant. This reproduces the references' numbers and is labelled
  as test-set selection everywhere.
"""

from __future__ import annotations

import platform
import subprocess
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, get_type_hints

import numpy as np
import torch

from unseen.data.benchmark import Benchmark
from unseen.data.tasks import (
    GZSLTask,
    Preprocessing,
    ValidationSplit,
    make_test_task,
    make_validation_task,
)
from unseen.errors import UnseenInputError
from unseen.evaluation import evaluate
from unseen.fingerprint import FINGERPRINT_FORMAT, dataset_identity, differences, fingerprint_of
from unseen.methods.base import GZSLMethod, MethodConfig, coerce_option, option, seed_everything
from unseen.methods.registry import get_method
from unseen.parallel import init_from_env, is_main_process
from unseen.progress import Console, seed_line
from unseen.report import write_report
from unseen.results import aggregate_results, write_plots
from unseen.rundir import RunDirectory, ScalarLogger
from unseen.selection import Selection, SelectionMonitor, combine_folds

PROTOCOLS = ("clean", "paper")
RUN_OPTION_KEYS = ("feature_preprocessing", "semantic_preprocessing", "val_unseen_fraction",
                   "val_seen_fraction", "val_split_seed", "val_folds", "gamma",
                   "selection_window", "gamma_shrink", "record_curves")

# Options that only the clean protocol's validation reads: a paper run made under other values
# (or other defaults) is the same run.
CLEAN_ONLY_OPTIONS = ("val_unseen_fraction", "val_seen_fraction", "val_split_seed", "val_folds",
                      "selection_window", "gamma_shrink")


@dataclass
class RunSpec:
    """Everything `unseen train` was asked for; saved (resolved) as config.json."""

    method: str
    dataset: str
    data_root: str | None = None
    protocol: str = "clean"
    preset: str | None = None
    # KEY -> value: CLI strings ("0.1", "1,10,100") or typed Python values (0.1, [1, 10, 100]).
    overrides: dict[str, Any] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0])
    out: str = "runs/latest"
    # Seen/unseen partition of an embedded data set per seed; None: the seed's position in
    # `seeds` (0, 1, 2, ...), so that `--seed 0 1 2` covers three partitions.
    partitions: list[int] | None = None
    # Discard an existing run directory's contents (of a run with other settings) first.
    # Never saved: a resumed run must not wipe itself.
    overwrite: bool = False
    # Set when `dataset` names an in-memory Benchmark (`unseen.train(method, benchmark)`): its
    # `benchmark_fingerprint`. Such a run resumes only with that same benchmark passed again.
    dataset_fingerprint: str | None = None

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise UnseenInputError(f"option '--protocol': expected one of {', '.join(PROTOCOLS)}, "
                                   f"found {self.protocol!r}")
        self.seeds = _integer_list("seeds", "--seed", self.seeds,
                                   "a list of non-negative integers")
        if not self.seeds:
            raise UnseenInputError("seeds (--seed): expected at least one seed, found none")
        repeated = sorted({s for s in self.seeds if self.seeds.count(s) > 1})
        if repeated:
            raise UnseenInputError(f"seeds (--seed): expected distinct seeds, found "
                                   f"{repeated[0]} more than once")
        if self.partitions is not None:
            self.partitions = _integer_list("partitions", "--partition", self.partitions,
                                            "one partition (>= 0) per seed")
            if len(self.partitions) != len(self.seeds):
                raise UnseenInputError(f"option '--partition': expected one partition (>= 0) per "
                                       f"seed ({len(self.seeds)}), found {self.partitions}")
        if not isinstance(self.overrides, dict) or not all(isinstance(k, str)
                                                           for k in self.overrides):
            raise UnseenInputError(f"overrides: expected a dict of option name -> value, found "
                                   f"{self.overrides!r}")
        self.overrides = {key: _plain(value) for key, value in self.overrides.items()}

    def partition_of(self, seed_index: int) -> int:
        """The partition that the `seed_index`-th seed trains and tests on."""
        return seed_index if self.partitions is None else self.partitions[seed_index]


@dataclass
class RunOptions:
    """Runner-level settings (not method hyperparameters), settable with --set."""

    feature_preprocessing: str = option("minmax", "features: minmax (fitted on the training "
                                                  "rows) or none")
    semantic_preprocessing: str = option("as_stored", "class semantics: as_stored or l2 "
                                                      "(L2-normalised)")
    val_unseen_fraction: float = option(0.2, "clean protocol: fraction of seen classes made "
                                             "pseudo-unseen for validation")
    val_seen_fraction: float = option(0.2, "clean protocol: fraction of the other seen classes' "
                                           "images held out as pseudo test-seen")
    val_split_seed: int = option(0, "seed of the validation class split")
    # The xlsa17 protocol defines three validation class splits. The default rule (3 folds,
    # window 3, gamma_shrink 0.5) kept the clean protocol's H closest to the paper protocol's
    # on a declared subset of files (docs/protocols.md, benchmarks/selection_rules.py).
    val_folds: int = option(3, "clean protocol: validation class splits whose mean H makes "
                               "the choice (each costs one training)")
    gamma: float | None = option(None, "fixed calibrated-stacking gamma; unset: the protocol "
                                       "decides")
    selection_window: int = option(3, "clean protocol: choose the epoch by the mean H of this "
                                      "many consecutive epochs (1: the best single epoch)")
    # Chosen with val_folds and selection_window (docs/protocols.md): halfway to 0 kept the
    # clean H closest to the paper protocol's; 0 is no calibration, not a published constant.
    gamma_shrink: float = option(0.5, "clean protocol: the gamma chosen on validation is "
                                      "multiplied by this (1: as chosen; 0.5: halfway to 0)")
    record_curves: bool = option(False, "write every candidate's exact seen-unseen curve at "
                                        "every evaluation of every phase to curves/ (for "
                                        "benchmarks/selection_rules.py)")

    @property
    def preprocessing(self) -> Preprocessing:
        return Preprocessing(self.feature_preprocessing, self.semantic_preprocessing)

    @property
    def validation_split(self) -> ValidationSplit:
        return ValidationSplit(self.val_unseen_fraction, self.val_seen_fraction,
                               self.val_split_seed)


def resolve_config(spec: RunSpec) -> tuple[type[GZSLMethod], MethodConfig, RunOptions]:
    """Method class, its config (defaults <- preset <- --set) and the runner options."""
    method_class = get_method(spec.method)
    config = method_class.config_class()
    preset = spec.preset or _default_preset(method_class, spec.dataset)
    if preset is not None:
        if preset not in method_class.presets:
            raise UnseenInputError(f"option '--preset': unknown preset {preset!r} for "
                                   f"{method_class.name}; known: {', '.join(method_class.presets)}")
        config = config.updated(method_class.presets[preset])
    run_values = {k: v for k, v in spec.overrides.items() if k in RUN_OPTION_KEYS}
    method_values = {k: v for k, v in spec.overrides.items() if k not in RUN_OPTION_KEYS}
    config = config.updated(method_values)
    option_types = get_type_hints(RunOptions)
    options = replace(RunOptions(), **{key: coerce_option(key, value, option_types[key])
                                       for key, value in run_values.items()})
    _ = options.preprocessing  # validates the preprocessing names early
    for key in ("selection_window", "val_folds"):
        if getattr(options, key) < 1:
            raise UnseenInputError(f"option '{key}': expected a positive integer, found "
                                   f"{getattr(options, key)}")
    if not 0.0 <= options.gamma_shrink <= 1.0:
        raise UnseenInputError(f"option 'gamma_shrink': expected a number in [0, 1], found "
                               f"{options.gamma_shrink}")
    return method_class, config, options


def _default_preset(method_class: type[GZSLMethod], dataset: str) -> str | None:
    """The preset named after the data set, if the method has one (AWA2 -> 'AWA2')."""
    by_lower = {name.lower(): name for name in method_class.presets}
    return by_lower.get(Path(dataset).name.lower())


def _integer_list(name: str, flag: str, values: Any, expected: str) -> list[int]:
    """`values` (any iterable of non-negative integers) as a list. A bare number is refused
    with the fix, since `seeds=5` could mean seed 5 or five seeds."""
    expected = f"{name} ({flag}): expected {expected}"
    if isinstance(values, (int, np.integer)) and not isinstance(values, bool):
        raise UnseenInputError(f"{expected}, found {values!r} (an int); use {name}=[{values}] "
                               f"or {name}=range({values})")
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise UnseenInputError(f"{expected}, found {values!r} of type {type(values).__name__}")
    items = list(values)
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (int, np.integer)) or item < 0:
            raise UnseenInputError(f"{expected}, found {item!r} of type {type(item).__name__} "
                                   f"in {items}")
    return [int(item) for item in items]


def _plain(value: Any) -> Any:
    """An override value as JSON can hold it (config.json): NumPy scalars as Python numbers,
    tuples, ranges and arrays as lists."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (tuple, list, range)):
        return [_plain(v) for v in value]
    return value


class Runner:
    """Runs (or resumes) one `RunSpec` into its run directory."""

    def __init__(self, spec: RunSpec, load_benchmark=None, quiet: bool = False) -> None:
        self.spec = spec
        self.console = Console(quiet)  # per-epoch lines and bars on stderr
        self.method_class, self.config, self.options = resolve_config(spec)
        self.run_dir = RunDirectory(spec.out)
        self._load_benchmark = load_benchmark or _default_loader
        self.rows: list[dict[str, Any]] = []
        self.scalars = ScalarLogger(self.run_dir.root / "tensorboard")

    # -- public ------------------------------------------------------------------------------------
    @classmethod
    def resume(cls, run_dir: str | Path, load_benchmark=None, quiet: bool = False) -> Runner:
        """Continue a killed run from its config.json, state.json and checkpoints."""
        config = RunDirectory(run_dir).read_config()
        spec = RunSpec(**{**config["spec"], "overwrite": False})
        spec.out = str(run_dir)
        return cls(spec, load_benchmark, quiet)

    def run(self) -> dict[str, Any]:
        init_from_env()
        self._check_partition_option()
        self.run_dir.create()
        fingerprint = self._claim_run_directory()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.barrier()  # other ranks read the directory once rank 0 claimed it
        config = {**self.resolved_config(), "fingerprint": fingerprint}  # runs `git rev-parse`
        self.run_dir.write_json(self.run_dir.config_path, config)
        # A run directory that already has rows is being continued: keep them, so that the
        # rewritten metrics.csv does not lose the seeds and phases finished earlier.
        self.rows = [_parse_row(row) for row in self.run_dir.read_metrics()]
        state = self.run_dir.read_state()
        self._check_partitions(state)
        per_seed = [state["seeds"][str(s)]["result"] for s in self.spec.seeds
                    if state["seeds"].get(str(s), {}).get("done")]
        for seed_index, seed in enumerate(self.spec.seeds):
            if state["seeds"].get(str(seed), {}).get("done"):
                continue
            per_seed.append(self._run_seed(seed_index, seed, state))
            if len(per_seed) < len(self.spec.seeds):  # a killed run keeps a report
                self._write_report(config, aggregate_results(config, per_seed))
        results = aggregate_results(config, per_seed)
        self.run_dir.write_json(self.run_dir.results_path, results)
        self._write_report(config, results)
        self.scalars.close()
        return results

    def fingerprint_document(self) -> dict[str, Any]:
        """What makes two runs the same run: everything but seeds, partitions and --out."""
        from unseen import __version__

        if self.spec.dataset_fingerprint is not None:  # an in-memory Benchmark: its content
            data = {"kind": "benchmark", "name": self.spec.dataset,
                    "sha256": self.spec.dataset_fingerprint}
        elif self._load_benchmark is _default_loader:
            data = dataset_identity(self.spec.dataset, self.spec.data_root)
        else:  # an injected loader (tests, the Python API): its name is its identity
            loader = self._load_benchmark
            data = {"kind": "loader", "name": self.spec.dataset,
                    "loader": f"{loader.__module__}.{loader.__qualname__}"}
        return {
            "format": FINGERPRINT_FORMAT,
            "method": self.method_class.name,
            "dataset": data,
            "protocol": self.spec.protocol,
            "preset": self.spec.preset or _default_preset(self.method_class, self.spec.dataset),
            "hyperparameters": asdict(self.config),
            "run_options": {key: value for key, value in asdict(self.options).items()
                            if self.spec.protocol == "clean" or key not in CLEAN_ONLY_OPTIONS},
            # The package version, not the git SHA: a commit between a kill and --resume must
            # not make the run impossible to resume (the SHA is in config.json's environment).
            "code_version": __version__,
        }

    def _claim_run_directory(self) -> str:
        """Refuse a run directory that holds a run with other settings, or discard that run
        with `overwrite`; then record this run's fingerprint there. Returns the fingerprint."""
        document = self.fingerprint_document()
        fingerprint = fingerprint_of(document)
        recorded = self.run_dir.read_fingerprint()
        if self.spec.overwrite and (recorded is not None or self.run_dir.has_run()):
            self.run_dir.clear()
            self.run_dir.create()
            recorded = None
        elif recorded is None and self.run_dir.has_run():
            self._refuse("a run without a fingerprint (made by an older unseen)")
        elif recorded is not None and recorded.get("fingerprint") != fingerprint:
            changes = differences(recorded.get("document", {}), document) or ["format"]
            self._refuse(f"a run with other settings: {'; '.join(changes)}")
        if recorded is None:
            self.run_dir.write_json(self.run_dir.fingerprint_path,
                                    {"fingerprint": fingerprint, "document": document})
        return fingerprint

    def _refuse(self, problem: str) -> None:
        raise UnseenInputError(f"run directory {self.run_dir.root}: expected a run with the same "
                               f"settings (or none), found {problem}; use --out NEW_DIR, or "
                               "--overwrite to discard the old run")

    def _write_report(self, config: dict[str, Any], results: dict[str, Any]) -> None:
        """Plots and report.md of the seeds finished so far (main process only)."""
        if is_main_process():
            write_plots(self.run_dir, results, self.rows, self.method_class.loss_keys)
            write_report(self.run_dir.root, config, results, self.method_class)

    def resolved_config(self) -> dict[str, Any]:
        return {
            "spec": {**asdict(self.spec), "overwrite": False},
            "method": self.method_class.name,
            "dataset": self.spec.dataset,
            "protocol": self.spec.protocol,
            "protocol_description": _PROTOCOL_TEXT[self.spec.protocol],
            "preset": self.spec.preset or _default_preset(self.method_class, self.spec.dataset),
            "hyperparameters": asdict(self.config),
            "run_options": asdict(self.options),
            "environment": _environment(),
        }

    def _check_partition_option(self) -> None:
        """Partitions exist only on the embedded data sets."""
        from unseen.data.loading import is_embedded

        if self.spec.partitions is not None and not is_embedded(self.spec.dataset):
            raise UnseenInputError(f"option '--partition': only the embedded data sets have "
                                   f"partitions; {self.spec.dataset!r} has its fixed proposed "
                                   "split")

    def _check_partitions(self, state: dict[str, Any]) -> None:
        """A seed's results and checkpoints are reused only for the partition they were made
        on (partitions, like seeds, are not part of the fingerprint)."""
        for index, seed in enumerate(self.spec.seeds):
            entry = state["seeds"].get(str(seed), {})
            recorded = entry.get("partition", entry.get("result", {}).get("partition"))
            wanted = self.spec.partition_of(index)
            if recorded is not None and recorded != wanted:
                raise UnseenInputError(
                    f"run directory {self.run_dir.root}: seed {seed} was run there on partition "
                    f"{recorded}, asked for partition {wanted}; use another --out")

    # -- one seed ----------------------------------------------------------------------------------
    def _run_seed(self, seed_index: int, seed: int, state: dict[str, Any]) -> dict[str, Any]:
        benchmark = self._load_benchmark(self.spec, seed_index)
        seed_state = state["seeds"].setdefault(str(seed), {})
        seed_state["partition"] = self.spec.partition_of(seed_index)
        self._write_state(state)  # before any checkpoint of this seed exists
        test_task = make_test_task(benchmark, self.options.preprocessing)
        started = time.time()
        if self.spec.protocol == "paper":
            gamma = self.options.gamma if self.options.gamma is not None else float(
                getattr(self.config, "gamma", 0.0))
            selection, monitor = self._fit(seed, "test", test_task, self.config, gamma)
            scores, zsl_scores = monitor.scores["best"], monitor.scores["best_zsl"]
        else:
            selection = self._validation_selection(seed, benchmark, seed_state, state)
            gamma = self.options.gamma if self.options.gamma is not None else (
                self.options.gamma_shrink * float(selection.result["gamma"]))
            # Retrain on trainval for the chosen number of epochs; no choice is made on test.
            # Methods that evaluate mid-epoch stop at the chosen batch (`stop_after_steps`).
            retrain = {"epochs": selection.epoch + 1}
            if hasattr(self.config, "stop_after_steps"):
                retrain["stop_after_steps"] = selection.step or 0
            test_config = self.config.updated(retrain)
            _, monitor = self._fit(seed, "test", test_task, test_config, gamma,
                                   only_candidate=selection.candidate,
                                   only_zsl_candidate=selection.zsl_candidate)
            scores, zsl_scores = monitor.scores["last"], monitor.scores["last_zsl"]
        final = self._final_result(test_task, scores, gamma, zsl_scores)
        selected = {"epoch": selection.epoch, "step": selection.step,
                    "candidate": selection.candidate,
                    "zsl_epoch": selection.zsl_epoch, "zsl_candidate": selection.zsl_candidate,
                    "on": "validation" if self.spec.protocol == "clean" else "test"}
        if "folds" in selection.result:
            selected["folds"] = selection.result["folds"]
        result = {
            "seed": seed, "partition": self.spec.partition_of(seed_index), **final,
            "selected": selected, "seconds": round(time.time() - started, 2),
        }
        self.console.print(seed_line(result))
        self._save_final(seed, self._last_method, test_task, scores, result)
        seed_state.update({"done": True, "result": result})
        self._write_state(state)
        return result

    def _validation_selection(self, seed: int, benchmark: Benchmark, seed_state: dict[str, Any],
                              state: dict[str, Any]) -> Selection:
        """Train on each validation fold (phases validation, validation2, ...) and choose."""
        selections = []
        for fold in range(self.options.val_folds):
            phase = "validation" if fold == 0 else f"validation{fold + 1}"
            if phase not in seed_state:
                split = replace(self.options.validation_split, fold=fold)
                val_task = make_validation_task(benchmark, self.options.preprocessing, split)
                selection, _ = self._fit(seed, phase, val_task, self.config, self.options.gamma)
                seed_state[phase] = selection.__dict__
                self._write_state(state)
            selections.append(Selection(**seed_state[phase]))
        if len(selections) == 1:
            return selections[0]
        return combine_folds(selections, self.options.selection_window)

    def _fit(self, seed: int, phase: str, task: GZSLTask, config: MethodConfig,
             gamma: float | None, only_candidate: str | None = None,
             only_zsl_candidate: str | None = None) -> tuple[Selection, SelectionMonitor]:
        checkpoint_path = self.run_dir.checkpoint_path(seed, phase)
        method = self.method_class(config, seed)
        selection, scores = None, None
        if checkpoint_path.is_file():
            checkpoint = self.run_dir.load_checkpoint(checkpoint_path)
            method.load_state_dict(checkpoint["method_state"])
            selection, scores = Selection(**checkpoint["selection"]), checkpoint["scores"]
        else:
            seed_everything(seed)
        self.rows = [r for r in self.rows if not (r.get("seed") == seed and r.get("phase") == phase
                                                   and r.get("epoch", -1) >= method.start_epoch)]

        print_row = self.console.epoch_printer(seed, phase, config.epochs,
                                               self.method_class.loss_keys)

        def log_row(row: dict[str, Any]) -> None:
            row = {"seed": seed, "phase": phase, **row}
            self.rows.append(row)
            self.run_dir.write_metrics(self.rows)
            self.scalars.log(f"seed{seed}/{phase}", row, row["epoch"])
            print_row(row)

        # The window is a clean-protocol rule: the paper protocol keeps the best epoch on test.
        window = (min(self.options.selection_window, int(getattr(config, "epochs", 1)) or 1)
                  if self.spec.protocol == "clean" else 1)
        curves_path = None
        if self.options.record_curves:
            curves_path = self.run_dir.curves_path(seed, phase)
            curves_path.parent.mkdir(exist_ok=True)
        monitor = SelectionMonitor(task, gamma, checkpoint_path, self.run_dir.save_checkpoint,
                                   log_row, selection, only_candidate, only_zsl_candidate,
                                   scores=scores, window=window, console=self.console,
                                   curves_path=curves_path)
        if method.start_epoch < config.epochs:  # else: finished before a kill; scores restored
            method.fit(task, monitor)
        chosen = monitor.selection.candidate or only_candidate
        if chosen:
            method.select(chosen)
        self._last_method = method
        return monitor.selection, monitor

    # -- results -----------------------------------------------------------------------------------
    @staticmethod
    def _final_result(task: GZSLTask, scores: torch.Tensor, gamma: float,
                      zsl_scores: torch.Tensor | None) -> dict[str, Any]:
        labels = torch.as_tensor(task.labels_of(task.eval_idx))
        is_seen = torch.as_tensor(task.is_seen_class)
        zsl_labels = None
        if zsl_scores is not None:
            zsl_labels = torch.as_tensor(np.searchsorted(
                task.unseen_classes, task.benchmark.labels[task.eval_unseen_idx]))
        result = evaluate(scores, labels, is_seen, gamma=gamma, zsl_scores=zsl_scores,
                          zsl_labels=zsl_labels)
        return _public_metrics(result.to_dict(include_curve=False))

    def _save_final(self, seed: int, method: GZSLMethod, task: GZSLTask,
                    scores: torch.Tensor, result: dict[str, Any]) -> None:
        self.run_dir.save_checkpoint(self.run_dir.scores_path(seed), {
            "scores": scores, "labels": torch.as_tensor(task.labels_of(task.eval_idx)),
            "is_seen_class": torch.as_tensor(task.is_seen_class),
            "class_names": [task.benchmark.class_names[c] for c in task.classes],
            "gamma": result["gamma"], "protocol": self.spec.protocol})
        self.run_dir.save_checkpoint(self.run_dir.final_checkpoint_path(seed), {
            "method": self.method_class.name, "config": asdict(method.config),
            "method_state": method.state_dict(), "candidate": result["selected"]["candidate"],
            "gamma": result["gamma"], "classes": task.classes.tolist(),
            "seen_classes": task.seen_classes.tolist(), "partition": result["partition"],
            "class_names": [task.benchmark.class_names[c] for c in task.classes],
            "preprocessing": task.notes.get("preprocessing"), "minmax": task.notes.get("minmax"),
            "benchmark_source": _jsonable_source(task.benchmark.source)})

    def _write_state(self, state: dict[str, Any]) -> None:
        self.run_dir.write_json(self.run_dir.state_path, state)


_PROTOCOL_TEXT = {
    "clean": "epoch, classifier candidate and calibrated-stacking gamma chosen on a validation "
             "split built from trainval only (class-disjoint pseudo-unseen classes plus held-out "
             "seen images); the model is then retrained on trainval and evaluated once on test",
    "paper": "reproduces the reference code: epoch and classifier candidate are the best on the "
             "TEST set and gamma is the published constant; test-set selection, optimistic",
}


def _public_metrics(result: dict[str, Any]) -> dict[str, Any]:
    keys = ("U", "S", "H", "T1", "AUSUC", "gamma", "per_class_accuracy")
    return {key: result.get(key) for key in keys}


def _parse_row(row: dict[str, str]) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    for key, value in row.items():
        if key in ("seed", "epoch"):
            parsed[key] = int(value)
        else:
            try:
                parsed[key] = float(value)
            except (TypeError, ValueError):
                parsed[key] = value
    return parsed


def _jsonable_source(source: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in source.items()
            if isinstance(v, (str, int, float, bool, Path, type(None), list, dict))}


def _environment() -> dict[str, Any]:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        sha = None
    from unseen import __version__

    return {"unseen": __version__, "git_sha": sha, "torch": torch.__version__,
            "python": platform.python_version(), "cuda": torch.cuda.is_available()}


def _default_loader(spec: RunSpec, seed_index: int) -> Benchmark:
    if spec.dataset_fingerprint is not None:
        raise UnseenInputError(
            f"run directory {spec.out}: trained on the in-memory benchmark {spec.dataset!r} "
            f"(fingerprint {spec.dataset_fingerprint[:12]}), found none to load; pass it again: "
            "unseen.resume(run_dir, benchmark=...)")
    from unseen.data.loading import load_dataset

    return load_dataset(spec.dataset, spec.data_root, partition=spec.partition_of(seed_index))
