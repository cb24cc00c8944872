"""`GZSLClassifier`: the feature methods (ESZSL, CE-GZSL) as a scikit-learn-style estimator.

    classifier = GZSLClassifier("cegzsl", preset="demo", epochs=5).fit(benchmark)
    classifier.predict(raw_features)          # class names, seen and unseen classes alike
    classifier.predict_proba(raw_features)    # [N, C], rows sum to 1, columns = classes_
    classifier.score(raw_features, labels)    # H (or S / U when only one group is present)

`fit(benchmark)` runs the clean protocol of `unseen train`, minus the run directory: the epoch,
the classifier candidate (CE-GZSL's classifier epoch, ESZSL's regularisation pair) and, with
`gamma="validation"`, the calibrated-stacking gamma are chosen on validation tasks carved out of
trainval (`val_folds` of them, `selection_window` epochs averaged); the method is then retrained
on all of trainval for the chosen number of epochs and its last epoch kept. The test rows'
labels are never read. `X` is always raw features in the benchmark's feature space: `predict`
scales them with the statistics fitted on the training rows, as the method saw its own.

The conventions are scikit-learn's (hyperparameters are constructor arguments, `get_params` /
`set_params`, `fit` returns self, fitted attributes end in `_`); scikit-learn is not needed.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import torch

from unseen.data.benchmark import Benchmark
from unseen.data.tasks import GZSLTask, make_test_task, make_validation_task, transform_features
from unseen.errors import TrainingDivergedError, UnseenInputError
from unseen.evaluation import evaluate, summarise_scores
from unseen.methods.base import EpochReport, GZSLMethod, seed_everything
from unseen.runner import RunSpec, resolve_config
from unseen.selection import Selection, SelectionMonitor, combine_folds

_CONSTRUCTOR_PARAMS = ("method", "preset", "gamma", "seed")


class GZSLClassifier:
    """A GZSL classifier over seen and unseen classes, trained from a `Benchmark`.

    `method`: "eszsl" or "cegzsl" (DUET trains on images: use `unseen.train`). `preset`: a
    named setting of the method (default: the one named after the benchmark, if any).
    `gamma`: "validation" (chosen where the epoch is) or a fixed calibrated-stacking gamma.
    `seed`: the training seed. `**params`: the method's hyperparameters (`unseen methods`,
    e.g. `epochs=20`, `feature_regularisation=[0.1, 1, 10]`) and the runner's options
    (`feature_preprocessing`, `semantic_preprocessing`, `val_folds`, `selection_window`, ...).

    Fitted attributes: `classes_` (class names, the columns of `predict_proba`), `class_ids_`
    (their ids in the benchmark), `is_seen_class_`, `gamma_`, `candidate_`, `epochs_` (epochs
    of the final training), `selection_` (the validation choice and its H), `history_` (one
    row per validation fold and epoch), `method_` (the trained `GZSLMethod`), `n_features_in_`.
    """

    def __init__(self, method: str = "eszsl", preset: str | None = None,
                 gamma: float | str = "validation", seed: int = 0, **params: Any) -> None:
        self.method = method
        self.preset = preset
        self.gamma = gamma
        self.seed = seed
        self.params = dict(params)

    # -- scikit-learn conventions ----------------------------------------------------------------
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor arguments, the method's hyperparameters included (`deep` is accepted for
        scikit-learn compatibility; there are no nested estimators)."""
        return {"method": self.method, "preset": self.preset, "gamma": self.gamma,
                "seed": self.seed, **self.params}

    def set_params(self, **params: Any) -> GZSLClassifier:
        """Set constructor arguments or hyperparameters (checked at `fit`); returns self."""
        for key, value in params.items():
            if key in _CONSTRUCTOR_PARAMS:
                setattr(self, key, value)
            else:
                self.params[key] = value
        return self

    def __repr__(self) -> str:
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"GZSLClassifier({arguments})"

    # -- training --------------------------------------------------------------------------------
    def fit(self, benchmark: Benchmark) -> GZSLClassifier:
        """Choose on validation, retrain on trainval (see the module docstring); returns self."""
        if not isinstance(benchmark, Benchmark):
            raise UnseenInputError(f"GZSLClassifier.fit: expected a Benchmark (unseen."
                                   f"load_benchmark(...)), found {type(benchmark).__name__}")
        method_class, config, options = resolve_config(RunSpec(
            method=self.method, dataset=benchmark.name, preset=self.preset,
            overrides={**self.params, **self._gamma_override()}, seeds=[self.seed]))
        if method_class.input_kind != "features":
            raise UnseenInputError(
                f"GZSLClassifier: method {method_class.name!r} trains on {method_class.input_kind}"
                ", not feature vectors; expected eszsl or cegzsl (train "
                f"{method_class.name} with unseen.train)")
        self.history_: list[dict[str, Any]] = []
        window = min(options.selection_window, int(config.epochs) or 1)
        selections = []
        for fold in range(options.val_folds):
            task = make_validation_task(benchmark, options.preprocessing,
                                        replace(options.validation_split, fold=fold))

            def log_row(row: dict[str, Any], fold: int = fold) -> None:
                self.history_.append({"fold": fold, **row})

            monitor = SelectionMonitor(task, options.gamma, None, None, log_row, window=window)
            self._train(method_class(config, self.seed), task, monitor)
            selections.append(monitor.selection)
        selection = (selections[0] if len(selections) == 1
                     else combine_folds(selections, options.selection_window))
        if selection.epoch < 0:
            raise UnseenInputError(f"benchmark '{benchmark.name}': expected a validation task with "
                                   "seen and unseen samples, found no epoch with a defined H")
        test_task = make_test_task(benchmark, options.preprocessing)
        final = method_class(config.updated({"epochs": selection.epoch + 1}), self.seed)
        self._train(final, test_task, _LastEpochMonitor())
        final.select(selection.candidate)

        self.method_: GZSLMethod = final
        self.task_: GZSLTask = test_task
        self.selection_: Selection = selection
        self.candidate_: str = selection.candidate
        self.gamma_: float = (options.gamma_shrink * float(selection.result["gamma"])
                              if options.gamma is None else float(options.gamma))
        self.epochs_: int = selection.epoch + 1
        self.class_ids_: np.ndarray = test_task.classes
        self.classes_: np.ndarray = np.array([benchmark.class_names[c] for c in test_task.classes])
        self.is_seen_class_: np.ndarray = test_task.is_seen_class
        self.n_features_in_: int = int(benchmark.features.shape[1])
        return self

    def _gamma_override(self) -> dict[str, float]:
        if isinstance(self.gamma, str) and self.gamma == "validation":
            return {}
        if isinstance(self.gamma, bool) or not isinstance(self.gamma, (int, float, np.number)):
            raise UnseenInputError(f"option 'gamma': expected \"validation\" or a number, found "
                                   f"{self.gamma!r}")
        return {"gamma": float(self.gamma)}

    def _train(self, method: GZSLMethod, task: GZSLTask, monitor: Any) -> None:
        seed_everything(self.seed)
        method.fit(task, monitor)

    # -- prediction ------------------------------------------------------------------------------
    def decision_function(self, X: Any) -> np.ndarray:
        """Calibrated scores [N, C]: the method's scores minus `gamma_` on the seen columns."""
        return self._calibrated(self._scores(X)).numpy()

    def predict_proba(self, X: Any) -> np.ndarray:
        """Softmax of the calibrated scores [N, C]; columns follow `classes_`."""
        return torch.softmax(self._calibrated(self._scores(X)).double(), dim=1).numpy()

    def predict(self, X: Any) -> np.ndarray:
        """Class names [N] by calibrated stacking (the evaluation's exact rule, first column on
        a tie)."""
        summary = summarise_scores(self._scores(X), torch.as_tensor(self.is_seen_class_))
        return self.classes_[summary.predictions(self.gamma_).numpy()]

    def score(self, X: Any, y: Any) -> float:
        """H, the harmonic mean of the per-class mean accuracies on seen and unseen classes
        (calibrated with `gamma_`), when `y` holds both; the per-class mean accuracy of the one
        group present (S or U) otherwise. `y`: class names or benchmark class ids."""
        scores = self._scores(X)
        labels = self._positions(y, scores.shape[0])
        result = evaluate(scores, labels, self.is_seen_class_, gamma=self.gamma_)
        present = self.is_seen_class_[labels]
        if present.all():
            return result.S
        return result.U if not present.any() else result.H

    def _scores(self, X: Any) -> torch.Tensor:
        if not hasattr(self, "method_"):
            raise UnseenInputError("GZSLClassifier: expected a fitted classifier, found an "
                                   "unfitted one; call fit(benchmark) first")
        array = X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else np.asarray(X)
        if (array.ndim != 2 or array.shape[1] != self.n_features_in_
                or not np.issubdtype(array.dtype, np.number)):
            raise UnseenInputError(
                f"X: expected raw features [N, {self.n_features_in_}] (the benchmark's feature "
                f"space), found {array.dtype} of shape {array.shape}")
        if not np.isfinite(array).all():
            row = int(np.argwhere(~np.isfinite(array))[0, 0])
            raise UnseenInputError(f"X: expected finite features, found NaN or Inf in row {row}")
        features = torch.as_tensor(transform_features(self.task_, array.astype(np.float32)))
        with torch.no_grad():
            return self.method_.scores(self.task_, features, self.candidate_).float().cpu()

    def _calibrated(self, scores: torch.Tensor) -> torch.Tensor:
        return scores - self.gamma_ * torch.as_tensor(self.is_seen_class_, dtype=scores.dtype)

    def _positions(self, y: Any, rows: int) -> np.ndarray:
        """Columns of `classes_` for labels given as class names or benchmark class ids."""
        values = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
        if values.shape != (rows,):
            raise UnseenInputError(f"y: expected {rows} labels (one per row of X), found shape "
                                   f"{values.shape}")
        if values.dtype.kind in "iu":
            known, keys = self.class_ids_, values
        else:
            known, keys = self.classes_, values.astype(str)
        order = np.argsort(known)
        slots = np.clip(np.searchsorted(known[order], keys), 0, known.size - 1)
        positions = order[slots]
        unknown = keys[known[positions] != keys]
        if unknown.size:
            raise UnseenInputError(f"y: expected class names or ids of the benchmark's "
                                   f"{known.size} classes, found {unknown[0]!r}")
        return positions


class _LastEpochMonitor:
    """The final training on trainval: nothing is chosen there, so nothing is evaluated (the
    test rows' labels stay unread); the last epoch is kept and a non-finite loss stops it."""

    def epoch_end(self, method: GZSLMethod, report: EpochReport) -> None:
        for name, value in report.losses.items():
            if isinstance(value, float) and not np.isfinite(value):
                raise TrainingDivergedError(f"loss '{name}' is {value} at epoch {report.epoch} "
                                            "of the final training; lower the learning rate")

    def progress(self, iterable: Any, description: str, total: int | None = None) -> Any:
        return iterable
