"""`unseen export` of the generative methods keeps only their inference state
(`unseen.methods.generative.inference`): no critic, optimiser, SAMC centre or other
training-only tensor reaches the model directory, which is smaller than the full training state
yet scores and takes added classes bit for bit like it; a model directory written with the full
state (the format before) still loads."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from test_cadavae_method import TINY as CADAVAE_TINY
from test_cegzsl_method import TINY as CEGZSL_TINY
from test_cegzsl_method import _one_thread  # noqa: F401  (autouse fixture)
from test_fclswgan_method import TINY as FCLSWGAN_TINY
from test_free_method import TINY as FREE_TINY
from test_tfvaegan_method import TINY as TFVAEGAN_TINY

import unseen.export
from unseen import GZSLModel
from unseen.class_semantics import AddedClass
from unseen.data.synthetic import synthetic_benchmark
from unseen.export import WEIGHTS_FILE, export_run
from unseen.runner import Runner, RunSpec

SETTINGS = {"fclswgan": FCLSWGAN_TINY, "tfvaegan": TFVAEGAN_TINY, "free": FREE_TINY,
            "cadavae": CADAVAE_TINY, "cegzsl": CEGZSL_TINY}
# case -> (method, overrides): FREE's bug mode also draws noise when scoring
CASES = {**{name: (name, {}) for name in SETTINGS},
         "free-bugs": ("free", {"replicate_reference_bugs": True})}
# state keys -> what the model directory keeps of each method (besides the bookkeeping)
KEPT = {"fclswgan": {"generator"}, "tfvaegan": {"generator", "feedback", "decoder"},
        "free": {"generator", "refinement"}, "cadavae": {"vaes"},
        "cegzsl": {"generator", "embedding"}}
# tensor-name fragments that only training reads: none may reach the trimmed directory
TRAINING_ONLY = {
    "fclswgan": ("critic", "optimizer", "seen_classifier"),
    "tfvaegan": ("critic", "optimizer", "encoder"),
    "free": ("critic", "optimizer", "centers", "encoder", "refinement/discriminator",
             "refinement/classifier"),
    "cadavae": ("optimizer", "decoder"),
    "cegzsl": ("critic", "optimizer", "comparator"),
}
BOOKKEEPING = {"inference_version", "architecture", "epoch", "classifiers"}


@pytest.fixture(scope="module")
def benchmark():
    return synthetic_benchmark()


@pytest.fixture(scope="module", params=list(CASES))
def exported(request, benchmark, tmp_path_factory):
    """One tiny run per case, exported trimmed (now) and with the full state (before)."""
    name, overrides = CASES[request.param]
    root = tmp_path_factory.mktemp(f"trim-{request.param}")
    spec = RunSpec(method=name, dataset="synthetic", protocol="clean", out=str(root / "run"),
                   overrides={**SETTINGS[name], "epochs": 1, "val_folds": 1, **overrides})
    Runner(spec, load_benchmark=lambda spec, index: benchmark).run()
    load = lambda spec, partition: benchmark  # noqa: E731
    export_run(root / "run", root / "trimmed", load_benchmark=load)
    patch = pytest.MonkeyPatch()
    patch.setattr(unseen.export, "_portable_state", lambda method, state: dict(state))
    export_run(root / "run", root / "full", load_benchmark=load)
    patch.undo()
    return {"name": name, "root": root, "trimmed": root / "trimmed", "full": root / "full"}


def _state_keys(model_dir) -> set[str]:
    return set(json.loads((model_dir / "config.json").read_text())["state"])


def test_the_model_directory_holds_no_training_only_tensor(exported):
    name = exported["name"]
    assert _state_keys(exported["trimmed"]) - {"refit_base_candidate"} == (
        BOOKKEEPING | KEPT[name])
    trimmed = load_file(exported["trimmed"] / WEIGHTS_FILE)
    full = load_file(exported["full"] / WEIGHTS_FILE)
    for fragment in TRAINING_ONLY[name]:
        assert any(fragment in key for key in full), fragment  # the full state has them
        assert not [key for key in trimmed if fragment in key], fragment
    assert set(trimmed) < set(full)
    for key, tensor in trimmed.items():
        assert torch.equal(tensor, full[key]), key  # the kept weights are the trained ones
    sizes = [(exported[kind] / WEIGHTS_FILE).stat().st_size for kind in ("trimmed", "full")]
    assert sizes[0] < sizes[1]


def _loaded(exported):
    """The trimmed model, and the full-state one loaded as before (`load_state_dict`)."""
    trimmed = GZSLModel.from_pretrained(exported["trimmed"])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(unseen.export, "_portable_state", lambda method, state: dict(state))
        full = GZSLModel.from_pretrained(exported["full"])
    assert "inference_version" not in full.state and "inference_version" in trimmed.state
    return trimmed, full


def _scores(model: GZSLModel, features) -> torch.Tensor:
    model._method_and_task()  # built (its random initialisation drawn) before the seed
    torch.manual_seed(11)  # FREE's bug mode draws noise when scoring
    return model.scores(features)


def test_the_trimmed_model_scores_like_the_full_state(exported, benchmark):
    features = benchmark.features[benchmark.test_unseen_idx[::7]]
    trimmed, full = _loaded(exported)
    assert torch.equal(_scores(trimmed, features), _scores(full, features))
    from_run = GZSLModel.from_run(exported["root"] / "run",
                                  load_benchmark=lambda spec, partition: benchmark)
    assert torch.equal(_scores(from_run, features), _scores(trimmed, features))


def test_a_full_state_model_directory_loads_trimmed(exported, benchmark, tmp_path):
    """A directory written before keeps loading; it is trimmed on the way in, so that saving it
    again writes exactly what `unseen export` writes now."""
    features = benchmark.features[benchmark.test_unseen_idx[::7]]
    old = GZSLModel.from_pretrained(exported["full"])
    trimmed = GZSLModel.from_pretrained(exported["trimmed"])
    assert "inference_version" in old.state and set(old.state) == set(trimmed.state)
    assert torch.equal(_scores(old, features), _scores(trimmed, features))
    old.save_pretrained(tmp_path / "resaved")
    assert (tmp_path / "resaved" / WEIGHTS_FILE).read_bytes() == (
        exported["trimmed"] / WEIGHTS_FILE).read_bytes()


def test_added_classes_refit_like_the_full_state_and_save(exported, benchmark, tmp_path):
    size = benchmark.semantics.shape[1]
    row = torch.linspace(0.1, 1.0, size)
    row = (row / row.norm()).tolist()
    added = AddedClass("okapi", source="test",
                       attributes=dict(zip(benchmark.attribute_names, row, strict=True)))
    features = benchmark.features[benchmark.test_unseen_idx[::7]]
    trimmed, full = _loaded(exported)
    for model in (trimmed, full):
        assert model.add_classes([added]) == ["okapi"]
    assert trimmed.candidate == full.candidate == "added_classes"
    for a, b in zip(trimmed.state["classifiers"]["added_classes"].values(),
                    full.state["classifiers"]["added_classes"].values(), strict=True):
        assert a == b if isinstance(a, str) else torch.equal(a, b)
    scores = _scores(trimmed, features)
    assert scores.shape[1] == benchmark.num_classes + 1
    assert torch.equal(scores, _scores(full, features))
    trimmed.save_pretrained(tmp_path / "extended")
    again = GZSLModel.from_pretrained(tmp_path / "extended")
    assert again.class_names[-1] == "okapi" and again.class_kinds[-1] == "added"
    assert torch.equal(_scores(again, features), scores)
    full.save_pretrained(tmp_path / "full-extended")  # the whole state, as written before
    trimmed_on_load = GZSLModel.from_pretrained(tmp_path / "full-extended")
    assert trimmed_on_load.state["refit_base_candidate"] == full.state["refit_base_candidate"]
    assert torch.equal(_scores(trimmed_on_load, features), scores)


def test_a_trimmed_state_missing_a_kept_weight_is_one_line(exported, tmp_path):
    from unseen.errors import UnseenInputError

    model = GZSLModel.from_pretrained(exported["trimmed"])
    part = sorted(KEPT[exported["name"]])[0]
    dropped = sorted(model.state[part])[0]
    del model.state[part][dropped]
    with pytest.raises(UnseenInputError, match="missing or unexpected") as error:
        model.scores(torch.zeros(1, 1).numpy())
    assert "\n" not in str(error.value) and dropped in str(error.value)
