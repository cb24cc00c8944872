"""Per-class accuracies, GZSL U/S/H with calibrated stacking, T1 and `evaluate`, checked against a
deliberately naive reference (Python loops, one argmax per sample per gamma)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from unseen.data.synthetic import synthetic_benchmark
from unseen.data.tasks import make_test_task
from unseen.evaluation import (
    best_gamma,
    evaluate,
    gzsl_accuracy,
    harmonic_mean,
    mean_class_accuracy,
    per_class_accuracy,
    seen_unseen_curve,
    summarise_scores,
    zsl_accuracy,
    zsl_accuracy_restricted,
)

# ---------------------------------------------------------------- naive reference


def naive_argmax(row: list[float], columns: list[int], offsets: list[float]) -> int:
    best_column, best_value = -1, -math.inf
    for k in columns:
        value = row[k] - offsets[k]
        if best_column < 0 or value > best_value:  # strict: the first maximum wins
            best_column, best_value = k, value
    return best_column


def naive_mean_class(predictions: list[int], labels: list[int], targets: list[int]) -> float:
    accuracies = []
    for c in targets:
        rows = [i for i, label in enumerate(labels) if label == c]
        if rows:
            accuracies.append(sum(predictions[i] == c for i in rows) / len(rows))
    return sum(accuracies) / len(accuracies) if accuracies else math.nan


def naive_gzsl(scores: np.ndarray, labels: np.ndarray, seen: np.ndarray,
               gamma: float) -> tuple[float, float, float]:
    rows, labels_list = scores.astype(np.float64).tolist(), labels.tolist()
    offsets = [gamma if s else 0.0 for s in seen.tolist()]
    everything = list(range(len(seen)))
    predictions = [naive_argmax(row, everything, offsets) for row in rows]
    unseen_acc = naive_mean_class(predictions, labels_list, [k for k in everything if not seen[k]])
    seen_acc = naive_mean_class(predictions, labels_list, [k for k in everything if seen[k]])
    if math.isnan(unseen_acc) or math.isnan(seen_acc):
        return unseen_acc, seen_acc, math.nan
    total = unseen_acc + seen_acc
    return unseen_acc, seen_acc, (0.0 if total == 0 else 2 * unseen_acc * seen_acc / total)


def naive_zsl(scores: np.ndarray, labels: np.ndarray, seen: np.ndarray) -> float:
    unseen_columns = [k for k in range(len(seen)) if not seen[k]]
    zeros = [0.0] * len(seen)
    rows = [i for i, label in enumerate(labels.tolist()) if not seen[label]]
    predictions = [naive_argmax(scores[i].astype(np.float64).tolist(), unseen_columns, zeros)
                   for i in rows]
    return naive_mean_class(predictions, [int(labels[i]) for i in rows], unseen_columns)


@st.composite
def problems(draw: st.DrawFn, max_rows: int = 24, max_classes: int = 7):
    """Small random GZSL problems; `ties` draws small integers so equal scores are frequent."""
    num_classes = draw(st.integers(2, max_classes))
    num_rows = draw(st.integers(1, max_rows))
    num_seen = draw(st.integers(1, num_classes - 1))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    seen = np.zeros(num_classes, dtype=bool)
    seen[rng.choice(num_classes, num_seen, replace=False)] = True
    labels = rng.integers(0, num_classes, num_rows)
    if draw(st.booleans()):
        scores = rng.integers(-2, 3, (num_rows, num_classes)).astype(np.float32)
    else:
        scores = rng.standard_normal((num_rows, num_classes)).astype(np.float32)
    return scores, labels, seen


def as_torch(scores: np.ndarray, labels: np.ndarray, seen: np.ndarray):
    return torch.from_numpy(scores), torch.from_numpy(labels).long(), torch.from_numpy(seen)


# ---------------------------------------------------------------- per-class accuracy


def test_per_class_accuracy_is_nan_for_a_class_without_samples_and_excluded_from_the_mean():
    labels = torch.tensor([0, 0, 0, 2, 2])
    predictions = torch.tensor([0, 1, 0, 2, 0])
    accuracy = per_class_accuracy(predictions, labels, 4)
    assert accuracy[0].item() == pytest.approx(2 / 3)
    assert math.isnan(accuracy[1].item()) and math.isnan(accuracy[3].item())
    assert accuracy[2].item() == pytest.approx(0.5)
    # class 1 and 3 have no sample: the mean is over classes 0 and 2 only
    mask = torch.tensor([True, True, True, True])
    assert mean_class_accuracy(predictions, labels, mask) == pytest.approx((2 / 3 + 0.5) / 2)
    assert math.isnan(mean_class_accuracy(predictions, labels, torch.tensor([1, 3])))
    assert mean_class_accuracy(predictions, labels, torch.tensor([2, 3])) == pytest.approx(0.5)


@settings(max_examples=60, deadline=None)
@given(problems())
def test_mean_class_accuracy_mask_and_ids_agree_with_naive(problem):
    scores, labels, seen = problem
    predictions = scores.argmax(axis=1)
    targets = [k for k in range(seen.size) if seen[k]]
    expected = naive_mean_class(predictions.tolist(), labels.tolist(), targets)
    by_mask = mean_class_accuracy(torch.from_numpy(predictions), torch.from_numpy(labels),
                                  torch.from_numpy(seen))
    by_ids = mean_class_accuracy(torch.from_numpy(predictions), torch.from_numpy(labels),
                                 torch.tensor(targets))
    if math.isnan(expected):
        assert math.isnan(by_mask) and math.isnan(by_ids)
    else:
        assert by_mask == pytest.approx(expected, abs=1e-12)
        assert by_ids == pytest.approx(expected, abs=1e-12)


# ---------------------------------------------------------------- GZSL and ZSL


@settings(max_examples=60, deadline=None)
@given(problems(), st.sampled_from([-1.5, -0.3, 0.0, 0.25, 1.0, 2.5]))
def test_gzsl_accuracy_equals_naive_calibrated_stacking(problem, gamma):
    scores, labels, seen = problem
    got = gzsl_accuracy(*as_torch(scores, labels, seen), gamma=gamma)
    expected = naive_gzsl(scores, labels, seen, gamma)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(problems())
def test_zsl_accuracy_equals_naive_restricted_argmax(problem):
    scores, labels, seen = problem
    got = zsl_accuracy(*as_torch(scores, labels, seen))
    expected = naive_zsl(scores, labels, seen)
    assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected, abs=1e-12)


def test_gzsl_accuracy_matches_vectorised_argmax_on_a_larger_matrix():
    generator = torch.Generator().manual_seed(3)
    scores = torch.randn(3000, 40, generator=generator)
    labels = torch.randint(0, 40, (3000,), generator=generator)
    seen = torch.arange(40) % 3 != 0
    for gamma in (-0.7, 0.0, 0.4, 1.3):
        predictions = (scores.double() - gamma * seen.double()).argmax(dim=1)
        accuracy = per_class_accuracy(predictions, labels, 40)
        unseen, seen_acc = accuracy[~seen].nanmean().item(), accuracy[seen].nanmean().item()
        got = gzsl_accuracy(scores, labels, seen, gamma=gamma, chunk_size=257)
        np.testing.assert_allclose(got, (unseen, seen_acc, harmonic_mean(unseen, seen_acc)),
                                   rtol=0, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(problems(), st.sampled_from([1, 2, 5]))
def test_chunked_summary_equals_unchunked(problem, chunk_size):
    scores, labels, seen = problem
    scores_t, _, seen_t = as_torch(scores, labels, seen)
    whole = summarise_scores(scores_t, seen_t, chunk_size=10_000)
    chunked = summarise_scores(scores_t, seen_t, chunk_size=chunk_size)
    for name in ("best_seen", "seen_index", "best_unseen", "unseen_index"):
        assert torch.equal(getattr(whole, name), getattr(chunked, name))


def test_ties_go_to_the_first_maximal_column_like_torch_argmax():
    # one unseen sample whose seen and unseen scores tie exactly at gamma = 0
    scores = torch.tensor([[1.0, 1.0]])
    unseen_first = torch.tensor([False, True])  # column 0 unseen: the tie goes to it
    assert torch.argmax(scores - 0.0 * unseen_first.float(), dim=1).item() == 0
    summary = summarise_scores(scores, unseen_first)
    assert summary.predictions(0.0).item() == 0
    assert summary.predictions(-1e-6).item() == 1 and summary.predictions(1e-6).item() == 0
    seen_first = torch.tensor([True, False])  # column 0 seen: the same tie goes to the seen class
    summary = summarise_scores(scores, seen_first)
    assert summary.predictions(0.0).item() == 0
    assert summary.predictions(1e-6).item() == 1
    # within a group the first of equal columns wins as well
    summary = summarise_scores(torch.tensor([[0.0, 2.0, 2.0, 2.0]]),
                               torch.tensor([False, True, False, True]))
    assert summary.seen_index.item() == 1 and summary.unseen_index.item() == 2
    assert summary.predictions(0.0).item() == 1


def test_minus_infinity_scores_follow_argmax():
    inf = math.inf
    scores = np.array([[-inf, 0.5, -inf], [-inf, -inf, -inf], [1.0, -inf, 0.2]], dtype=np.float32)
    labels = np.array([1, 0, 2])
    seen = np.array([True, False, False])
    for gamma in (-2.0, 0.0, 0.5, 0.8, 3.0):
        np.testing.assert_allclose(gzsl_accuracy(*as_torch(scores, labels, seen), gamma=gamma),
                                   naive_gzsl(scores, labels, seen, gamma), atol=1e-12)


def test_nan_scores_and_bad_labels_are_rejected():
    seen = torch.tensor([True, False])
    with pytest.raises(ValueError, match="row 1"):
        gzsl_accuracy(torch.tensor([[0.0, 1.0], [math.nan, 0.0]]), torch.tensor([0, 1]), seen)
    with pytest.raises(ValueError, match="0..1"):
        gzsl_accuracy(torch.zeros(2, 2), torch.tensor([0, 2]), seen)
    with pytest.raises(ValueError, match="bool"):
        gzsl_accuracy(torch.zeros(2, 2), torch.tensor([0, 1]), torch.tensor([1, 0]))
    with pytest.raises(ValueError, match="gamma"):
        gzsl_accuracy(torch.zeros(2, 2), torch.tensor([0, 1]), seen, gamma=math.nan)
    with pytest.raises(ValueError, match="integer"):
        gzsl_accuracy(torch.zeros(2, 2), torch.tensor([0.0, 1.0]), seen)
    with pytest.raises(ValueError, match="one per score row"):
        gzsl_accuracy(torch.zeros(2, 2), torch.tensor([0, 1, 1]), seen)


def test_harmonic_mean_edge_cases():
    assert harmonic_mean(0.0, 0.0) == 0.0
    assert harmonic_mean(0.5, 1.0) == pytest.approx(2 / 3)
    assert math.isnan(harmonic_mean(math.nan, 0.5))


# ---------------------------------------------------------------- degenerate problems


def test_only_seen_samples_leave_u_and_h_undefined():
    scores = torch.tensor([[2.0, 0.0, 1.0], [0.0, 1.0, 3.0], [0.5, 0.4, 0.0]])
    labels = torch.tensor([0, 1, 0])
    seen = torch.tensor([True, True, False])
    unseen_acc, seen_acc, h = gzsl_accuracy(scores, labels, seen, gamma=0.0)
    assert math.isnan(unseen_acc) and math.isnan(h)
    assert seen_acc == pytest.approx((1.0 + 0.0) / 2)  # class 0: 2/2, class 1: 0/1
    assert math.isnan(zsl_accuracy(scores, labels, seen))
    with pytest.raises(ValueError, match="both seen and unseen"):
        evaluate(scores, labels, seen, gamma=None)
    result = evaluate(scores, labels, seen, gamma=0.0)
    as_json = json.loads(json.dumps(result.to_dict(include_curve=True), allow_nan=False))
    assert as_json["U"] is None and as_json["H"] is None and as_json["AUSUC"] is None
    assert as_json["S"] == pytest.approx(0.5)
    assert as_json["per_class_accuracy"] == [1.0, 0.0, None]


def test_a_single_unseen_class_has_perfect_t1():
    generator = torch.Generator().manual_seed(1)
    scores = torch.randn(30, 5, generator=generator)
    labels = torch.randint(0, 5, (30,), generator=generator)
    labels[:3] = 4
    seen = torch.tensor([True, True, True, True, False])
    assert zsl_accuracy(scores, labels, seen) == 1.0
    expected = naive_gzsl(scores.numpy(), labels.numpy(), seen.numpy(), 0.3)
    np.testing.assert_allclose(gzsl_accuracy(scores, labels, seen, gamma=0.3), expected, atol=1e-12)


# ---------------------------------------------------------------- evaluate


def test_evaluate_selects_gamma_by_h_and_reports_everything():
    generator = torch.Generator().manual_seed(7)
    scores = torch.randn(400, 12, generator=generator)
    labels = torch.randint(0, 12, (400,), generator=generator)
    seen = torch.arange(12) < 8
    scores[torch.arange(400), labels] += 1.0
    scores[:, seen] += 0.8  # seen bias: calibrated stacking has something to correct
    result = evaluate(scores, labels, seen, gamma=None, chunk_size=64)
    curve = seen_unseen_curve(scores, labels, seen)
    gamma, unseen_acc, seen_acc, h = best_gamma(curve)
    assert result.gamma_selected and result.gamma == gamma
    assert (result.U, result.S, result.H) == pytest.approx((unseen_acc, seen_acc, h), abs=1e-12)
    assert result.H >= gzsl_accuracy(scores, labels, seen, gamma=0.0)[2]
    assert result.T1 == pytest.approx(naive_zsl(scores.numpy(), labels.numpy(), seen.numpy()))
    per_class = per_class_accuracy(summarise_scores(scores, seen).predictions(gamma), labels, 12)
    assert result.per_class_accuracy == pytest.approx(per_class.tolist())
    fixed = evaluate(scores, labels, seen, gamma=0.0)
    assert not fixed.gamma_selected and fixed.gamma == 0.0
    assert (fixed.U, fixed.S, fixed.H) == pytest.approx(gzsl_accuracy(scores, labels, seen, 0.0))
    assert fixed.AUSUC == pytest.approx(result.AUSUC)
    payload = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert set(payload) >= {"U", "S", "H", "T1", "AUSUC", "gamma", "per_class_accuracy"}
    assert "curve" not in payload and all(0.0 <= payload[k] <= 1.0 for k in ("U", "S", "H", "T1"))


def test_evaluate_takes_t1_from_separate_zsl_scores():
    generator = torch.Generator().manual_seed(11)
    scores = torch.randn(50, 6, generator=generator)
    labels = torch.randint(0, 6, (50,), generator=generator)
    seen = torch.tensor([True, False, True, False, True, False])
    unseen_rows = ~seen[labels]
    restricted = scores[unseen_rows][:, ~seen]
    position = torch.cumsum((~seen).long(), 0) - 1  # global column -> position among unseen
    zsl_labels = position[labels[unseen_rows]]
    assert zsl_accuracy_restricted(restricted, zsl_labels, chunk_size=4) == pytest.approx(
        zsl_accuracy(scores, labels, seen), abs=1e-12)
    flipped = -restricted  # a different ZSL classifier must give its own T1
    result = evaluate(scores, labels, seen, gamma=0.0, zsl_scores=flipped, zsl_labels=zsl_labels)
    assert result.T1 == pytest.approx(zsl_accuracy_restricted(flipped, zsl_labels), abs=1e-12)
    assert result.T1 != pytest.approx(zsl_accuracy(scores, labels, seen))
    with pytest.raises(ValueError, match="both or neither"):
        evaluate(scores, labels, seen, gamma=0.0, zsl_scores=flipped)


def test_evaluate_uses_task_conventions():
    task = make_test_task(synthetic_benchmark(num_classes=10, num_unseen=3, images_per_class=12))
    labels, is_seen = task.labels_of(task.eval_idx), task.is_seen_class  # numpy arrays
    oracle = torch.nn.functional.one_hot(torch.as_tensor(labels), len(task.classes)).float()
    result = evaluate(oracle, labels, is_seen, gamma=0.0)  # numpy labels and mask are accepted
    assert (result.U, result.S, result.H, result.T1) == (1.0, 1.0, 1.0, 1.0)
    assert result.AUSUC == 1.0  # the oracle is right on both sides for every gamma in (-1, 1)
    labels, is_seen = torch.as_tensor(labels), torch.as_tensor(is_seen)
    n_seen = len(task.eval_seen_idx)
    assert bool(is_seen[labels[:n_seen]].all()) and not bool(is_seen[labels[n_seen:]].any())


def test_evaluate_takes_numpy_arrays_as_the_docs_show():
    """`unseen.evaluation.evaluate(scores, labels, is_seen_class, gamma=None)` with NumPy input
    (a reversed view included, which torch cannot wrap) equals the tensor evaluation."""
    import inspect

    parameters = list(inspect.signature(evaluate).parameters.values())
    assert [p.name for p in parameters[:4]] == ["scores", "labels", "is_seen_class", "gamma"]
    assert parameters[3].default is None
    rng = np.random.default_rng(4)
    scores = rng.normal(size=(60, 7)).astype(np.float32)[:, ::-1]  # negative column stride
    labels = rng.integers(0, 7, 60)
    seen = np.array([True, False, True, True, False, True, False])
    from_numpy = evaluate(scores, labels, seen)
    from_torch = evaluate(torch.as_tensor(scores.copy()), torch.as_tensor(labels),
                          torch.as_tensor(seen), gamma=None)
    assert from_numpy.gamma_selected and from_numpy.to_dict() == from_torch.to_dict()
    unseen_rows = ~seen[labels]
    zsl_scores = scores[unseen_rows][:, ~seen]
    zsl_labels = np.searchsorted(np.flatnonzero(~seen), labels[unseen_rows])
    with_zsl = evaluate(scores, labels, seen, 0.5, zsl_scores=zsl_scores, zsl_labels=zsl_labels)
    assert with_zsl.T1 == pytest.approx(zsl_accuracy(scores, labels, seen), abs=1e-12)
    assert gzsl_accuracy(scores, labels, seen, 0.5) == pytest.approx(
        (with_zsl.U, with_zsl.S, with_zsl.H))
    with pytest.raises(ValueError, match="scores: expected a tensor or a numeric array"):
        evaluate(np.array([["a", "b"]]), labels[:1], seen[:2])
