"""ESZSL: the closed form is the minimiser of its objective, and it transfers to unseen classes."""

from __future__ import annotations

import pytest
import torch

from unseen.data.synthetic import synthetic_benchmark
from unseen.data.tasks import make_test_task
from unseen.errors import UnseenInputError
from unseen.evaluation import evaluate
from unseen.methods.eszsl import ESZSL, ESZSLConfig


class Collect:
    def __init__(self):
        self.reports = []

    def epoch_end(self, method, report):
        self.reports.append(report)

    def progress(self, iterable, description, total=None):
        return iterable


def fitted(gammas=(1.0,), lambdas=(1.0,)):
    task = make_test_task(synthetic_benchmark(images_per_class=30, seed=1))
    method = ESZSL(ESZSLConfig(feature_regularisation=gammas, semantic_regularisation=lambdas), 0)
    monitor = Collect()
    method.fit(task, monitor)
    return task, method, monitor


def test_closed_form_is_a_stationary_point_of_the_objective():
    task, method, _ = fitted(gammas=(0.5,), lambdas=(2.0,))
    x = torch.as_tensor(task.features[task.train_idx], dtype=torch.float64).T
    seen = torch.as_tensor(task.seen_classes)
    local = torch.searchsorted(seen, torch.as_tensor(task.benchmark.labels[task.train_idx]))
    y = -torch.ones(x.shape[1], seen.numel(), dtype=torch.float64)
    y[torch.arange(x.shape[1]), local] = 1
    s = torch.as_tensor(task.semantics, dtype=torch.float64)[seen].T
    v = method.weights("feature_regularisation=0.5,semantic_regularisation=2").double() \
        .requires_grad_(True)
    gamma, lam = 0.5, 2.0
    objective = ((x.T @ v @ s - y) ** 2).sum() + gamma * ((v @ s) ** 2).sum() \
        + lam * ((x.T @ v) ** 2).sum() + gamma * lam * (v ** 2).sum()
    (grad,) = torch.autograd.grad(objective, v)
    assert grad.abs().max() < 1e-3 * objective.item()


def test_every_grid_pair_is_a_candidate_and_unseen_accuracy_beats_chance():
    task, _, monitor = fitted(gammas=(0.01, 10.0), lambdas=(0.001, 0.1))
    (report,) = monitor.reports
    assert len(report.gzsl_candidates) == 4
    labels = torch.as_tensor(task.labels_of(task.eval_idx))
    best = max(evaluate(s, labels, torch.as_tensor(task.is_seen_class), gamma=None).T1
               for s in report.gzsl_candidates.values())
    assert best > 2.4 / task.unseen_classes.size  # chance is 1 / 4 on this benchmark


def test_fast_candidate_scores_equal_scores_from_the_weights():
    task, method, monitor = fitted(gammas=(0.1, 10.0), lambdas=(0.01, 1.0))
    inputs = torch.as_tensor(task.features[task.eval_idx])
    for name, scores in monitor.reports[0].gzsl_candidates.items():
        torch.testing.assert_close(scores, method.scores(task, inputs, name), rtol=1e-4, atol=1e-4)


def test_state_round_trip_gives_identical_scores_and_keeps_the_selected_pair():
    task, method, monitor = fitted(gammas=(0.1, 10.0), lambdas=(0.01, 1.0))
    chosen = "feature_regularisation=10,semantic_regularisation=0.01"
    method.select(chosen)
    clone = ESZSL(method.config, 0)
    clone.load_state_dict(method.state_dict())
    inputs = torch.as_tensor(task.features[task.eval_idx])
    assert clone.selected_candidate == chosen
    assert torch.equal(clone.scores(task, inputs), method.scores(task, inputs))
    torch.testing.assert_close(clone.scores(task, inputs),
                               monitor.reports[0].gzsl_candidates[chosen], rtol=1e-4, atol=1e-4)


def test_default_scores_use_the_selected_pair_not_the_first_of_the_grid():
    task, method, monitor = fitted(gammas=(0.001, 100.0), lambdas=(0.001, 100.0))
    inputs = torch.as_tensor(task.features[task.eval_idx])
    candidates = monitor.reports[0].gzsl_candidates
    first, last = list(candidates)[0], list(candidates)[-1]
    assert not torch.allclose(candidates[first], candidates[last], rtol=1e-3)
    with pytest.raises(UnseenInputError, match="no regularisation pair selected"):
        method.scores(task, inputs)
    method.select(last)
    torch.testing.assert_close(method.scores(task, inputs), candidates[last], rtol=1e-4,
                               atol=1e-4)


def test_candidate_names_say_which_regularisation_they_are():
    _, _, monitor = fitted(gammas=(0.5,), lambdas=(2.0,))
    assert list(monitor.reports[0].gzsl_candidates) == [
        "feature_regularisation=0.5,semantic_regularisation=2"]
