"""The final softmax classifiers of one evaluation, kept by candidate name: what a generative
method hands the runner each epoch (their eval log-probabilities) and what `scores` applies to
new features afterwards (their weights)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F

from unseen.data.tasks import GZSLTask
from unseen.errors import UnseenInputError
from unseen.methods.generative.classifier import ClassifierEpoch


class CandidateClassifiers:
    """name -> (kind, weight, bias); kind "gzsl" scores `task.classes`, "zsl" scores only
    `task.unseen_classes` (the seen columns then get -inf)."""

    def __init__(self, method_name: str) -> None:
        self.method_name = method_name
        self.entries: dict[str, tuple[str, torch.Tensor, torch.Tensor]] = {}

    def clear(self) -> None:
        self.entries = {}

    def collect(self, prefix: str, kind: str, epochs: Iterable[ClassifierEpoch]
                ) -> dict[str, torch.Tensor]:
        """Drain a `train_classifier` run: keep each epoch's weights as candidate
        "{prefix}={epoch}" and return its eval log-probabilities by the same names."""
        log_probs = {}
        for number, result in enumerate(epochs, start=1):
            name = f"{prefix}={number}"
            log_probs[name] = result.log_probs.cpu()
            self.entries[name] = (kind, result.weight.cpu(), result.bias.cpu())
        return log_probs

    def scores(self, name: str, task: GZSLTask, features: torch.Tensor) -> torch.Tensor:
        """Log-probabilities [n, K] over `task.classes` of candidate `name` on `features`."""
        if name not in self.entries:
            known = ", ".join(self.entries) or "none (the method is not trained)"
            raise UnseenInputError(f"{self.method_name} candidate '{name}': unknown; "
                                   f"available: {known}")
        kind, weight, bias = self.entries[name]
        columns = task.classes if kind == "gzsl" else task.unseen_classes
        if weight.shape[0] != columns.size:
            raise UnseenInputError(f"{self.method_name} candidate '{name}': trained for "
                                   f"{weight.shape[0]} classes, the task has {columns.size}")
        log_probs = torch.log_softmax(F.linear(features, weight.to(features.device),
                                               bias.to(features.device)), dim=1).cpu()
        if kind == "gzsl":
            return log_probs
        full = log_probs.new_full((log_probs.shape[0], task.classes.size), float("-inf"))
        full[:, torch.as_tensor(task.to_task_labels(columns))] = log_probs
        return full

    def entry(self, name: str) -> dict[str, Any]:
        """One classifier as `state_dict` stores it."""
        kind, weight, bias = self.entries[name]
        return {"kind": kind, "weight": weight, "bias": bias}

    def state_dict(self) -> dict[str, Any]:
        return {name: self.entry(name) for name in self.entries}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.entries = {name: (entry["kind"], entry["weight"], entry["bias"])
                        for name, entry in state.items()}
