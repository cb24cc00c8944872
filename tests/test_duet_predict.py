"""`unseen predict` with a DUET run: a fresh DUET restored from the final checkpoint scores image
files exactly as the run scored them, and predicts the class of seen-class images."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from duet_fixtures import ATTRIBUTE_WORDS, save_tiny_bert, save_tiny_deit, tiny_image_benchmark

import unseen.data.loading
from unseen.data.tasks import Preprocessing, make_test_task
from unseen.methods.duet import DUET, DUETConfig
from unseen.predict import predict
from unseen.rundir import RunDirectory
from unseen.runner import Runner, RunSpec

# One value per attribute group (colour, shape, pattern, size) for each of the 5 classes, so
# class attribute rows differ clearly (the synthetic rows are all alike).
_VALUES = np.array([[0, 0, 0, 0], [1, 1, 1, 0], [2, 2, 0, 1], [3, 3, 1, 1], [0, 1, 1, 0]])


def _benchmark(root):
    benchmark = tiny_image_benchmark(root, num_classes=5, num_unseen=1, images_per_class=16)
    binary = np.zeros((5, len(ATTRIBUTE_WORDS)), np.float32)
    binary[np.arange(5)[:, None], _VALUES + np.array([0, 4, 8, 10])] = 1.0
    semantics = binary / np.linalg.norm(binary, axis=1, keepdims=True)
    return dataclasses.replace(benchmark, semantics=semantics, original_semantics=binary * 100)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("duet_predict")
    benchmark = _benchmark(root / "images")
    overrides = {"vision_model": str(save_tiny_deit(root / "deit")),
                 "text_model": str(save_tiny_bert(root / "bert", extra_words=ATTRIBUTE_WORDS)),
                 "epochs": "2", "batch_size": "4", "gradient_accumulation": "1", "lr": "1e-3",
                 "num_workers": "0", "max_length": "48", "classification_loss": "logits",
                 "mask_probability": "0.2", "pixel_cache_dir": str(root / "cache"),
                 "device": "cpu", "gamma": "0"}
    spec = RunSpec(method="duet", dataset="tiny", protocol="paper", overrides=overrides,
                   seeds=[0], out=str(root / "run"))
    Runner(spec, load_benchmark=lambda spec, index: benchmark).run()
    return {"benchmark": benchmark, "run": root / "run", "images": root / "images"}


def _image_paths(run, rows):
    return [str(run["images"] / run["benchmark"].image_files[row]) for row in rows]


def test_fresh_duet_from_the_final_checkpoint_reproduces_the_run_scores(trained_run):
    directory = RunDirectory(trained_run["run"])
    checkpoint = directory.load_checkpoint(directory.final_checkpoint_path(0))
    # the test-phase checkpoint keeps the last epoch's scores, made by the final model state
    last_scores = directory.load_checkpoint(directory.checkpoint_path(0, "test"))["scores"]["last"]
    method = DUET(DUETConfig(**checkpoint["config"]), seed=0)
    method.load_state_dict(checkpoint["method_state"])  # no fit: the predict path
    task = make_test_task(trained_run["benchmark"], Preprocessing(**checkpoint["preprocessing"]))
    rows = task.eval_idx
    pixels = method.preprocess_images(task, _image_paths(trained_run, rows))
    assert pixels.dtype == torch.float32 and pixels.shape[:2] == (rows.size, 3)
    scores = method.scores(task, pixels, checkpoint["candidate"])
    torch.testing.assert_close(scores, last_scores.float(), atol=1e-5, rtol=1e-4)


def test_predict_names_the_class_of_seen_images(trained_run, monkeypatch):
    benchmark = trained_run["benchmark"]
    monkeypatch.setattr(unseen.data.loading, "load_dataset",
                        lambda name, root=None, partition=0: benchmark)
    rows = benchmark.trainval_idx
    predictions = predict(trained_run["run"], _image_paths(trained_run, rows), top_k=3)
    assert [p["image"] for p in predictions] == _image_paths(trained_run, rows)
    top1 = [p["top"][0]["class"] for p in predictions]
    truth = [benchmark.class_names[label] for label in benchmark.labels[rows]]
    accuracy = np.mean([found == expected for found, expected in zip(top1, truth, strict=True)])
    # 4 seen + 1 unseen candidates: chance is 20%; the classes differ by colour
    assert accuracy >= 0.75, (accuracy, top1, truth)
    assert all(len(p["top"]) == 3 and p["top"][0]["score"] >= p["top"][1]["score"]
               for p in predictions)


@pytest.fixture(scope="module")
def exported_duet(trained_run):
    from unseen.export import GZSLModel

    benchmark = trained_run["benchmark"]
    model_dir = trained_run["run"].parent / "model"
    GZSLModel.from_run(trained_run["run"], load_benchmark=lambda spec, p: benchmark
                       ).save_pretrained(model_dir)
    return model_dir


def test_duet_model_directory_predicts_like_the_run(trained_run, exported_duet, monkeypatch):
    from unseen.export import GZSLModel

    benchmark = trained_run["benchmark"]
    paths = _image_paths(trained_run, benchmark.test_unseen_idx[:3].tolist()
                         + benchmark.trainval_idx[:5].tolist())
    from_run = GZSLModel.from_run(trained_run["run"], load_benchmark=lambda spec, p: benchmark)
    monkeypatch.setattr(unseen.data.loading, "load_dataset", None)  # the data is not needed
    from_dir = GZSLModel.from_pretrained(exported_duet)
    assert (exported_duet / "duet" / "attribute_groups.json").is_file()
    torch.testing.assert_close(from_dir.scores(paths), from_run.scores(paths))


def test_duet_scores_an_added_attribute_row_through_its_heads(trained_run, exported_duet,
                                                              tmp_path):
    from unseen.class_semantics import read_added_classes
    from unseen.export import GZSLModel
    from unseen.methods.duet.added_classes import class_probabilities, pre_attributes

    benchmark = trained_run["benchmark"]
    paths = _image_paths(trained_run, benchmark.test_seen_idx[:4].tolist()
                         + benchmark.test_unseen_idx[:2].tolist())
    row = np.zeros(len(ATTRIBUTE_WORDS))
    row[[2, 5, 8, 11]] = 100.0  # a colour, shape, pattern and size no class has together
    table = tmp_path / "added.csv"
    table.write_text("class," + ",".join(ATTRIBUTE_WORDS) + "\nnewcomer,"
                     + ",".join(f"{v:g}" for v in row) + "\n")
    model = GZSLModel.from_pretrained(exported_duet)
    before = model.scores(paths)
    model.add_classes(read_added_classes(table))
    after = model.scores(paths)
    assert after.shape == (len(paths), before.shape[1] + 1)
    method, task = model._method_and_task()
    pre_attri = pre_attributes(method, task, method.preprocess_images(task, paths))
    expected = class_probabilities(pre_attri, torch.from_numpy(model.class_semantics))
    seen = torch.as_tensor(model.is_seen).float()
    torch.testing.assert_close(after, expected - model.gamma * seen, atol=1e-5, rtol=1e-4)
    # the old classes keep their relative scores: the softmax only gains a column
    old = after[:, :-1] + model.gamma * seen[:-1]
    torch.testing.assert_close(old / old.sum(1, keepdim=True),
                               before + model.gamma * seen[:-1], atol=1e-5, rtol=1e-4)


def test_duet_refuses_a_text_only_class(exported_duet):
    from unseen.errors import UnseenInputError
    from unseen.export import GZSLModel

    model = GZSLModel.from_pretrained(exported_duet)
    with pytest.raises(UnseenInputError, match="expected an attribute row"):
        model.add_classes({"okapi": "a forest giraffe"})
