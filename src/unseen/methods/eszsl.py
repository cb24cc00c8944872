"""ESZSL: An Embarrassingly Simple approach to Zero-Shot Learning (Romera-Paredes & Torr, ICML 2015).

Closed form: with X [D, n] training features, Y [n, z] in {-1, 1} (1 for the true class) and
S [A, z] the seen-class semantics,

    V = (X Xᵀ + γ I)⁻¹ X Y Sᵀ (S Sᵀ + λ I)⁻¹,      score(x, c) = xᵀ V s_c.

There is no training loop: one "epoch" evaluates every (γ, λ) pair of the grid, and the runner
selects the pair like any other candidate (on validation under the clean protocol).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from unseen.data.tasks import GZSLTask
from unseen.methods.base import EpochReport, GZSLMethod, MethodConfig, TrainingMonitor


@dataclass
class ESZSLConfig(MethodConfig):
    epochs: int = 1
    feature_regularisation: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)
    semantic_regularisation: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)


class ESZSL(GZSLMethod):
    """Closed-form bilinear compatibility; candidates are the regularisation pairs."""

    name = "eszsl"
    config_class = ESZSLConfig
    presets = {"demo": {}}
    description = "ESZSL (Romera-Paredes & Torr, ICML 2015): closed-form baseline"

    def __init__(self, config: ESZSLConfig, seed: int) -> None:
        super().__init__(config, seed)
        self.weights: dict[str, torch.Tensor] = {}  # candidate name -> V [D, A]

    def fit(self, task: GZSLTask, monitor: TrainingMonitor) -> None:
        device = self.device
        dtype = torch.float64  # the normal equations are ill-conditioned in float32
        features = torch.as_tensor(task.features[task.train_idx], device=device, dtype=dtype)
        semantics = torch.as_tensor(task.semantics, device=device, dtype=dtype)
        seen = torch.as_tensor(task.seen_classes, device=device)
        local = torch.as_tensor(
            torch.searchsorted(seen, torch.as_tensor(task.benchmark.labels[task.train_idx],
                                                     device=device)))
        targets = -torch.ones(features.shape[0], seen.numel(), device=device, dtype=dtype)
        targets[torch.arange(features.shape[0], device=device), local] = 1.0
        seen_semantics = semantics[seen].T  # [A, z]
        x = features.T  # [D, n]
        gram_x, gram_s = x @ x.T, seen_semantics @ seen_semantics.T
        middle = x @ targets @ seen_semantics.T  # [D, A]
        eye_d = torch.eye(gram_x.shape[0], device=device, dtype=dtype)
        eye_a = torch.eye(gram_s.shape[0], device=device, dtype=dtype)
        left = {g: torch.linalg.solve(gram_x + g * eye_d, middle)
                for g in self.config.feature_regularisation}
        self.weights = {
            f"gamma={g:g},lambda={lam:g}": torch.linalg.solve(
                gram_s + lam * eye_a, left[g].T).T.float().cpu()
            for g in self.config.feature_regularisation
            for lam in self.config.semantic_regularisation}
        eval_inputs = torch.as_tensor(task.features[task.eval_idx])
        candidates = {name: self.scores(task, eval_inputs, name) for name in self.weights}
        self.start_epoch = 1
        monitor.epoch_end(self, EpochReport(epoch=0, gzsl_candidates=candidates))

    def scores(self, task: GZSLTask, inputs: torch.Tensor, candidate: str | None = None
               ) -> torch.Tensor:
        weights = self.weights[candidate or next(iter(self.weights))]
        class_semantics = torch.as_tensor(task.semantics[task.classes]).T  # [A, K]
        return inputs.float() @ weights @ class_semantics

    def state_dict(self) -> dict[str, Any]:
        return {"weights": self.weights, "start_epoch": self.start_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.weights = state["weights"]
        self.start_epoch = state["start_epoch"]
