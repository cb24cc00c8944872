"""Frozen image backbones by name: the packaged EfficientNet-Lite0 or any transformers vision
model that loads with `AutoModel` (a local directory or a hub id already in the hub cache).

A `Backbone` pairs the model with its own preprocessing (`ImagePreprocessor`: a uint8 part that
runs in DataLoader workers and a normalising part that runs on the device) and records what it
is (`identity`): name, kind, revision, weights hash and preprocessing, enough to re-extract the
same features and to key a feature cache.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from unseen.backbones.image_processing import ImagePreprocessor
from unseen.errors import input_error

EFFICIENTNET_LITE0 = "efficientnet-lite0"
DEFAULT_BACKBONE = EFFICIENTNET_LITE0
DEFAULT_EFFICIENTNET_SIZE = 224
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


@dataclass
class Backbone:
    """A frozen image encoder: `model(pixels float [n, 3, H, W]) -> features [n, D]`."""

    name: str
    kind: str  # "efficientnet-lite0" | "transformers"
    model: nn.Module
    preprocessor: ImagePreprocessor
    feature_dim: int
    revision: str | None
    sha256: str | None
    pooling: str = "pooled output"

    def identity(self) -> dict:
        """JSON-able record of everything that determines the features."""
        size = self.preprocessor.output_size
        return {"name": self.name, "kind": self.kind, "revision": self.revision,
                "sha256": self.sha256, "image_size": size[0] if size else None,
                "feature_dim": self.feature_dim, "pooling": self.pooling,
                "preprocessing": self.preprocessor.config()}

    def slug(self) -> str:
        """File-name form of the backbone's name, e.g. `efficientnet-lite0` or `dinov2-small`."""
        base = Path(self.name.rstrip("/")).name or "backbone"
        return "".join(c if c.isalnum() or c in "-_." else "-" for c in base).strip(".-") \
            or "backbone"

    def cache_key(self, precision: str) -> str:
        """Hash of `identity()` and the compute precision: features differ when either does."""
        record = json.dumps({**self.identity(), "precision": precision}, sort_keys=True)
        return hashlib.sha256(record.encode()).hexdigest()[:24]


class _EfficientNetPooled(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        from unseen.backbones.efficientnet_lite import EfficientNetLite0Features

        self.encoder = EfficientNetLite0Features()

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.encoder(pixels)[0]


class _TransformersPooled(nn.Module):
    """The pooled output of an `AutoModel` (the vision tower of a CLIP-like model).

    When the checkpoint has no trained pooler (a ViT saved as a classifier: `AutoModel` adds a
    randomly initialised dense pooler), the final CLS token is used instead, so features never
    depend on a random layer; convolutional feature maps are averaged over space.
    """

    def __init__(self, model: nn.Module, use_pooler: bool) -> None:
        super().__init__()
        self.model = model
        self.use_pooler = use_pooler

    @property
    def pooling(self) -> str:
        return "pooler_output" if self.use_pooler else "cls-token or spatial mean"

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        output = self.model(pixel_values=pixels)
        pooled = getattr(output, "pooler_output", None) if self.use_pooler else None
        if pooled is None:
            hidden = output.last_hidden_state
            pooled = hidden.mean(dim=(2, 3)) if hidden.ndim == 4 else hidden[:, 0]
        return pooled.flatten(1)  # ResNet's pooler output is [n, C, 1, 1]


def _sha256_of_weights(directory: Path) -> str | None:
    files = sorted(p for p in directory.iterdir()
                   if p.name in _WEIGHT_FILES or p.name.endswith((".safetensors", ".bin")))
    if not files:
        return None
    digest = hashlib.sha256()
    for path in files:
        with open(path, "rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()


def _resolve_model_dir(name: str) -> tuple[Path, str | None]:
    """(local directory, hub revision or None) for a directory path or a cached hub id."""
    path = Path(name).expanduser()
    if path.is_dir():
        return path, None
    try:
        from transformers.utils import cached_file

        config = cached_file(name, "config.json", local_files_only=True)
    except (OSError, ValueError) as error:
        raise input_error(f"option '--backbone' ({name})", None,
                          f"'{EFFICIENTNET_LITE0}', a local transformers model directory or a hub"
                          " id already in the local hub cache", f"neither ({type(error).__name__})"
                          ) from None
    if config is None:
        raise input_error(f"option '--backbone' ({name})", None, "a hub id in the local cache",
                          "no cached config.json")
    snapshot = Path(config).parent
    return snapshot, snapshot.name


def load_backbone(name: str = DEFAULT_BACKBONE, device: str | torch.device = "cpu",
                  image_size: int | None = None) -> Backbone:
    """The backbone `name` in eval mode on `device`. `image_size` applies to EfficientNet-Lite0
    only (default 224); transformers models use their own image processor's size."""
    if name == EFFICIENTNET_LITE0:
        from unseen.backbones.efficientnet_lite import FEATURE_DIM, weights_path
        from unseen.data.xlsa17 import sha256_of

        preprocessor = ImagePreprocessor.for_efficientnet_lite0(
            image_size or DEFAULT_EFFICIENTNET_SIZE)
        weights = weights_path()
        return Backbone(name, EFFICIENTNET_LITE0, _EfficientNetPooled().to(device).eval(),
                        preprocessor, FEATURE_DIM, None, sha256_of(weights),
                        pooling="global average pool")
    if image_size is not None:
        raise input_error("option '--image-size'", None, f"only with --backbone "
                          f"{EFFICIENTNET_LITE0} (a transformers model uses its own processor)",
                          f"{image_size} with {name!r}")
    directory, revision = _resolve_model_dir(name)
    preprocessor = ImagePreprocessor.from_model_dir(directory)
    model, use_pooler = _load_auto_model(directory, name)
    wrapped = _TransformersPooled(model, use_pooler).to(device).eval()
    for parameter in wrapped.parameters():
        parameter.requires_grad_(False)
    size = preprocessor.output_size or (224, 224)
    with torch.inference_mode():
        probe = wrapped(torch.zeros(1, 3, *size, device=device))
    backbone = Backbone(name, "transformers", wrapped, preprocessor, int(probe.shape[1]),
                        revision, _sha256_of_weights(directory))
    backbone.pooling = wrapped.pooling
    return backbone


def _load_auto_model(directory: Path, name: str) -> tuple[nn.Module, bool]:
    """(the vision model, whether its pooler was trained); refuses partly random weights."""
    from transformers import AutoConfig, AutoModel

    source = f"option '--backbone' ({name})"
    try:
        config = AutoConfig.from_pretrained(directory, local_files_only=True)
        model, info = AutoModel.from_pretrained(directory, local_files_only=True,
                                                output_loading_info=True)
    except (OSError, ValueError, KeyError, RuntimeError, TypeError) as error:
        raise input_error(source, None, "a transformers vision model that loads with AutoModel",
                          f"{type(error).__name__}: {str(error).splitlines()[0][:200]}") from None
    missing = [key for key in info.get("missing_keys", []) if "pooler" not in key]
    if getattr(config, "vision_config", None) is not None:  # CLIP/SigLIP: the vision tower
        tower = getattr(model, "vision_model", None)
        missing = [key for key in missing if "vision" in key]
        if tower is None:
            raise input_error(source, None, "a vision model (or a model with a vision_model)",
                              type(model).__name__)
        model = tower
    if missing:
        raise input_error(source, None, "weights for every layer of the vision model",
                          f"{len(missing)} missing, first {missing[0]!r}")
    pooler_missing = any("pooler" in key for key in info.get("missing_keys", []))
    return model, not pooler_missing
