"""Models that travel: a finished run as a self-contained model directory, and `GZSLModel`.

    MODEL_DIR/
      config.json          format "unseen-model/1": method, hyperparameters, seed, class names
                           and kinds (seen / unseen / added), preprocessing, calibrated-stacking
                           gamma, chosen candidate, backbone reference, semantics recipe,
                           source data set, the sha256 of model.safetensors, and the JSON
                           skeleton of the method's state
      model.safetensors    every tensor: the method's weights, the class semantics [K, A], the
                           MinMax statistics of the features
      duet/...             DUET only: the attribute vocabulary files

Neither the training data nor the run directory is needed to load it. Loading never unpickles:
JSON and safetensors only, and the weights file must match the recorded sha256, so that a
truncated or altered file is refused with one line naming it.

Prediction (`GZSLModel.predict`) scores image files (or raw backbone features) over the
model's classes with the method's chosen candidate, subtracts gamma from the seen classes
(calibrated stacking) and keeps the top k. `add_classes` lets classes that did not exist at
training time join the candidates, their semantics built like the training classes'
(`unseen.class_semantics`): ESZSL scores x V s for the new s; the generative methods
(`GENERATIVE_REFIT`) synthesise features (CADA-VAE: latents) for every class and refit only
the final classifier; DUET scores them through its existing heads
(`unseen.methods.duet.added_classes`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unseen.class_semantics import (
    AddedClass,
    build_semantics,
    merge_added_classes,
    recipe_for_benchmark,
)
from unseen.data.benchmark import Benchmark
from unseen.data.tasks import GZSLTask, Preprocessing, apply_minmax, make_test_task
from unseen.errors import UnseenInputError, input_error
from unseen.io import atomic_write_json
from unseen.model_dir.tensor_tree import flatten, tensor_keys, unflatten

FORMAT = "unseen-model/1"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
REQUIRED_KEYS = ("format", "method", "hyperparameters", "seed", "class_names", "class_kinds",
                 "preprocessing", "gamma", "candidate", "backbone", "semantics_recipe",
                 "dataset", "weights_sha256", "state", "tensors")
CLASS_KINDS = ("seen", "unseen", "added")
# The methods that take added classes by refitting their final softmax on inputs made from
# the class semantics: `unseen.methods.<name>.portable.refit_with_added_classes`. Their model
# directory keeps only the inference state (`unseen.methods.generative.inference`).
GENERATIVE_REFIT = ("cegzsl", "fclswgan", "cadavae", "tfvaegan", "free")


class GZSLModel:
    """A trained GZSL model that predicts without its training data or run directory."""

    def __init__(self, *, method: str, hyperparameters: dict[str, Any], seed: int,
                 state: dict[str, Any], class_names: list[str], class_kinds: list[str],
                 class_semantics: np.ndarray, preprocessing: dict[str, str],
                 minmax: dict[str, Any] | None, gamma: float, candidate: str | None,
                 backbone: dict[str, Any] | None, semantics_recipe: dict[str, Any],
                 dataset: dict[str, Any], attribute_names: list[str] | None = None,
                 aux_files: dict[str, tuple[str, bytes]] | None = None,
                 added_classes: list[dict[str, Any]] | None = None,
                 device: str = "auto") -> None:
        self.method_name = method
        self.hyperparameters = dict(hyperparameters)
        self.seed = int(seed)
        self.state = state
        self.class_names = list(class_names)
        self.class_kinds = list(class_kinds)
        self.class_semantics = np.asarray(class_semantics, np.float32)
        self.preprocessing = dict(preprocessing)
        self.minmax = minmax
        self.gamma = float(gamma)
        self.candidate = candidate
        self.backbone = backbone
        self.semantics_recipe = semantics_recipe
        self.dataset = dataset
        self.attribute_names = attribute_names
        self.aux_files = dict(aux_files or {})  # config field -> (file name, contents)
        self.added_classes = list(added_classes or [])
        self.device = device
        self._method = None
        self._task: GZSLTask | None = None
        self.origin = "run checkpoint"  # where the weights came from, for messages

    # -------------------------------------------------------------------- construction

    @classmethod
    def from_run(cls, run_dir: str | Path, seed: int | None = None, load_benchmark=None,
                 device: str = "auto") -> GZSLModel:
        """The model of one seed of a finished run (the first seed by default).

        The run's data set is loaded once to read the class semantics and what the semantics
        recipe and the backbone reference need; `load_benchmark(spec_dict, partition)` replaces
        the default loader (tests, in-memory benchmarks)."""
        from unseen.rundir import RunDirectory

        directory = RunDirectory(run_dir)
        config = directory.read_config()
        spec = config["spec"]
        seed = spec["seeds"][0] if seed is None else int(seed)
        path = directory.final_checkpoint_path(seed)
        if not path.is_file():
            raise UnseenInputError(f"run directory {directory.root}: expected {path.name}, found "
                                   "none (the seed has not finished, or is not one of the run's "
                                   f"seeds {spec['seeds']})")
        checkpoint = _load_run_checkpoint(directory, path)
        partition = int(checkpoint.get("partition", 0) or 0)
        if load_benchmark is None:
            from unseen.data import loading

            benchmark = loading.load_dataset(spec["dataset"], spec["data_root"],
                                             partition=partition)
        else:
            benchmark = load_benchmark(spec, partition)
        preprocessing = dict(checkpoint["preprocessing"])
        task = make_test_task(benchmark, Preprocessing(**preprocessing))
        names = [benchmark.class_names[c] for c in task.classes]
        if names != list(checkpoint["class_names"]):
            raise UnseenInputError(f"{path}: field 'class_names': expected the classes of data set "
                                   f"'{spec['dataset']}' partition {partition}, found others; "
                                   "the data set changed since the run")
        method = checkpoint["method"]
        hyperparameters = dict(checkpoint["config"])
        state = _portable_state(method, checkpoint["method_state"])
        aux_files: dict[str, tuple[str, bytes]] = {}
        if method == "duet":
            from unseen.methods.duet.added_classes import portable_hyperparameters, vocabulary_files

            files, style = vocabulary_files(hyperparameters, benchmark)
            aux_files = {key: (f"duet/{name}", content)
                         for key, (name, content, _) in files.items()}
            working = {key: str(path) for key, (_, _, path) in files.items()}
            hyperparameters = portable_hyperparameters(hyperparameters, working, style)
        minmax = task.notes.get("minmax")
        return cls(
            method=method, hyperparameters=hyperparameters, seed=seed, state=state,
            class_names=names,
            class_kinds=["seen" if s else "unseen" for s in task.is_seen_class],
            class_semantics=task.semantics[task.classes], preprocessing=preprocessing,
            minmax=None if minmax is None else {k: np.asarray(v, np.float32) if k != "top"
                                                else float(v) for k, v in minmax.items()},
            gamma=float(checkpoint["gamma"]), candidate=checkpoint.get("candidate"),
            backbone=backbone_reference(benchmark),
            semantics_recipe=recipe_for_benchmark(benchmark),
            dataset=_dataset_record(spec, benchmark, partition),
            attribute_names=None if benchmark.attribute_names is None
            else [str(n) for n in benchmark.attribute_names],
            aux_files=aux_files, device=device)

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, device: str = "auto") -> GZSLModel:
        """Load a model directory written by `save_pretrained` / `unseen export`."""
        root = Path(model_dir)
        config = _read_config(root)
        weights = _read_weights(root / WEIGHTS_FILE, config["weights_sha256"])
        where = str(root / CONFIG_FILE)
        missing = [k for k in tensor_keys(config["state"]) + list(config["tensors"].values())
                   if k not in weights]
        if missing:
            raise input_error(str(root / WEIGHTS_FILE), "tensors", f"the tensors {CONFIG_FILE} "
                              "names", f"{len(missing)} missing (first: {missing[0]!r})")
        semantics = weights[config["tensors"]["class_semantics"]].numpy()
        num_classes = len(config["class_names"])
        if semantics.ndim != 2 or semantics.shape[0] != num_classes:
            raise input_error(str(root / WEIGHTS_FILE), "class_semantics",
                              f"[{num_classes}, A] (one row per class in {CONFIG_FILE})",
                              str(list(semantics.shape)))
        minmax = None
        if "minmax_low" in config["tensors"]:
            minmax = {"low": weights[config["tensors"]["minmax_low"]].numpy(),
                      "span": weights[config["tensors"]["minmax_span"]].numpy(),
                      "top": float(config["preprocessing"].get("minmax_top", 1.0))}
        hyperparameters = dict(config["hyperparameters"])
        aux_files = {}
        for key, name in config.get("files", {}).items():
            path = root / name
            if not path.is_file() or path.resolve().parent != (root / "duet").resolve():
                raise input_error(where, f"files.{key}", f"a file under {root / 'duet'}",
                                  f"{name!r} missing or outside it")
            aux_files[key] = (name, path.read_bytes())
            hyperparameters[key] = str(path.resolve())
        try:
            state = unflatten(config["state"], weights)
        except (KeyError, TypeError, ValueError) as error:
            raise input_error(where, "state", "the skeleton of the method's state",
                              f"a malformed entry ({type(error).__name__}: {error})") from None
        if config["method"] in GENERATIVE_REFIT and isinstance(state, dict):
            from unseen.methods.generative.inference import is_inference_state

            if not is_inference_state(state):  # written before trimming: the whole state
                state = _portable_state(config["method"], state)
        model = cls(
            method=config["method"], hyperparameters=hyperparameters, seed=config["seed"],
            state=state, class_names=config["class_names"],
            class_kinds=config["class_kinds"], class_semantics=semantics,
            preprocessing={k: v for k, v in config["preprocessing"].items()
                           if k in ("features", "semantics")},
            minmax=minmax, gamma=config["gamma"], candidate=config["candidate"],
            backbone=config["backbone"], semantics_recipe=config["semantics_recipe"],
            dataset=config["dataset"], attribute_names=config.get("attribute_names"),
            aux_files=aux_files, added_classes=config.get("added_classes"), device=device)
        model.origin = str(root / WEIGHTS_FILE)
        return model

    def save_pretrained(self, model_dir: str | Path) -> Path:
        """Write the model directory atomically (a temporary folder renamed into place)."""
        from safetensors.torch import save_file

        root = Path(model_dir)
        if root.exists() and not (root / CONFIG_FILE).is_file() and any(root.iterdir()):
            raise input_error(f"output directory {root}", None, "a new or empty directory (or an "
                              "earlier model directory to replace)", "other files in it")
        root.parent.mkdir(parents=True, exist_ok=True)
        tensors: dict[str, torch.Tensor] = {}
        skeleton = flatten(self.state, tensors, "method")
        named = {"class_semantics": "class_semantics"}
        tensors["class_semantics"] = torch.from_numpy(self.class_semantics.copy())
        preprocessing = dict(self.preprocessing)
        if self.minmax is not None:
            for key in ("low", "span"):
                tensors[f"minmax_{key}"] = torch.as_tensor(np.asarray(self.minmax[key],
                                                                      np.float32)).clone()
                named[f"minmax_{key}"] = f"minmax_{key}"
            preprocessing["minmax_top"] = float(self.minmax["top"])
        staging = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}.export."))
        try:
            save_file(tensors, str(staging / WEIGHTS_FILE), metadata={"format": FORMAT})
            hyperparameters = dict(self.hyperparameters)
            files = {}
            for key, (name, content) in self.aux_files.items():
                (staging / name).parent.mkdir(parents=True, exist_ok=True)
                (staging / name).write_bytes(content)
                files[key] = name
                hyperparameters[key] = name  # resolved against the model directory on load
            from unseen import __version__

            config = {
                "format": FORMAT, "unseen_version": __version__, "method": self.method_name,
                "hyperparameters": hyperparameters, "seed": self.seed,
                "class_names": self.class_names, "class_kinds": self.class_kinds,
                "added_classes": self.added_classes, "preprocessing": preprocessing,
                "gamma": self.gamma, "candidate": self.candidate, "backbone": self.backbone,
                "semantics_recipe": self.semantics_recipe,
                "attribute_names": self.attribute_names, "dataset": self.dataset,
                "files": files, "tensors": named, "state": skeleton,
                "weights_sha256": _sha256(staging / WEIGHTS_FILE),
            }
            atomic_write_json(staging / CONFIG_FILE, config)
            _replace_dir(staging, root)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return root

    # -------------------------------------------------------------------- prediction

    @property
    def is_seen(self) -> np.ndarray:
        return np.array([kind == "seen" for kind in self.class_kinds])

    def scores(self, inputs: list[str | Path] | np.ndarray | torch.Tensor) -> torch.Tensor:
        """Calibrated scores [n, K] (seen columns minus gamma) for image files, or for raw
        backbone features [n, D] (feature methods; MinMax-scaled here like the training rows)."""
        method, task = self._method_and_task()
        if isinstance(inputs, (np.ndarray, torch.Tensor)):
            if method.input_kind == "images":
                raise input_error("GZSLModel.scores", "inputs", "image files (DUET reads pixels)",
                                  "a feature array")
            prepared = torch.as_tensor(self._scale(np.asarray(inputs, np.float32)))
        else:
            paths = _existing_files(inputs)
            if method.input_kind == "images":
                prepared = method.preprocess_images(task, paths)
            else:
                prepared = torch.as_tensor(self._scale(extract_backbone_features(
                    self.backbone, paths)))
        with torch.no_grad():
            raw = method.scores(task, prepared, self.candidate).float().cpu()
        return raw - self.gamma * torch.as_tensor(self.is_seen).float()

    def predict(self, inputs: list[str | Path] | np.ndarray | torch.Tensor, top_k: int = 5
                ) -> list[dict[str, Any]]:
        """Top-k classes per input: [{"image", "top": [{"class", "score", "kind", "seen"}]}]."""
        if top_k < 1:
            raise input_error("option '--top-k'", None, "a positive integer", str(top_k))
        calibrated = self.scores(inputs)
        values, indices = calibrated.topk(min(top_k, calibrated.shape[1]), dim=1)
        labels = ([str(p) for p in inputs] if not isinstance(inputs, (np.ndarray, torch.Tensor))
                  else [f"row {i}" for i in range(calibrated.shape[0])])
        return [{"image": label,
                 "top": [{"class": self.class_names[i], "score": float(v),
                          "kind": self.class_kinds[i], "seen": self.class_kinds[i] == "seen"}
                         for v, i in zip(values[row].tolist(), indices[row].tolist(),
                                         strict=True)]}
                for row, label in enumerate(labels)]

    def _scale(self, features: np.ndarray) -> np.ndarray:
        expected = self._feature_dim()
        if features.ndim != 2 or (expected is not None and features.shape[1] != expected):
            raise input_error("features", None, f"[n, {expected}] (the model's feature size)",
                              str(list(features.shape)))
        return apply_minmax(features, self.minmax) if self.minmax else features

    def _feature_dim(self) -> int | None:
        if self.minmax is not None:
            return int(np.asarray(self.minmax["low"]).shape[0])
        return None

    # -------------------------------------------------------------------- added classes

    def add_classes(self, classes: list[AddedClass] | dict[str, str]) -> list[str]:
        """Classes that did not exist at training time join the candidates (as unseen classes,
        kind "added"). `classes`: AddedClass items, or {name: description}. Returns the names."""
        if isinstance(classes, dict):
            classes = [AddedClass(name, text, source="GZSLModel.add_classes")
                       for name, text in classes.items()]
        classes = merge_added_classes(list(classes))
        clash = [c.name for c in classes if c.name in self.class_names]
        if clash:
            raise input_error(classes[[c.name for c in classes].index(clash[0])].source, "class",
                              "a class the model does not have", f"'{clash[0]}', already one of "
                              "its classes")
        if not classes:
            return []
        vectors = build_semantics(self.semantics_recipe, classes)
        if self.preprocessing.get("semantics") == "l2":  # the task's own semantic preprocessing
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        self.class_semantics = np.concatenate([self.class_semantics, vectors.astype(np.float32)])
        self.class_names += [c.name for c in classes]
        self.class_kinds += ["added"] * len(classes)
        self.added_classes += [{"name": c.name, "description": c.description,
                                "attributes": c.attributes} for c in classes]
        self._task = None
        if self.method_name in GENERATIVE_REFIT:
            self._refit_generative()
        return [c.name for c in classes]

    def _refit_generative(self) -> None:
        """CE-GZSL, f-CLSWGAN, TF-VAEGAN, FREE (G's features, through the method's classifier
        input) and CADA-VAE (attribute latents) for every class, old and added; only the final
        classifier is retrained."""
        import importlib

        from unseen.methods.generative.added_classes import classifier_epochs_of

        portable = importlib.import_module(f"unseen.methods.{self.method_name}.portable")
        method, _ = self._method_and_task()
        # Every refit trains as long as the candidate the run chose (not a refit's name).
        base = self.state.setdefault("refit_base_candidate", self.candidate)
        name = portable.refit_with_added_classes(method, torch.from_numpy(self.class_semantics),
                                                 self.seed, classifier_epochs_of(method, base))
        self.state["classifiers"][name] = method.classifiers.entry(name)
        self.candidate = name

    # -------------------------------------------------------------------- internals

    def _method_and_task(self):
        if self._method is None:
            self._method = self._build_method()
        if self._task is None:
            self._task = class_only_task(self)
        return self._method, self._task

    def _build_method(self):
        from unseen.methods.registry import get_method

        method_class = get_method(self.method_name)
        values = _config_values(method_class.config_class, self.hyperparameters)
        values["device"] = self.device
        method = method_class(method_class.config_class(**values), self.seed)
        try:
            from unseen.methods.generative.inference import (
                is_inference_state,
                load_inference_state,
            )

            if self.method_name in GENERATIVE_REFIT and is_inference_state(self.state):
                load_inference_state(method, self.state)
            else:  # DUET, ESZSL, or a full training state given to GZSLModel as is
                method.load_state_dict(self.state)
        except (KeyError, RuntimeError, TypeError, ValueError) as error:
            first = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
            raise input_error(self.origin, "method state", f"the weights of a {self.method_name}"
                              " model with these hyperparameters",
                              f"{type(error).__name__}: {first}") from None
        return method


# ------------------------------------------------------------------------ the class-only task

def class_only_task(model: GZSLModel) -> GZSLTask:
    """A task over the model's classes with no images (one placeholder row per class): what
    `GZSLMethod.scores` reads (classes, seen/unseen, semantics, the data set's attribute
    names and vocabulary files) without the training data."""
    k = len(model.class_names)
    seen = np.flatnonzero(model.is_seen)
    unseen = np.flatnonzero(~model.is_seen)
    source = {"generator": "unseen.export (class-only)", "model_dataset": model.dataset}
    for key, (name, _) in model.aux_files.items():
        source[key] = model.hyperparameters.get(key, name)
    if "duet_style" in model.hyperparameters:
        source["duet_style"] = model.hyperparameters["duet_style"]
    names = model.attribute_names
    benchmark = Benchmark(
        name=str(model.dataset.get("name", "model")), features=np.zeros((k, 1), np.float32),
        labels=np.arange(k, dtype=np.int64), semantics=model.class_semantics,
        class_names=list(model.class_names), trainval_idx=seen.astype(np.int64),
        test_seen_idx=np.empty(0, np.int64), test_unseen_idx=unseen.astype(np.int64),
        attribute_names=names if names and len(names) == model.class_semantics.shape[1] else None,
        source=source)
    return make_test_task(benchmark, Preprocessing("none", "as_stored"))


# ------------------------------------------------------------------------ backbones

# The ways new image files become features, one per kind of data set:
# embedded sets (`unseen.data.embedded`: EfficientNet-Lite0 on the whole picture resized to the
# set's resolution), built sets (`unseen data build`: `unseen.backbones.auto.load_backbone`
# with the manifest's preprocessing) and the rendered `shapes` set (hand-made descriptors).
PIPELINE_EMBEDDED = "embedded-efficientnet-lite0"
PIPELINE_AUTO = "backbones.auto"
PIPELINE_DESCRIPTOR = "image-descriptor"
_BACKBONE_BATCH = 64


def backbone_reference(benchmark: Benchmark) -> dict[str, Any] | None:
    """What extracting features from new images needs, as the data set recorded it."""
    source = benchmark.source or {}
    manifest = source.get("manifest")
    if isinstance(manifest, dict) and isinstance(manifest.get("backbone"), dict):
        return {**manifest["backbone"], "pipeline": PIPELINE_AUTO}
    if source.get("backbone") == "efficientnet-lite0":
        return {"name": "efficientnet-lite0", "kind": "efficientnet-lite0",
                "image_size": int(source.get("backbone_resolution") or source["resolution"]),
                "pipeline": PIPELINE_EMBEDDED}
    if source.get("generator") == "unseen.data.rendered":
        from unseen.data.images import THUMBNAIL_SIZE

        return {"name": "unseen.data.images.image_descriptor", "kind": "image-descriptor",
                "image_size": THUMBNAIL_SIZE, "pipeline": PIPELINE_DESCRIPTOR}
    return None


def extract_backbone_features(backbone: dict[str, Any] | None, paths: list[Path]) -> np.ndarray:
    """Raw features [n, D] of image files with the recorded backbone and pipeline."""
    pipeline = (backbone or {}).get("pipeline")
    if pipeline == PIPELINE_EMBEDDED:
        from unseen.backbones.efficientnet_lite import extract_features_from_files

        return np.asarray(extract_features_from_files(paths, resolution=int(
            backbone["image_size"]), progress=False), np.float32)
    if pipeline == PIPELINE_DESCRIPTOR:
        from unseen.data.images import image_descriptor, load_thumbnail

        size = int(backbone["image_size"])
        return image_descriptor(np.stack([load_thumbnail(Path(p), size) for p in paths]))
    if pipeline == PIPELINE_AUTO:
        return _auto_backbone_features(backbone, paths)
    raise UnseenInputError(
        "model: field 'backbone': expected a backbone recorded by the data set (embedded sets, "
        "`unseen data build`, shapes), found "
        + (f"{backbone.get('name')!r} without a known pipeline" if backbone else
           "none recorded (the data set's features came from elsewhere)")
        + "; extract features with the data set's own backbone and pass them as an array")


def _auto_backbone_features(reference: dict[str, Any], paths: list[Path]) -> np.ndarray:
    """A built data set's backbone (`unseen.backbones.auto`), checked against the recorded
    weights hash, applied as `unseen data build` applied it: processor to uint8, normalise,
    pooled output in float32."""
    from PIL import Image

    try:
        from unseen.backbones.auto import load_backbone
    except ImportError:
        raise UnseenInputError(f"model: backbone {reference.get('name')!r}: expected "
                               "unseen.backbones.auto (the `unseen data build` backbones), found "
                               "it missing from this installation") from None
    kind = reference.get("kind")
    size = reference.get("image_size") if kind == "efficientnet-lite0" else None
    backbone = load_backbone(reference["name"], image_size=size)
    recorded, found = reference.get("sha256"), getattr(backbone, "sha256", None)
    if recorded and found and recorded != found:
        raise input_error(f"backbone {reference['name']}", "sha256",
                          f"{recorded} (the weights the data set was built with)", found)
    pixels = []
    for path in paths:
        try:
            with Image.open(path) as image:
                image.load()
                pixels.append(backbone.preprocessor.to_uint8(image))
        except Exception as error:  # noqa: BLE001 - Pillow raises many types for bad files
            raise input_error(str(path), None, "a readable image file",
                              f"{type(error).__name__}: {error}") from None
    by_shape: dict[tuple, list[int]] = {}  # processors without a fixed size vary by image
    for index, uint8 in enumerate(pixels):
        by_shape.setdefault(uint8.shape, []).append(index)
    features: list[np.ndarray | None] = [None] * len(pixels)
    with torch.inference_mode():
        for group in by_shape.values():
            for start in range(0, len(group), _BACKBONE_BATCH):
                rows = group[start:start + _BACKBONE_BATCH]
                batch = torch.from_numpy(np.stack([pixels[i] for i in rows]))
                out = backbone.model(backbone.preprocessor.normalise(batch)).float().numpy()
                for i, row in zip(rows, out, strict=True):
                    features[i] = row
    return np.stack(features).astype(np.float32)


# ------------------------------------------------------------------------ helpers

def _portable_state(method: str, state: dict[str, Any]) -> dict[str, Any]:
    """The part of a method's checkpoint state that prediction and added classes need."""
    if method in GENERATIVE_REFIT:
        from unseen.methods.generative.inference import inference_state
        from unseen.methods.registry import get_method

        return inference_state(get_method(method), state)
    if method == "duet":
        from unseen.methods.duet.added_classes import inference_state

        return inference_state(state)
    return dict(state)


def _config_values(config_class, values: dict[str, Any]) -> dict[str, Any]:
    """JSON values -> the config's own types (lists back to tuples); unknown keys dropped."""
    out = {}
    for f in fields(config_class):
        if f.name not in values:
            continue
        value = values[f.name]
        default = f.default
        if isinstance(default, tuple) and isinstance(value, list):
            value = tuple(value)
        out[f.name] = value
    return out


def _dataset_record(spec: dict[str, Any], benchmark: Benchmark, partition: int) -> dict[str, Any]:
    source = benchmark.source or {}
    manifest = source.get("manifest") if isinstance(source.get("manifest"), dict) else {}
    return {"name": benchmark.name, "spec": spec.get("dataset"), "partition": partition,
            "side_information": benchmark.side_information,
            "manifest_sha256": source.get("manifest_sha256"),
            "manifest_created": manifest.get("created"),
            "semantic_dim": int(benchmark.semantics.shape[1]),
            "feature_dim": int(benchmark.features.shape[1])}


def _load_run_checkpoint(directory, path: Path) -> dict[str, Any]:
    """`RunDirectory.load_checkpoint`, with any failure reported as one line naming the file."""
    try:
        checkpoint = directory.load_checkpoint(path)
    except UnseenInputError:
        raise
    except Exception as error:  # truncated, tampered, or holding objects weights_only refuses
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise UnseenInputError(f"{path}: expected a complete checkpoint of plain tensors and "
                               f"values, found {type(error).__name__}"
                               + (f" ({first[:160]})" if first else "")) from None
    required = ("method", "config", "method_state", "gamma", "class_names", "preprocessing")
    missing = [k for k in required if not isinstance(checkpoint, dict) or k not in checkpoint]
    if missing:
        raise input_error(str(path), missing[0], "a final checkpoint of `unseen train`",
                          "the field missing")
    return checkpoint


def _read_config(root: Path) -> dict[str, Any]:
    path = root / CONFIG_FILE
    if not path.is_file():
        raise input_error(str(root), None, f"a model directory holding {CONFIG_FILE} and "
                          f"{WEIGHTS_FILE}", f"no {CONFIG_FILE}")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise input_error(str(path), None, "JSON", f"a parse error ({error})") from None
    if not isinstance(config, dict):
        raise input_error(str(path), None, "a JSON object", type(config).__name__)
    if config.get("format") != FORMAT:
        raise input_error(str(path), "format", repr(FORMAT), repr(config.get("format")))
    missing = [k for k in REQUIRED_KEYS if k not in config]
    if missing:
        raise input_error(str(path), missing[0], "a value", "the field missing")
    kinds, names = config["class_kinds"], config["class_names"]
    if not isinstance(names, list) or not isinstance(kinds, list) or len(kinds) != len(names) \
            or any(k not in CLASS_KINDS for k in kinds):
        raise input_error(str(path), "class_kinds", f"one of {CLASS_KINDS} per class name",
                          f"{str(kinds)[:80]}")
    if not isinstance(config["gamma"], (int, float)):
        raise input_error(str(path), "gamma", "a number", repr(config["gamma"]))
    for key in ("hyperparameters", "tensors", "semantics_recipe", "dataset"):
        if not isinstance(config[key], dict):
            raise input_error(str(path), key, "a JSON object", type(config[key]).__name__)
    if "class_semantics" not in config["tensors"]:
        raise input_error(str(path), "tensors.class_semantics", "a tensor name",
                          "the field missing")
    return config


def _read_weights(path: Path, expected_sha256: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    if not path.is_file():
        raise input_error(str(path), None, "the model's safetensors weights", "no such file")
    found = _sha256(path)
    if found != expected_sha256:
        raise input_error(str(path), "sha256", f"{expected_sha256} (recorded in {CONFIG_FILE})",
                          f"{found}: the file is truncated or was altered")
    try:
        return load_file(str(path))
    except Exception as error:  # safetensors' own error types: a header it cannot read
        raise input_error(str(path), None, "a safetensors file", f"{type(error).__name__}: "
                          f"{str(error).splitlines()[0] if str(error) else ''}") from None


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _existing_files(paths) -> list[Path]:
    paths = [Path(p) for p in paths]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise UnseenInputError(f"image {missing[0]}: expected an image file, found no such file")
    if not paths:
        raise input_error("images", None, "at least one image file", "none")
    return paths


def _replace_dir(staging: Path, root: Path) -> None:
    """Move the finished `staging` folder to `root`, replacing an earlier model directory."""
    if root.exists():
        trash = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}.old."))
        os.replace(root, trash / "old")
        os.replace(staging, root)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(staging, root)


def export_run(run_dir: str | Path, model_dir: str | Path, seed: int | None = None,
               load_benchmark=None) -> Path:
    """`unseen export RUN_DIR MODEL_DIR`: one seed's model as a model directory."""
    return GZSLModel.from_run(run_dir, seed, load_benchmark).save_pretrained(model_dir)
