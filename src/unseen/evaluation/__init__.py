"""Honest GZSL evaluation: per-class accuracies, calibrated stacking, the exact seen-unseen
curve with AUSUC, gamma selection, and plots (`unseen.evaluation.plots`, imported on demand so
that matplotlib loads only when a plot is drawn)."""

from unseen.evaluation.curve import (
    SeenUnseenCurve,
    ausuc,
    best_gamma,
    curve_from_summary,
    seen_unseen_curve,
)
from unseen.evaluation.metrics import (
    DEFAULT_CHUNK_SIZE,
    ScoreSummary,
    gzsl_accuracy,
    harmonic_mean,
    mean_class_accuracy,
    per_class_accuracy,
    summarise_scores,
    zsl_accuracy,
    zsl_accuracy_restricted,
)
from unseen.evaluation.result import EvaluationResult, evaluate

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "EvaluationResult",
    "ScoreSummary",
    "SeenUnseenCurve",
    "ausuc",
    "best_gamma",
    "curve_from_summary",
    "evaluate",
    "gzsl_accuracy",
    "harmonic_mean",
    "mean_class_accuracy",
    "per_class_accuracy",
    "seen_unseen_curve",
    "summarise_scores",
    "zsl_accuracy",
    "zsl_accuracy_restricted",
]
