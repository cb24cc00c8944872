"""GZSLClassifier: scikit-learn conventions, the clean protocol's choice, raw-feature prediction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import unseen
from unseen.data.synthetic import synthetic_benchmark
from unseen.errors import UnseenInputError
from unseen.estimator import GZSLClassifier
from unseen.evaluation import evaluate

GRID = {"feature_regularisation": [0.01, 1.0, 100.0], "semantic_regularisation": (0.001, 10.0)}
TINY_CEGZSL = {"epochs": 3, "batch_size": 64, "generator_hidden": 64, "critic_hidden": 64,
               "embed_dim": 32, "projection_dim": 16, "comparator_hidden": 32, "syn_num": 40,
               "lr": 1e-3, "classifier_epochs": 4, "zsl_classifier_epochs": 2, "device": "cpu"}


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def benchmark():
    return synthetic_benchmark(seed=3)


@pytest.fixture(scope="module")
def eszsl(benchmark):
    return GZSLClassifier("eszsl", **GRID).fit(benchmark)


def _test_rows(benchmark):
    rows = np.concatenate([benchmark.test_seen_idx, benchmark.test_unseen_idx])
    return benchmark.features[rows], benchmark.labels[rows]


def test_params_round_trip_like_scikit_learn():
    classifier = GZSLClassifier("cegzsl", preset="demo", gamma=0.5, seed=3, epochs=7)
    params = classifier.get_params(deep=True)
    assert params == {"method": "cegzsl", "preset": "demo", "gamma": 0.5, "seed": 3, "epochs": 7}
    assert classifier.set_params(epochs=9, seed=4) is classifier
    assert classifier.seed == 4 and classifier.get_params()["epochs"] == 9
    clone = GZSLClassifier(**classifier.get_params())
    assert clone.get_params() == classifier.get_params() and clone is not classifier
    assert "epochs=9" in repr(clone)
    assert unseen.GZSLClassifier is GZSLClassifier


def test_fit_returns_self_and_reproduces_the_clean_protocol_of_unseen_train(benchmark, tmp_path):
    classifier = GZSLClassifier("eszsl", **GRID)
    assert classifier.fit(benchmark) is classifier
    results = unseen.train("eszsl", benchmark, overrides=GRID, out=str(tmp_path / "run"))
    (run,) = results["per_seed"]
    assert classifier.candidate_ == run["selected"]["candidate"]
    assert classifier.gamma_ == pytest.approx(run["gamma"])
    features, labels = _test_rows(benchmark)
    assert classifier.score(features, labels) == pytest.approx(run["H"], abs=1e-6)
    assert list(classifier.classes_) == [benchmark.class_names[c]
                                         for c in np.union1d(benchmark.seen_classes,
                                                             benchmark.unseen_classes)]
    assert np.array_equal(classifier.class_ids_[classifier.is_seen_class_],
                          benchmark.seen_classes)
    assert classifier.method_.selected_candidate == classifier.candidate_


def test_cegzsl_classifier_matches_unseen_train_with_the_same_settings(benchmark, tmp_path):
    classifier = GZSLClassifier("cegzsl", **TINY_CEGZSL).fit(benchmark)
    results = unseen.train("cegzsl", benchmark, overrides=TINY_CEGZSL, out=str(tmp_path / "r"))
    (run,) = results["per_seed"]
    assert classifier.candidate_ == run["selected"]["candidate"]
    assert classifier.epochs_ == run["selected"]["epoch"] + 1
    assert classifier.gamma_ == pytest.approx(run["gamma"])
    features, labels = _test_rows(benchmark)
    scores = torch.as_tensor(classifier.decision_function(features)) + classifier.gamma_ * \
        torch.as_tensor(classifier.is_seen_class_, dtype=torch.float32)
    result = evaluate(scores, classifier._positions(labels, labels.size),
                      classifier.is_seen_class_, gamma=classifier.gamma_)
    assert (result.U, result.S) == pytest.approx((run["U"], run["S"]), abs=1e-6)
    assert {row["epoch"] for row in classifier.history_} == {0, 1, 2}
    # The trained method scores with the chosen classifier when none is named.
    rows = torch.as_tensor(classifier.task_.features[benchmark.test_unseen_idx])
    assert classifier.method_.selected_candidate == classifier.candidate_
    assert torch.equal(classifier.method_.scores(classifier.task_, rows),
                       classifier.method_.scores(classifier.task_, rows, classifier.candidate_))


def test_predict_scales_raw_features_like_the_training_rows(eszsl, benchmark):
    rows = benchmark.test_unseen_idx[:20]
    task = eszsl.task_
    expected = eszsl.method_.scores(task, torch.as_tensor(task.features[rows]), eszsl.candidate_)
    expected = expected - eszsl.gamma_ * torch.as_tensor(eszsl.is_seen_class_).float()
    raw = benchmark.features[rows]
    assert not np.allclose(raw, task.features[rows])  # MinMax scaling changes them
    np.testing.assert_allclose(eszsl.decision_function(raw), expected.numpy(), rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_array_equal(eszsl.predict(torch.as_tensor(raw)), eszsl.predict(raw))


def test_predict_proba_is_a_distribution_whose_argmax_is_predict(eszsl, benchmark):
    features, _ = _test_rows(benchmark)
    probabilities = eszsl.predict_proba(features)
    assert probabilities.shape == (features.shape[0], eszsl.classes_.size)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-9)
    assert (probabilities >= 0).all()
    np.testing.assert_array_equal(eszsl.classes_[probabilities.argmax(axis=1)],
                                  eszsl.predict(features))


def test_score_is_h_on_both_groups_and_u_or_s_on_one(eszsl, benchmark):
    features, labels = _test_rows(benchmark)
    names = np.array(benchmark.class_names)[labels]
    predicted = eszsl.predict(features)
    seen = np.isin(labels, benchmark.seen_classes)
    per_class = {c: np.mean(predicted[labels == c] == benchmark.class_names[c])
                 for c in np.unique(labels)}
    s = np.mean([per_class[c] for c in np.unique(labels[seen])])
    u = np.mean([per_class[c] for c in np.unique(labels[~seen])])
    assert eszsl.score(features, names) == pytest.approx(2 * u * s / (u + s))
    assert eszsl.score(features, labels) == pytest.approx(2 * u * s / (u + s))
    assert eszsl.score(features[seen], labels[seen]) == pytest.approx(s)
    assert eszsl.score(features[~seen], names[~seen]) == pytest.approx(u)


def test_a_fixed_gamma_is_applied_instead_of_the_chosen_one(benchmark):
    classifier = GZSLClassifier("eszsl", gamma=1e9, **GRID).fit(benchmark)
    assert classifier.gamma_ == 1e9
    features, _ = _test_rows(benchmark)
    unseen_names = {benchmark.class_names[c] for c in benchmark.unseen_classes}
    assert set(classifier.predict(features)) <= unseen_names


def test_the_regularisation_pair_is_the_best_on_validation_whatever_the_grid_order():
    noisy = synthetic_benchmark(seed=3, noise=1.0)  # validation H below 1: the pairs differ
    # One validation fold, so that its candidate history is the choice's.
    forward = GZSLClassifier("eszsl", val_folds=1, **GRID).fit(noisy)
    backward = GZSLClassifier("eszsl", val_folds=1,
                              feature_regularisation=GRID["feature_regularisation"][::-1],
                              semantic_regularisation=GRID["semantic_regularisation"][::-1]
                              ).fit(noisy)
    validation_h = {name: h for name, (h, _) in forward.selection_.candidate_history[0].items()}
    assert forward.candidate_ == max(validation_h, key=validation_h.get) == backward.candidate_
    assert forward.candidate_ != next(iter(validation_h))  # not the first of the grid
    rows = torch.as_tensor(forward.task_.features[noisy.test_unseen_idx])
    first = forward.method_.scores(forward.task_, rows, next(iter(validation_h)))
    chosen = forward.method_.scores(forward.task_, rows)
    assert not torch.allclose(first, chosen)
    torch.testing.assert_close(chosen, forward.method_.scores(forward.task_, rows,
                                                              forward.candidate_))


@pytest.mark.parametrize(("make", "fragment"), [
    (lambda b: GZSLClassifier("duet").fit(b), "unseen.train"),
    (lambda b: GZSLClassifier("eszsl", gamma="best").fit(b), "gamma"),
    (lambda b: GZSLClassifier("eszsl", learning_rat=3).fit(b), "learning_rat"),
    (lambda b: GZSLClassifier("eszsl", epochs=1.5).fit(b), "epochs"),
    (lambda b: GZSLClassifier("eszsl").fit(b.features), "Benchmark"),
    (lambda b: GZSLClassifier("eszsl").predict(b.features), "fit(benchmark)"),
])
def test_bad_use_is_one_clear_error(benchmark, make, fragment):
    with pytest.raises(UnseenInputError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        make(benchmark)


def test_bad_inputs_to_a_fitted_classifier_name_what_was_expected(eszsl, benchmark):
    features, labels = _test_rows(benchmark)
    with pytest.raises(UnseenInputError, match=r"X: expected raw features \[N, 64\]"):
        eszsl.predict(features[:, :10])
    broken = features.copy()
    broken[3, 0] = np.nan
    with pytest.raises(UnseenInputError, match="row 3"):
        eszsl.predict_proba(broken)
    with pytest.raises(UnseenInputError, match="'no_such_class'"):
        eszsl.score(features[:2], ["no_such_class", benchmark.class_names[0]])
    with pytest.raises(UnseenInputError, match="one per row"):
        eszsl.score(features, labels[:-1])
