"""Classes added at prediction time (`unseen predict --add-class`): a class held out of training
entirely, added by its description, is predicted on its own images above chance (ESZSL and
CE-GZSL, through the CLI: train -> export -> predict); its semantics are built exactly like the
training classes'; attribute models take attribute rows and refuse text, with clear errors."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from portable_fixtures import animals, without_class, write_pngs

import unseen.data.loading
from unseen import GZSLModel
from unseen.class_semantics import (
    AddedClass,
    build_semantics,
    parse_add_class,
    read_added_classes,
)
from unseen.cli import main
from unseen.errors import UnseenInputError

HELD_OUT = "elephant"


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    """Animals partition 0 without elephants; the elephant pictures as PNG files."""
    full = animals(0)
    root = tmp_path_factory.mktemp("added")
    held = full.class_names.index(HELD_OUT)
    rows = np.flatnonzero(full.labels == held)
    _, _, gloss = full.source["descriptions"][held].partition(": ")
    return {"full": full, "small": without_class(full, HELD_OUT), "root": root,
            "images": write_pngs(full, rows, root / "images"), "gloss": gloss, "held": held}


def _train_export_predict(held_out, method, overrides, capsys):
    small, root = held_out["small"], held_out["root"]
    patch = pytest.MonkeyPatch()
    patch.setattr(unseen.data.loading, "load_dataset",
                  lambda name, data_root=None, partition=0: small)
    try:
        run, model = root / f"{method}-run", root / f"{method}-model"
        assert main(["train", method, "--dataset", "animals", "--preset", "demo",
                     "--set", *overrides, "--out", str(run)]) == 0
        assert main(["export", str(run), str(model)]) == 0
    finally:
        patch.undo()
    capsys.readouterr()
    code = main(["predict", str(model), *held_out["images"], "--top-k", "3", "--json",
                 "--add-class", f"{HELD_OUT}: {held_out['gloss']}"])
    assert code == 0
    return model, json.loads(capsys.readouterr().out)


def _check_added_class_found(held_out, model_dir, predictions):
    config = json.loads((model_dir / "config.json").read_text())
    assert HELD_OUT not in config["class_names"] and len(config["class_names"]) == 9
    assert len(predictions) == len(held_out["images"])
    kinds = {e["class"]: e["kind"] for p in predictions for e in p["top"]}
    assert kinds.get(HELD_OUT) == "added" and "added" not in {
        kind for name, kind in kinds.items() if name != HELD_OUT}
    top1 = np.mean([p["top"][0]["class"] == HELD_OUT for p in predictions])
    chance = 1 / 10  # nine trained classes and the added one
    assert top1 > chance, top1


def test_eszsl_predicts_a_class_added_by_its_description(held_out, capsys):
    model_dir, predictions = _train_export_predict(held_out, "eszsl", ["val_folds=1"], capsys)
    _check_added_class_found(held_out, model_dir, predictions)
    # built exactly like the training classes: MiniLM of "name: gloss", unit norm
    model = GZSLModel.from_pretrained(model_dir)
    model.add_classes({HELD_OUT: held_out["gloss"]})
    np.testing.assert_allclose(model.class_semantics[-1],
                               held_out["full"].semantics[held_out["held"]], atol=1e-5)
    # ESZSL scores the new semantic vector directly: x V s
    features = torch.as_tensor(held_out["full"].features[:4])
    method, _ = model._method_and_task()
    scaled = torch.as_tensor(model._scale(features.numpy()))
    expected = scaled @ method.weights(model.candidate).float() @ torch.as_tensor(
        model.class_semantics[-1])
    torch.testing.assert_close(model.scores(features)[:, -1], expected, rtol=1e-4, atol=1e-4)


def test_cegzsl_refits_its_classifier_for_a_class_added_by_description(held_out, capsys):
    overrides = ["epochs=2", "syn_num=20", "val_folds=1"]
    model_dir, predictions = _train_export_predict(held_out, "cegzsl", overrides, capsys)
    _check_added_class_found(held_out, model_dir, predictions)
    _check_seeded_refit_saves(held_out, model_dir, "cegzsl-extended")


def _check_seeded_refit_saves(held_out, model_dir, saved_name: str) -> GZSLModel:
    """The refit is seeded (the same call gives the same scores) and the model saves with it;
    returns the extended model."""
    first, second = (GZSLModel.from_pretrained(model_dir) for _ in range(2))
    for model in (first, second):
        model.add_classes({HELD_OUT: held_out["gloss"]})
    features = held_out["full"].features[:5]
    torch.testing.assert_close(first.scores(features), second.scores(features))
    assert first.candidate == "added_classes"
    first.save_pretrained(held_out["root"] / saved_name)
    again = GZSLModel.from_pretrained(held_out["root"] / saved_name)
    assert again.class_kinds[-1] == "added" and again.class_names[-1] == HELD_OUT
    torch.testing.assert_close(again.scores(features), first.scores(features))
    return first


# ---------------------------------------------------------------- attribute models, errors

@pytest.fixture(scope="module")
def attribute_model(tmp_path_factory):
    """ESZSL on a synthetic attribute benchmark with named attributes (features, no images)."""
    from unseen.data.synthetic import synthetic_benchmark
    from unseen.runner import Runner, RunSpec

    benchmark = synthetic_benchmark(num_classes=8, num_unseen=2, images_per_class=20,
                                    feature_dim=16, semantic_dim=6)
    names = [f"attr{a}" for a in range(6)]
    benchmark = dataclasses.replace(benchmark, attribute_names=names)
    root = tmp_path_factory.mktemp("attributes")
    spec = RunSpec(method="eszsl", dataset="synthetic", protocol="paper", out=str(root / "run"))
    Runner(spec, load_benchmark=lambda spec, index: benchmark).run()
    GZSLModel.from_run(root / "run", load_benchmark=lambda spec, p: benchmark).save_pretrained(
        root / "model")
    return {"benchmark": benchmark, "model": root / "model", "root": root, "names": names}


def test_attribute_row_from_csv_joins_the_candidates(attribute_model):
    benchmark, root = attribute_model["benchmark"], attribute_model["root"]
    row = np.array([3.0, 0.0, 4.0, 0.0, 0.0, 0.0])
    csv_path = root / "new.csv"
    csv_path.write_text("class," + ",".join(attribute_model["names"]) + "\n"
                        "newcomer," + ",".join(str(v) for v in row) + "\n")
    model = GZSLModel.from_pretrained(attribute_model["model"])
    assert model.semantics_recipe["blocks"][0]["normalise"] == "l2"  # xlsa17 att rows
    assert model.add_classes(read_added_classes(csv_path)) == ["newcomer"]
    np.testing.assert_allclose(model.class_semantics[-1], row / 5.0, atol=1e-6)
    features = benchmark.features[:6]
    scores = model.scores(features)
    assert scores.shape == (6, benchmark.num_classes + 1)
    # existing columns are unchanged by the added class
    before = GZSLModel.from_pretrained(attribute_model["model"]).scores(features)
    torch.testing.assert_close(scores[:, :-1], before)


def test_text_only_class_for_an_attribute_model_is_refused(attribute_model, capsys):
    model = str(attribute_model["model"])
    features = attribute_model["root"] / "x.png"
    from PIL import Image

    Image.new("RGB", (8, 8)).save(features)
    code = main(["predict", model, str(features), "--add-class", "okapi: a forest giraffe"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "okapi" in err and "attribute row" in err


def test_attribute_columns_must_match_the_models(attribute_model):
    path = attribute_model["root"] / "wrong.tsv"
    names = attribute_model["names"][:-1] + ["wings"]
    path.write_text("class\t" + "\t".join(names) + "\nbat\t" + "\t".join(["1"] * 6) + "\n")
    model = GZSLModel.from_pretrained(attribute_model["model"])
    with pytest.raises(UnseenInputError, match=r"missing \['attr5'\], extra \['wings'\]"):
        model.add_classes(read_added_classes(path))
    with pytest.raises(UnseenInputError, match="already one of its classes"):
        model.add_classes([AddedClass(model.class_names[0], attributes=dict.fromkeys(
            attribute_model["names"], 1.0))])


def test_added_class_files_in_every_format(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"okapi": "a forest giraffe"}))
    (tmp_path / "a.jsonl").write_text('{"class": "okapi", "text": "a forest giraffe"}\n'
                                      '{"class": "tapir", "text": "a pig-like animal"}\n')
    (tmp_path / "a.txt").write_text("okapi: a forest giraffe\n\ntapir: a pig-like animal\n")
    assert [(c.name, c.description) for c in read_added_classes(tmp_path / "a.json")] == [
        ("okapi", "a forest giraffe")]
    assert [c.name for c in read_added_classes(tmp_path / "a.jsonl")] == ["okapi", "tapir"]
    assert [c.description for c in read_added_classes(tmp_path / "a.txt")] == [
        "a forest giraffe", "a pig-like animal"]
    (tmp_path / "bad.txt").write_text("okapi a forest giraffe\n")
    with pytest.raises(UnseenInputError, match="bad.txt.*line 1"):
        read_added_classes(tmp_path / "bad.txt")
    (tmp_path / "bad.csv").write_text("class,a\nokapi,tall\n")
    with pytest.raises(UnseenInputError, match="field 'a': expected a number"):
        read_added_classes(tmp_path / "bad.csv")
    assert parse_add_class("okapi: a forest giraffe: striped").description == \
        "a forest giraffe: striped"


def test_prompt_models_take_the_class_name_alone():
    recipe = {"blocks": [{"kind": "prompt", "dim": 384, "encoder": "minilm",
                          "prompt": "a photo of a {}, an animal.", "normalise": "l2"}],
              "combine": "concatenate"}
    with pytest.raises(UnseenInputError, match="class name alone"):
        build_semantics(recipe, [parse_add_class("okapi: a forest giraffe")])


def test_a_built_data_sets_manifest_is_the_recipe():
    """`unseen data build` semantics (MANIFEST_SCHEMA.md): an attributes block and a MiniLM
    descriptions block, each L2-normalised, concatenated; an added class needs both."""
    from unseen.class_semantics import recipe_for_benchmark
    from unseen.data.synthetic import synthetic_benchmark
    from unseen.text.sentence_encoder import SentenceEncoder

    names = ["stripes", "spots", "size"]
    manifest = {"format": "unseen-dataset/1", "attribute_names": names,
                "semantics": {"blocks": [
                    {"kind": "attributes", "source": "attributes.csv", "dim": 3},
                    {"kind": "descriptions", "source": "descriptions.json", "dim": 384,
                     "encoder": "minilm", "pooling": "mean", "normalise": "l2"}],
                    "combine": "concatenate, each block L2-normalised"}}
    benchmark = synthetic_benchmark(num_classes=4, num_unseen=1, images_per_class=5,
                                    feature_dim=4, semantic_dim=387)
    benchmark.source["manifest"] = manifest
    recipe = recipe_for_benchmark(benchmark)
    assert [b["kind"] for b in recipe["blocks"]] == ["attributes", "descriptions"]
    assert recipe["blocks"][0]["attribute_names"] == names
    okapi = AddedClass("okapi", "a forest giraffe with striped legs",
                       {"stripes": 1.0, "spots": 0.0, "size": 2.0})
    vector = build_semantics(recipe, [okapi])[0]
    text = SentenceEncoder().encode(["a forest giraffe with striped legs"])[0]
    expected = np.concatenate([np.array([1.0, 0.0, 2.0]) / np.sqrt(5.0),
                               text / np.linalg.norm(text)])
    np.testing.assert_allclose(vector, expected, atol=1e-5)
    with pytest.raises(UnseenInputError, match="expected an attribute row"):
        build_semantics(recipe, [AddedClass("okapi", "a forest giraffe")])
