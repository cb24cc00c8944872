"""ESZSL: An Embarrassingly Simple approach to Zero-Shot Learning (Romera-Paredes & Torr 2015).

Closed form: with X [D, n] training features, Y [n, z] in {-1, 1} (1 for the true class) and
S [A, z] the seen-class semantics,

    V = (X Xᵀ + γ I)⁻¹ X Y Sᵀ (S Sᵀ + λ I)⁻¹,      score(x, c) = xᵀ V s_c,

with γ the feature regularisation and λ the semantic regularisation (the paper's names; not
the calibrated-stacking gamma). There is no training loop: one "epoch" evaluates every (γ, λ)
pair of the grid as a candidate named "feature_regularisation=γ,semantic_regularisation=λ",
and the runner selects the pair like any other candidate (on validation under the clean
protocol) and records it with `select`, so that `scores` uses it by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from unseen.data.tasks import GZSLTask
from unseen.errors import UnseenInputError
from unseen.methods.base import (
    EpochReport,
    GZSLMethod,
    MethodConfig,
    TrainingMonitor,
    option,
)


@dataclass
class ESZSLConfig(MethodConfig):
    epochs: int = option(1, "always 1: the closed form has no training loop")
    feature_regularisation: tuple[float, ...] = option(
        (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0),
        "grid of gamma, the ridge on the feature Gram matrix (comma-separated)")
    semantic_regularisation: tuple[float, ...] = option(
        (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0),
        "grid of lambda, the ridge on the semantic Gram matrix (comma-separated)")


class ESZSL(GZSLMethod):
    """Closed-form bilinear compatibility; candidates are the regularisation pairs."""

    name = "eszsl"
    config_class = ESZSLConfig
    presets = {"demo": {}}
    description = "ESZSL (Romera-Paredes & Torr, ICML 2015): closed-form baseline"

    def __init__(self, config: ESZSLConfig, seed: int) -> None:
        super().__init__(config, seed)
        # Eigen-factors of the two Gram matrices: every (γ, λ) candidate is then a
        # diagonal rescaling, so the whole grid costs two eigendecompositions.
        self.factors: dict[str, torch.Tensor] = {}

    def fit(self, task: GZSLTask, monitor: TrainingMonitor) -> None:
        device = self.device
        dtype = torch.float64  # the normal equations are ill-conditioned in float32
        features = torch.as_tensor(task.features[task.train_idx], device=device, dtype=dtype)
        semantics = torch.as_tensor(task.semantics, device=device, dtype=dtype)
        seen = torch.as_tensor(task.seen_classes, device=device)
        local = torch.searchsorted(seen, torch.as_tensor(task.benchmark.labels[task.train_idx],
                                                         device=device))
        targets = -torch.ones(features.shape[0], seen.numel(), device=device, dtype=dtype)
        targets[torch.arange(features.shape[0], device=device), local] = 1.0
        seen_semantics = semantics[seen].T  # [A, z]
        x = features.T  # [D, n]
        eig_x, basis_x = torch.linalg.eigh(x @ x.T)
        eig_s, basis_s = torch.linalg.eigh(seen_semantics @ seen_semantics.T)
        middle = basis_x.T @ (x @ targets @ seen_semantics.T) @ basis_s  # [D, A] in eigenbases
        self.factors = {"basis_x": basis_x, "eig_x": eig_x, "middle": middle,
                        "eig_s": eig_s, "basis_s": basis_s}
        # Scores of every candidate in the eigenbases: (X Qx) W (Qs^T S), W diagonal-scaled.
        eval_x = torch.as_tensor(task.features[task.eval_idx], device=device, dtype=dtype)
        projected_x = eval_x @ basis_x
        projected_s = basis_s.T @ semantics[torch.as_tensor(task.classes, device=device)].T
        candidates = {name: (projected_x @ (self._scaled_middle(feature, semantic) @ projected_s))
                      .float().cpu() for name, feature, semantic in self._grid()}
        self.start_epoch = 1
        monitor.epoch_end(self, EpochReport(epoch=0, gzsl_candidates=candidates))

    def _grid(self) -> list[tuple[str, float, float]]:
        """(candidate name, feature regularisation, semantic regularisation) of every pair."""
        return [(f"feature_regularisation={feature:g},semantic_regularisation={semantic:g}",
                 feature, semantic)
                for feature in self.config.feature_regularisation
                for semantic in self.config.semantic_regularisation]

    def _scaled_middle(self, feature_reg: float, semantic_reg: float) -> torch.Tensor:
        f = self.factors
        return (f["middle"] / (f["eig_x"] + feature_reg)[:, None]
                / (f["eig_s"] + semantic_reg)[None, :])

    def weights(self, candidate: str | None = None) -> torch.Tensor:
        """V [D, A] of one candidate: the named pair, else the selected one (`select`), else the
        only pair of a one-pair grid."""
        if not self.factors:
            raise UnseenInputError("ESZSL: expected a fitted model (fit or load_state_dict), "
                                   "found none")
        grid = {name: (feature, semantic) for name, feature, semantic in self._grid()}
        name = candidate or self.selected_candidate
        if name is None and len(grid) == 1:
            name = next(iter(grid))
        if name not in grid:
            raise UnseenInputError(
                f"ESZSL candidate: expected one of {', '.join(grid)}, found "
                f"{name if name is not None else 'none (no regularisation pair selected)'}")
        f = self.factors
        return f["basis_x"] @ self._scaled_middle(*grid[name]) @ f["basis_s"].T

    def scores(self, task: GZSLTask, inputs: torch.Tensor, candidate: str | None = None
               ) -> torch.Tensor:
        weights = self.weights(candidate).float().cpu()
        class_semantics = torch.as_tensor(task.semantics[task.classes]).T  # [A, K]
        return torch.as_tensor(inputs).float().cpu() @ weights @ class_semantics

    def state_dict(self) -> dict[str, Any]:
        return {"factors": {k: v.cpu() for k, v in self.factors.items()},
                "start_epoch": self.start_epoch, "selected_candidate": self.selected_candidate}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.factors = state["factors"]
        self.start_epoch = state["start_epoch"]
        self.selected_candidate = state["selected_candidate"]
