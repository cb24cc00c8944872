"""The one small interface every method implements, and what the runner hands it.

A method trains on a `GZSLTask` and, at the end of every epoch, hands the runner its
*candidate score matrices* for the task's evaluation rows. The runner (not the method)
computes metrics, selects epochs and candidates according to the protocol, logs, and
checkpoints. Methods know nothing of protocols, run directories or the CLI.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar, Protocol

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


@dataclass
class MethodConfig:
    """Base of every method's hyperparameters. Subclasses add fields with the paper's defaults."""

    epochs: int = 1
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", ...
    replicate_reference_bugs: bool = False

    def updated(self, values: dict[str, Any]) -> MethodConfig:
        """A copy with `values` applied; unknown keys or bad types raise UnseenInputError."""
        known = {f.name: f for f in fields(self)}
        converted = {}
        for key, value in values.items():
            if key not in known:
                raise UnseenInputError(
                    f"option '--set {key}': unknown for {type(self).__name__}; known keys: "
                    f"{', '.join(sorted(known))}")
            converted[key] = _coerce(key, value, getattr(self, key))
        return replace(self, **converted)


def _coerce(key: str, value: Any, current: Any) -> Any:
    if not isinstance(value, str) or isinstance(current, str) or current is None:
        return value
    try:
        if isinstance(current, bool):
            if value.lower() in ("true", "1", "yes", "on"):
                return True
            if value.lower() in ("false", "0", "no", "off"):
                return False
            raise ValueError(value)
        if isinstance(current, int):
            return int(value)
        if isinstance(current, float):
            return float(value)
        if isinstance(current, (tuple, list)):
            if not current:
                return value
            return type(current)(type(current[0])(v) for v in value.split(","))
    except ValueError:
        raise UnseenInputError(f"option '--set {key}={value}': expected a "
                               f"{type(current).__name__}, found {value!r}") from None
    return value


class GZSLMethod(ABC):
    """Same verbs for every method: `fit`, `scores`, `state_dict`, `load_state_dict`."""

    name: ClassVar[str]
    config_class: ClassVar[type[MethodConfig]]
    # Named presets: dataset name (or other preset name) -> field overrides of config_class.
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    # What the method consumes: "features" (res101-style vectors) or "images".
    input_kind: ClassVar[str] = "features"
    description: ClassVar[str] = ""

    def __init__(self, config: MethodConfig, seed: int) -> None:
        self.config = config
        self.seed = seed
        self.start_epoch = 0  # > 0 after load_state_dict of a checkpoint

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
        candidates; None means the method's default (its last classifier)."""

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

    import numpy as np

    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": np.random.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    import random

    import numpy as np

    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
