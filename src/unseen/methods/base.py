"""The one small interface every method implements, and what the runner hands it.

A method trains on a `GZSLTask` and, at the end of every epoch, hands the runner its
*candidate score matrices* for the task's evaluation rows. The runner (not the method)
computes metrics, selects epochs and candidates according to the protocol, logs, and
checkpoints. Methods know nothing of protocols, run directories or the CLI.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, fields, replace
from types import UnionType
from typing import Any, ClassVar, Protocol, Union, get_args, get_origin, get_type_hints

import numpy as np
import torch

from unseen.data.tasks import GZSLTask
from unseen.errors import UnseenInputError


@dataclass
class EpochReport:
    """What a method hands the runner after one epoch.

    `gzsl_candidates` maps a candidate name (e.g. "classifier_epoch=12") to a score matrix
    [n_eval, K] over `task.classes` for the rows `task.eval_idx` (seen part first). Higher is
    more likely. The runner picks among candidates (by H) and among epochs per protocol.

    `zsl_candidates` (optional) maps names to score matrices [n_eval_unseen, K_u] over
    `task.unseen_classes` for `task.eval_unseen_idx`, from a separate ZSL classifier. When
    absent, T1 is computed from the GZSL scores restricted to the unseen columns.
    """

    epoch: int  # 0-based epoch that just finished
    gzsl_candidates: dict[str, torch.Tensor]
    zsl_candidates: dict[str, torch.Tensor] | None = None
    losses: dict[str, float] = field(default_factory=dict)
    # a mid-epoch evaluation: the batches of `epoch` trained so far (None: the epoch's end)
    step: int | None = None


class TrainingMonitor(Protocol):
    """Implemented by the runner; called by methods."""

    def epoch_end(self, method: GZSLMethod, report: EpochReport) -> None:
        """Record metrics for the epoch and checkpoint `method.state_dict()`."""

    def progress(self, iterable: Any, description: str, total: int | None = None) -> Any:
        """Wrap a long loop in a progress bar (quiet when not on a terminal)."""


def option(default: Any, meaning: str) -> Any:
    """A config field with its one-line meaning, which `unseen methods NAME` prints."""
    return field(default=default, metadata={"help": meaning})


@dataclass
class MethodConfig:
    """Base of every method's hyperparameters. Subclasses add fields with the paper's defaults."""

    epochs: int = option(1, "training epochs")
    device: str = option("auto", "where to train: auto (CUDA if present), cpu, cuda, cuda:1, ...")
    replicate_reference_bugs: bool = option(
        False, "reproduce the reference code's known bugs instead of the fixed behaviour")

    def __post_init__(self) -> None:
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1:
            raise UnseenInputError(f"option '--set epochs={self.epochs}': expected a positive "
                                   "integer (at least one epoch)")

    def updated(self, values: dict[str, Any]) -> MethodConfig:
        """A copy with `values` applied: CLI strings ("0.1", "true", "1,10,100") or typed Python
        values (0.1, True, [1, 10, 100]); unknown keys or bad types raise UnseenInputError."""
        known = {f.name for f in fields(self)}
        types = get_type_hints(type(self))
        converted = {}
        for key, value in values.items():
            if key not in known:
                raise UnseenInputError(
                    f"option '{key}': unknown for {type(self).__name__}; known keys: "
                    f"{', '.join(sorted(known))}")
            converted[key] = coerce_option(key, value, types[key])
        return replace(self, **converted)


def coerce_option(key: str, value: Any, expected: Any) -> Any:
    """`value` as the declared type `expected` (bool, int, float, str, tuple[T, ...], or one of
    them | None). Strings are parsed as the CLI's `--set` gives them; typed values are checked.
    A single number for a tuple field is a one-element grid."""
    target = expected
    if get_origin(expected) in (Union, UnionType):  # `T | None`: an optional field
        if value is None:
            return None
        (target,) = (t for t in get_args(expected) if t is not type(None))
    if get_origin(target) is tuple:
        item_type = get_args(target)[0]
        if isinstance(value, str):
            items: Any = [part.strip() for part in value.split(",")]
        elif isinstance(value, (list, tuple, range, np.ndarray)):
            items = list(value.tolist() if isinstance(value, np.ndarray) else value)
        else:
            items = [value]
        if not items:
            raise _type_error(key, f"a non-empty list of {item_type.__name__}s", value)
        try:
            return tuple(_scalar(item, item_type) for item in items)
        except (TypeError, ValueError):
            raise _type_error(key, f"a list of {item_type.__name__}s", value) from None
    try:
        return _scalar(value, target)
    except (TypeError, ValueError):
        raise _type_error(key, _TYPE_WORDS.get(target, target.__name__), value) from None


_TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _scalar(value: Any, target: type) -> Any:
    """One value as `target`: strings parsed, numbers checked (no silent truncation)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str):
        if target is str:
            return value
        if target is bool:
            lowered = value.strip().lower()
            if lowered in ("true", "1", "yes", "on"):
                return True
            if lowered in ("false", "0", "no", "off"):
                return False
            raise ValueError(value)
        return target(value.strip())
    if target is bool:
        if isinstance(value, bool):
            return value
    elif target is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif target is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(value, target):
        return value
    raise TypeError(value)


def _type_error(key: str, expected: str, value: Any) -> UnseenInputError:
    return UnseenInputError(f"option '{key}': expected {expected}, found {value!r} "
                            f"(a {type(value).__name__})")


class GZSLMethod(ABC):
    """Same verbs for every method: `fit`, `scores`, `state_dict`, `load_state_dict`."""

    name: ClassVar[str]
    config_class: ClassVar[type[MethodConfig]]
    # Named presets: dataset name (or other preset name) -> field overrides of config_class.
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    # What the method consumes: "features" (res101-style vectors) or "images".
    input_kind: ClassVar[str] = "features"
    description: ClassVar[str] = ""
    # Which `EpochReport.losses` are losses (printed each epoch, drawn in training_curves.png);
    # the others are counters or diagnostics, kept in metrics.csv only. None: all of them.
    loss_keys: ClassVar[tuple[str, ...] | None] = None

    def __init__(self, config: MethodConfig, seed: int) -> None:
        self.config = config
        self.seed = seed
        self.start_epoch = 0  # > 0 after load_state_dict of a checkpoint
        self.selected_candidate: str | None = None  # set by `select`

    def select(self, candidate: str) -> None:
        """Record the GZSL candidate that the protocol chose (the runner and `GZSLClassifier`
        call it after training); `scores` uses it when no candidate is named."""
        self.selected_candidate = candidate

    @property
    def device(self) -> torch.device:
        return resolve_device(self.config.device)

    @abstractmethod
    def fit(self, task: GZSLTask, monitor: TrainingMonitor) -> None:
        """Train for epochs `start_epoch..config.epochs-1`, calling `monitor.epoch_end` each."""

    @abstractmethod
    def scores(self, task: GZSLTask, inputs: torch.Tensor, candidate: str | None = None
               ) -> torch.Tensor:
        """Score matrix [n, K] over `task.classes` for new inputs: preprocessed features
        [n, D] (feature methods, already scaled like `task.features`) or pixel tensors
        [n, 3, H, W] (image methods). `candidate` names one of the last epoch's GZSL
        candidates; None means the selected one (`select`), else the method's default."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly: weights, optimisers, RNG states, epoch."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from `state_dict()`; sets `start_epoch` to the next epoch to run."""


def resolve_device(spec: str) -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise UnseenInputError(f"option 'device': expected auto, cpu or cuda[:N], "
                               f"found {spec!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UnseenInputError("option 'device': cuda requested but no CUDA device is available")
    return device


def capture_rng_state() -> dict[str, Any]:
    """The global RNG states, so that a resumed run draws the same numbers."""
    import random

    # NumPy's dict form (its key array becomes a tensor in a checkpoint; set_state takes both).
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": np.random.get_state(legacy=False)}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    import random

    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class EpochRNG:
    """The global RNG state at the end of the last epoch: saved in checkpoints and put back on
    resume, so that a resumed run draws the numbers an unbroken one would. The monitor may draw
    random numbers when it sees an epoch; `report` keeps those draws out of the next epoch."""

    def __init__(self) -> None:
        self.at_epoch_end: dict[str, Any] | None = None
        self._pending: dict[str, Any] | None = None  # loaded, not yet restored by `fit`

    def report(self, monitor: TrainingMonitor, method: GZSLMethod,
               report: EpochReport) -> None:
        """Hand `report` to the monitor with the RNG state of the epoch's end around it."""
        self.at_epoch_end = capture_rng_state()
        monitor.epoch_end(method, report)
        restore_rng_state(self.at_epoch_end)

    def state(self) -> dict[str, Any]:
        """For a checkpoint: the epoch end's state (the current one before any epoch)."""
        return self.at_epoch_end or capture_rng_state()

    def load(self, state: dict[str, Any]) -> None:
        self.at_epoch_end = self._pending = state

    def restore_loaded(self) -> None:
        """Put a loaded checkpoint's state back (once), as `fit` resumes."""
        if self._pending is not None:
            restore_rng_state(self._pending)
            self._pending = None


def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
