"""Classes added at prediction time to f-CLSWGAN, TF-VAEGAN and FREE
(`generative.added_classes.refit_on_synthesis` through each method's `portable.py`): the refit
trains on exactly the inputs the method's evaluation makes for the same classes (synthesis,
the method's own semantic normalisation, the classifier-input transform; in FREE's bug mode all
but the noisy Sigmoid(mu + sigma * eps) columns, whose draws the evaluation makes in the
reference's order), seeded and without touching the global random stream; a semantic vector of
the wrong size is one line of UnseenInputError."""

from __future__ import annotations

import importlib

import pytest
import torch
from test_cegzsl_method import RecordingMonitor, _one_thread  # noqa: F401  (autouse fixture)
from test_fclswgan_method import TINY as FCLSWGAN_TINY
from test_free_method import TINY as FREE_TINY
from test_tfvaegan_method import TINY as TFVAEGAN_TINY

from unseen.data.synthetic import synthetic_benchmark
from unseen.data.tasks import make_test_task
from unseen.errors import UnseenInputError
from unseen.methods import generative
from unseen.methods.generative.data import task_tensors
from unseen.methods.registry import get_method

SETTINGS = {"fclswgan": FCLSWGAN_TINY, "tfvaegan": TFVAEGAN_TINY, "free": FREE_TINY}
CASES = [("fclswgan", {}), ("tfvaegan", {}), ("free", {}),
         ("free", {"replicate_reference_bugs": True})]
SEED = 5


@pytest.fixture(scope="module")
def task():
    return make_test_task(synthetic_benchmark())


def _trained(task, name: str, overrides: dict):
    method_class = get_method(name)
    config = method_class.config_class().updated(
        {**SETTINGS[name], "epochs": 1, "zsl_classifier": False, **overrides})
    method = method_class(config, seed=0)
    method.fit(task, RecordingMonitor())
    return method


def _recording_train_classifier(monkeypatch, module) -> list[torch.Tensor]:
    """The training inputs of every final-classifier fit that `module` starts."""
    seen: list[torch.Tensor] = []
    real = module.train_classifier

    def recording(inputs, *args, **kwargs):
        seen.append(inputs.clone())
        return real(inputs, *args, **kwargs)

    monkeypatch.setattr(module, "train_classifier", recording)
    return seen


@pytest.mark.parametrize("name, overrides", CASES)
def test_the_refit_trains_on_the_evaluations_classifier_inputs(task, monkeypatch, name,
                                                               overrides):
    method = _trained(task, name, overrides)
    portable = importlib.import_module(f"unseen.methods.{name}.portable")
    syn_num = method.config.syn_num
    # The evaluation, seeded: its last rows are the unseen classes' synthetic inputs.
    data = task_tensors(task, method.device)
    method._on_start(data, fresh=False)  # the method's semantic normalisation, as in training
    evaluated = _recording_train_classifier(monkeypatch, generative.trainer)
    torch.manual_seed(SEED)
    method._evaluate(data, 0, {})
    num_unseen = task.unseen_classes.size
    expected = evaluated[0][-num_unseen * syn_num:]
    eval_width = method.classifiers.entries["classifier_epoch=1"][1].shape[1]
    # The refit for the raw semantics of the same classes, under the same seed.
    refitted = _recording_train_classifier(monkeypatch, generative.added_classes)
    semantics = torch.as_tensor(task.semantics[task.unseen_classes])
    rng = torch.get_rng_state()
    candidate = portable.refit_with_added_classes(method, semantics, SEED, classifier_epochs=2)
    assert torch.equal(torch.get_rng_state(), rng)
    # FREE's bug mode reads Sigmoid(mu + sigma * eps) in its last A columns; the evaluation
    # draws those eps in the reference's order (training rows first), the refit in its own.
    noisy = task.semantics.shape[1] if overrides.get("replicate_reference_bugs") else 0
    width = expected.shape[1] - noisy
    assert refitted[0].shape == expected.shape
    assert torch.equal(refitted[0][:, :width], expected[:, :width])
    kind, weight, bias = method.classifiers.entries[candidate]
    assert kind == "gzsl" and weight.shape == (num_unseen, eval_width) == (num_unseen,
                                                                            expected.shape[1])
    feature_dim = task.features.shape[1]
    assert eval_width == feature_dim if name == "fclswgan" else eval_width > feature_dim
    portable.refit_with_added_classes(method, semantics, SEED, classifier_epochs=2)
    again = method.classifiers.entries[candidate]
    assert torch.equal(again[1], weight) and torch.equal(again[2], bias)


@pytest.mark.parametrize("name", ["tfvaegan", "free"])
def test_a_semantic_vector_of_the_wrong_size_is_one_line(task, name):
    method = _trained(task, name, {"classifier_epochs": 1})
    portable = importlib.import_module(f"unseen.methods.{name}.portable")
    size = task.semantics.shape[1]
    with pytest.raises(UnseenInputError, match=rf"expected semantic vectors of size {size}, "
                                               rf"found \(3, {size + 1}\)") as error:
        portable.refit_with_added_classes(method, torch.rand(3, size + 1), 0, 1)
    assert "\n" not in str(error.value)
    untrained = get_method(name)(method.config, seed=0)
    with pytest.raises(UnseenInputError, match="found no generator"):
        portable.refit_with_added_classes(untrained, torch.rand(3, size), 0, 1)


@pytest.mark.parametrize("name", ["tfvaegan", "free"])
def test_an_all_zero_added_class_vector_is_refused_where_the_method_normalises(task, name):
    method = _trained(task, name, {"classifier_epochs": 1})
    portable = importlib.import_module(f"unseen.methods.{name}.portable")
    semantics = torch.as_tensor(task.semantics, dtype=torch.float32).clone()
    semantics[-1] = 0
    with pytest.raises(UnseenInputError, match="all-zero row; set l2_semantics=false"):
        portable.refit_with_added_classes(method, semantics, 0, 1)
