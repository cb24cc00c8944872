"""The exact seen-unseen curve, AUSUC and best gamma, against naive per-gamma argmax sweeps."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from unseen.evaluation import (
    ausuc,
    best_gamma,
    evaluate,
    gzsl_accuracy,
    seen_unseen_curve,
)

# ---------------------------------------------------------------- naive reference


def naive_gzsl(scores: np.ndarray, labels: np.ndarray, seen: np.ndarray,
               gamma: float) -> tuple[float, float]:
    """(U, S) by one Python argmax per sample (first maximum wins) and per-class means."""
    predictions = []
    for row in scores.astype(np.float64).tolist():
        best_column, best_value = -1, -math.inf
        for k, value in enumerate(row):
            value = value - gamma if seen[k] else value
            if best_column < 0 or value > best_value:
                best_column, best_value = k, value
        predictions.append(best_column)

    def mean_over(targets: list[int]) -> float:
        accuracies = []
        for c in targets:
            rows = [i for i in range(len(labels)) if labels[i] == c]
            if rows:
                accuracies.append(sum(predictions[i] == c for i in rows) / len(rows))
        return sum(accuracies) / len(accuracies) if accuracies else math.nan

    classes = range(len(seen))
    unseen_classes = [k for k in classes if not seen[k]]
    return mean_over(unseen_classes), mean_over([k for k in classes if seen[k]])


def naive_gaps(scores: np.ndarray, seen: np.ndarray) -> list[float]:
    gaps = []
    for row in scores.astype(np.float64).tolist():
        best_seen = max(v for v, s in zip(row, seen, strict=True) if s)
        best_unseen = max(v for v, s in zip(row, seen, strict=True) if not s)
        gaps.append(best_seen - best_unseen)
    return gaps


def naive_sweep_gammas(scores: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """A gamma inside every interval between consecutive gaps, plus one beyond each end."""
    gaps = np.unique(naive_gaps(scores, seen))
    return np.concatenate([[gaps[0] - 1.0], (gaps[:-1] + gaps[1:]) / 2, [gaps[-1] + 1.0]])


def h_of(unseen: float, seen: float) -> float:
    return 0.0 if unseen + seen == 0 else 2 * unseen * seen / (unseen + seen)


@st.composite
def problems(draw: st.DrawFn, max_rows: int = 20, max_classes: int = 6):
    """Small random problems with both groups present; `ties` uses small integer scores."""
    num_classes = draw(st.integers(2, max_classes))
    num_rows = draw(st.integers(2, max_rows))
    num_seen = draw(st.integers(1, num_classes - 1))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    seen = np.zeros(num_classes, dtype=bool)
    seen[rng.choice(num_classes, num_seen, replace=False)] = True
    labels = rng.integers(0, num_classes, num_rows)
    labels[0] = rng.choice(np.flatnonzero(seen))
    labels[1] = rng.choice(np.flatnonzero(~seen))
    if draw(st.booleans()):
        scores = rng.integers(-2, 3, (num_rows, num_classes)).astype(np.float32)
    else:
        scores = rng.standard_normal((num_rows, num_classes)).astype(np.float32)
    return scores, labels, seen


def curve_of(scores: np.ndarray, labels: np.ndarray, seen: np.ndarray, chunk_size: int = 4096):
    return seen_unseen_curve(torch.from_numpy(scores), torch.from_numpy(labels).long(),
                             torch.from_numpy(seen), chunk_size=chunk_size)


# ---------------------------------------------------------------- exact curve


@settings(max_examples=60, deadline=None)
@given(problems())
def test_curve_equals_naive_between_at_and_beyond_every_breakpoint(problem):
    scores, labels, seen = problem
    curve = curve_of(scores, labels, seen)
    gaps = sorted(set(naive_gaps(scores, seen)))
    probes = list(naive_sweep_gammas(scores, seen)) + gaps  # open intervals, then breakpoints
    for gamma in probes:
        np.testing.assert_allclose(curve.at(float(gamma)), naive_gzsl(scores, labels, seen, gamma),
                                   rtol=0, atol=1e-12, err_msg=f"gamma={gamma}")
    # the ends: every row predicted seen, then every row predicted unseen
    np.testing.assert_allclose(curve.at(-math.inf), naive_gzsl(scores, labels, seen, gaps[0] - 5))
    np.testing.assert_allclose(curve.at(math.inf), naive_gzsl(scores, labels, seen, gaps[-1] + 5))
    assert curve.unseen_accuracy[0] == 0.0 and curve.seen_accuracy[-1] == 0.0


@settings(max_examples=60, deadline=None)
@given(problems())
def test_curve_is_monotone_and_breakpoint_values_lie_between_neighbours(problem):
    scores, labels, seen = problem
    curve = curve_of(scores, labels, seen)
    unseen, seen_acc = curve.unseen_accuracy, curve.seen_accuracy
    assert unseen.size == seen_acc.size == curve.gammas.size + 1
    assert np.all(np.diff(curve.gammas) > 0)
    assert np.all(np.diff(unseen) >= 0) and np.all(np.diff(seen_acc) <= 0)
    assert np.all((unseen[:-1] <= curve.unseen_at_gammas) & (curve.unseen_at_gammas <= unseen[1:]))
    assert np.all((seen_acc[1:] <= curve.seen_at_gammas) & (curve.seen_at_gammas <= seen_acc[:-1]))
    # every breakpoint changes something: no redundant points
    changed = (unseen[1:] != unseen[:-1]) | (seen_acc[1:] != seen_acc[:-1])
    changed |= (curve.unseen_at_gammas != unseen[:-1]) | (curve.seen_at_gammas != seen_acc[:-1])
    assert np.all(changed)


@settings(max_examples=40, deadline=None)
@given(problems(), st.sampled_from([1, 3]))
def test_chunked_curve_equals_unchunked(problem, chunk_size):
    scores, labels, seen = problem
    whole, chunked = curve_of(scores, labels, seen), curve_of(scores, labels, seen, chunk_size)
    for name in ("gammas", "unseen_accuracy", "seen_accuracy", "unseen_at_gammas",
                 "seen_at_gammas"):
        np.testing.assert_array_equal(getattr(whole, name), getattr(chunked, name))


def test_tied_gap_belongs_to_the_lower_column_at_the_breakpoint():
    # row 0: seen class 1 (column 1) is right, its gap is 1 - 0 = 1; at gamma == 1 the tie goes
    # to column 0 (unseen), so the row is already wrong at the breakpoint.
    # row 1: unseen class 2 is right with gap 1 as well; its tie goes to column 1 (seen): wrong.
    scores = np.array([[0.0, 1.0, -5.0], [-5.0, 1.0, 0.0]], dtype=np.float32)
    labels = np.array([1, 2])
    seen = np.array([False, True, False])
    curve = curve_of(scores, labels, seen)
    np.testing.assert_array_equal(curve.gammas, [1.0])
    assert curve.at(0.999) == (0.0, 1.0)
    assert curve.at(1.0) == (0.0, 0.0) == naive_gzsl(scores, labels, seen, 1.0)
    assert curve.at(1.001) == (1.0, 0.0)  # unseen class 0 has no sample: U is class 2 alone
    # swapping the column order flips both tie outcomes
    order = [1, 0, 2]
    swapped = curve_of(scores[:, order], np.array([0, 2]), seen[order])
    assert swapped.at(1.0) == (0.0, 1.0) == naive_gzsl(scores[:, order], np.array([0, 2]),
                                                       seen[order], 1.0)
    # gzsl_accuracy follows the same convention at the breakpoint
    got = gzsl_accuracy(torch.from_numpy(scores), torch.tensor([1, 2]), torch.from_numpy(seen), 1.0)
    assert got[:2] == curve.at(1.0)


def test_hand_computed_staircase():
    # seen sample right until gamma > 1; unseen sample right once gamma > 0.5
    scores = np.array([[1.0, 0.0], [0.5, 0.0]], dtype=np.float32)
    labels = np.array([0, 1])
    seen = np.array([True, False])
    curve = curve_of(scores, labels, seen)
    np.testing.assert_array_equal(curve.gammas, [0.5, 1.0])
    np.testing.assert_array_equal(curve.unseen_accuracy, [0.0, 1.0, 1.0])
    np.testing.assert_array_equal(curve.seen_accuracy, [1.0, 1.0, 0.0])
    assert ausuc(curve) == 1.0  # (0, 1) -> (1, 1) -> (1, 0): the unit square
    assert best_gamma(curve) == (0.75, 1.0, 1.0, 1.0)


def test_rows_with_infinite_scores_are_constant_not_breakpoints():
    inf = math.inf
    scores = np.array([[-inf, 2.0, 0.0], [-inf, -inf, -inf], [0.3, -inf, -inf], [1.0, 0.0, 0.5]],
                      dtype=np.float32)
    labels = np.array([1, 0, 0, 2])
    seen = np.array([True, False, False])
    curve = curve_of(scores, labels, seen)
    np.testing.assert_array_equal(curve.gammas, [0.5])  # only row 3 has a finite relevant gap
    for gamma in (-100.0, 0.0, 0.5, 0.7, 100.0):
        np.testing.assert_allclose(curve.at(gamma), naive_gzsl(scores, labels, seen, gamma))
    assert curve.unseen_accuracy[0] == pytest.approx(0.5)  # row 0 is unseen-right for any gamma


def test_only_seen_samples_give_nan_unseen_curve():
    scores = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    curve = curve_of(scores, np.array([0, 0]), np.array([True, False]))
    assert np.isnan(curve.unseen_accuracy).all() and not np.isnan(curve.seen_accuracy).any()
    assert math.isnan(ausuc(curve))
    with pytest.raises(ValueError, match="both seen and unseen"):
        best_gamma(curve)


# ---------------------------------------------------------------- AUSUC and best gamma


@settings(max_examples=50, deadline=None)
@given(problems())
def test_ausuc_equals_trapezoid_of_naive_sweep(problem):
    scores, labels, seen = problem
    points = np.array([naive_gzsl(scores, labels, seen, g)
                       for g in naive_sweep_gammas(scores, seen)])
    expected = float(np.sum(np.diff(points[:, 0]) * (points[:-1, 1] + points[1:, 1]) / 2))
    assert ausuc(curve_of(scores, labels, seen)) == pytest.approx(expected, abs=1e-12)


def test_ausuc_matches_a_dense_gamma_grid():
    generator = torch.Generator().manual_seed(5)
    num_rows, num_classes = 150, 8
    scores = torch.randn(num_rows, num_classes, generator=generator)
    labels = torch.randint(0, num_classes, (num_rows,), generator=generator)
    scores[torch.arange(num_rows), labels] += 1.0
    seen = torch.arange(num_classes) < 5
    gammas = torch.linspace(-6, 6, 20001, dtype=torch.float64)
    adjusted = scores.double()[None] - gammas[:, None, None] * seen.double()
    correct = (adjusted.argmax(dim=2) == labels).double()  # [gammas, rows]
    one_hot = torch.nn.functional.one_hot(labels, num_classes).double()
    per_class = correct @ one_hot / one_hot.sum(0)  # every class has samples here
    unseen, seen_acc = per_class[:, ~seen].mean(1).numpy(), per_class[:, seen].mean(1).numpy()
    dense = float(np.sum(np.diff(unseen) * (seen_acc[:-1] + seen_acc[1:]) / 2))
    assert unseen[0] == 0.0 and seen_acc[-1] == 0.0  # the grid covers both ends
    exact = ausuc(seen_unseen_curve(scores, labels, seen))
    assert 0.1 < exact < 1.0
    assert exact == pytest.approx(dense, abs=2e-3)


@settings(max_examples=50, deadline=None)
@given(problems())
def test_best_gamma_attains_the_naive_maximum_and_is_reproducible(problem):
    scores, labels, seen = problem
    curve = curve_of(scores, labels, seen)
    gamma, unseen, seen_acc, h = best_gamma(curve)
    # a dense grid off the integers: a tied breakpoint may beat every interval, but a single
    # gamma of measure zero is not a choice best_gamma offers
    probes = np.concatenate([naive_sweep_gammas(scores, seen), np.linspace(-5, 5, 21) + 0.0123])
    naive_h = [h_of(*naive_gzsl(scores, labels, seen, g)) for g in probes]
    assert h == pytest.approx(max(naive_h), abs=1e-12)
    assert not np.isin(gamma, curve.gammas)  # strictly inside an interval
    np.testing.assert_allclose(naive_gzsl(scores, labels, seen, gamma), (unseen, seen_acc),
                               atol=1e-12)
    got = gzsl_accuracy(torch.from_numpy(scores), torch.from_numpy(labels).long(),
                        torch.from_numpy(seen), gamma)
    np.testing.assert_allclose(got, (unseen, seen_acc, h), rtol=0, atol=1e-12)


def test_evaluate_reports_the_curve_it_selected_from():
    generator = torch.Generator().manual_seed(2)
    scores = torch.randn(60, 7, generator=generator)
    labels = torch.randint(0, 7, (60,), generator=generator)
    seen = torch.tensor([True, True, False, True, False, True, False])
    result = evaluate(scores, labels, seen, gamma=None)
    assert result.curve.at(result.gamma) == pytest.approx((result.U, result.S), abs=1e-12)
    assert result.AUSUC == ausuc(result.curve)
    payload = result.to_dict(include_curve=True)["curve"]
    assert len(payload["unseen_accuracy"]) == len(payload["gammas"]) + 1
