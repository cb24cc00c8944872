"""DUET texts: token-span masking, dropout, CUB pruning, ACL tuples, padding."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_duet_attributes import awa2_vocabulary, bert_tokenizer, cub_vocabulary, sun_vocabulary

from unseen.methods.duet.attributes import matrix2text
from unseen.methods.duet.data import pad_to_tensor
from unseen.methods.duet.text import DuetTextBuilder


def builder(vocab, bench, **kw) -> DuetTextBuilder:
    kw.setdefault("max_length", 150)
    return DuetTextBuilder(vocab, bench.semantics, bench.seen_classes, bert_tokenizer(), **kw)


def with_active(vocab, seen_class: int, attributes: list[int]):
    binary = vocab.binary.copy()
    binary[seen_class, attributes] = 1
    return dataclasses.replace(vocab, binary=binary)


def decode(ids) -> str:
    return bert_tokenizer().decode(ids)


@pytest.fixture(scope="module")
def awa2():
    bench, vocab = awa2_vocabulary()
    return bench, vocab, builder(vocab, bench)


def test_piecewise_encoding_equals_the_tokenizer(awa2, tmp_path):
    cub_bench, cub = cub_vocabulary(tmp_path)
    sun_bench, sun = sun_vocabulary()
    rng = np.random.default_rng(0)
    for bench, vocab in ((awa2[0], awa2[1]), (sun_bench, sun), (cub_bench, cub)):
        b = builder(vocab, bench, max_length=512)
        assert b.piecewise
        for row in rng.random((4, vocab.num_attributes)) < 0.4:
            focus = int(np.flatnonzero(row)[0])
            body, span = b._body_piecewise(row, focus)
            assert (body, span) == b._body_tokenized(row, focus)
            assert b._length(row) == len(body)  # the arithmetic pruning trigger is exact
            assert body == bert_tokenizer()(matrix2text(vocab, row),
                                            add_special_tokens=False)["input_ids"]
            assert decode(body[span[0]:span[1]]) == vocab.words[focus].lower()


def test_template_ids_and_measured_base_lengths(awa2, tmp_path):
    bench, vocab, b = awa2
    assert b.template_ids() == bert_tokenizer()(vocab.template)["input_ids"]
    cub_bench, cub = cub_vocabulary(tmp_path)
    assert builder(cub, cub_bench).base_length == 114  # the reference's hard-coded value


def test_masked_span_decodes_to_the_word_and_only_it_differs(awa2):
    bench, vocab, b = awa2
    rng = np.random.default_rng(3)
    for y in range(b.tables.num_seen):
        m = b.masked_example(y, rng)
        assert len(m.input_ids) == len(m.label_ids) <= 150
        differs = np.flatnonzero(np.array(m.input_ids) != np.array(m.label_ids))
        assert differs.tolist() == m.mask_positions
        assert all(m.input_ids[p] == bert_tokenizer().mask_token_id for p in m.mask_positions)
        assert decode([m.label_ids[p] for p in m.mask_positions]) == vocab.words[m.attribute]
        assert m.label_ids[0] == bert_tokenizer().cls_token_id
        assert m.label_ids[-1] == bert_tokenizer().sep_token_id
        assert np.isclose(m.weight, 3 * b.tables.deal[y, m.attribute])
        assert b.tables.binary[y, m.attribute]


@pytest.mark.parametrize(("which", "word", "other"), [
    ("awa2", "meat", "meatteeth"), ("awa2", "active", "inactive"),
    ("awa2", "cave", "scavenger"), ("sun", "enclosed", "semi enclosed"),
    ("sun", "bathing", "sunbathing"), ("sun", "natural", "natural light")])
def test_substring_collisions_mask_the_right_word(which, word, other):
    bench, vocab = awa2_vocabulary() if which == "awa2" else sun_vocabulary()
    a, b_ = vocab.words.index(word), vocab.words.index(other)
    vocab = with_active(vocab, int(bench.seen_classes[0]), [a, b_])
    text = builder(vocab, bench, attribute_dropout=0.0)
    m = text.masked_example(0, np.random.default_rng(0), attribute=a)
    assert decode([m.label_ids[p] for p in m.mask_positions]) == word
    masked = decode(m.input_ids)
    assert other in masked and masked.count("[MASK]") == len(m.mask_positions)
    assert decode(m.label_ids).count(word) == decode(m.input_ids).count(word) + 1


def test_dropout_keeps_the_masked_attribute(awa2):
    bench, vocab, _ = awa2
    rng = np.random.default_rng(0)
    y = 2
    full = vocab.binary[bench.seen_classes[y]].astype(bool)
    keep_all = builder(vocab, bench, attribute_dropout=0.0).masked_example(y, rng)
    assert decode(keep_all.label_ids[1:-1]) == decode(
        bert_tokenizer()(matrix2text(vocab, full))["input_ids"][1:-1])
    drop_all = builder(vocab, bench, attribute_dropout=1.0).masked_example(y, rng)
    only = np.zeros_like(full)
    only[drop_all.attribute] = True
    assert drop_all.label_ids == bert_tokenizer()(matrix2text(vocab, only))["input_ids"]
    # about half of the other active attributes survive at 0.5
    half = builder(vocab, bench)
    kept = [len(half.masked_example(y, rng).label_ids) for _ in range(200)]
    assert len(drop_all.label_ids) < np.mean(kept) < len(keep_all.label_ids)


def test_truncation_is_consistent(awa2):
    bench, vocab, _ = awa2
    short = builder(vocab, bench, max_length=24, attribute_dropout=0.0)
    rng = np.random.default_rng(0)
    for y in range(10):
        m = short.masked_example(y, rng)
        assert len(m.input_ids) == len(m.label_ids) == 24
        assert m.label_ids[-1] == bert_tokenizer().sep_token_id
        assert all(p < 23 for p in m.mask_positions)
        c = short.contrast_example(y, m, rng)
        if c is not None and c.complete:
            assert all(len(s) <= 24 and ps and max(ps) < len(s) - 1
                       for s, ps in zip(c.input_ids, c.positions, strict=True))


def test_contrast_example_positions_classes_and_weight(awa2):
    bench, vocab, b = awa2
    rng = np.random.default_rng(11)
    made = 0
    for i in range(120):
        y = i % b.tables.num_seen
        m = b.masked_example(y, rng)
        c = b.contrast_example(y, m, rng)
        if c is None or not c.complete:
            assert m.needmask.size == 0
            continue
        made += 1
        a = m.attribute
        assert len(c.input_ids) == len(c.positions) == len(c.classes) == 6
        assert c.input_ids[0] == m.input_ids and c.positions[0] == m.mask_positions
        assert c.classes[0] == y and c.classes[2] == c.classes[3] and c.classes[4] == c.classes[5]
        assert b.tables.binary[c.classes[1], a]
        assert decode([c.input_ids[1][p] for p in c.positions[1]]) == vocab.words[a]
        for k in range(2, 6):
            word = decode([c.input_ids[k][p] for p in c.positions[k]])
            b_ = vocab.words.index(word)
            assert b_ in m.needmask and b.tables.binary[c.classes[k], b_]
            assert bert_tokenizer().mask_token_id not in c.input_ids[k]
            assert not b.tables.binary[c.classes[k], m.cannotmask].any()
        assert np.isclose(c.weight, min(b.tables.deal[y, a], b.tables.deal[c.classes[1], a]))
    assert made > 90


def test_class_without_active_attributes_is_not_masked(awa2):
    bench, vocab, _ = awa2
    binary = vocab.binary.copy()
    binary[bench.seen_classes[0]] = 0
    b = builder(dataclasses.replace(vocab, binary=binary), bench)
    m = b.masked_example(0, np.random.default_rng(0))
    assert m.attribute == -1 and m.weight == 0.0 and m.mask_positions == []
    assert m.input_ids == m.label_ids == bert_tokenizer()(matrix2text(vocab, binary[0] > 5))[
        "input_ids"]
    assert b.contrast_example(0, m, np.random.default_rng(0)) is None


def test_same_seed_same_examples(awa2):
    *_, b = awa2
    first = [b.masked_example(4, np.random.default_rng(9)) for _ in range(2)]
    assert first[0].input_ids == first[1].input_ids and first[0].attribute == first[1].attribute


def test_cub_pruning_caps_lengths(tmp_path):
    bench, vocab = cub_vocabulary(tmp_path)
    rng = np.random.default_rng(0)
    longest_word = max(len(w) for w in builder(vocab, bench)._word_ids)
    unpruned = builder(vocab, bench, max_length=512)
    pruned = builder(vocab, bench, max_length=250, prune_length=170)
    raw = [len(unpruned.masked_example(y % 150, rng).label_ids) - 2 for y in range(150)]
    capped = [len(pruned.masked_example(y % 150, rng).label_ids) - 2 for y in range(150)]
    assert max(raw) > 185  # long texts exist, so pruning is exercised
    assert max(capped) <= 170 + longest_word + 1
    # pruning adds rare-first attributes until the exact length reaches 170 or 30 were drawn
    row = np.ones(vocab.num_attributes, dtype=bool)
    row[~pruned.tables.binary.any(0)] = False
    for _ in range(20):
        kept = pruned._prune(row, int(np.flatnonzero(row)[0]), rng)
        length = len(pruned._body(kept, -1)[0])
        groups = np.bincount(pruned._group_of[kept], minlength=28)
        words = sum(len(pruned._word_ids[a]) for a in np.flatnonzero(kept))
        assert length == 114 + words + np.maximum(groups - 1, 0).sum()
        assert length <= 170 + longest_word + 1
        assert length >= 170 or kept.sum() >= 30


def test_cub_reference_mode_uses_index_prefixed_words_in_acl(tmp_path):
    bench, vocab = cub_vocabulary(tmp_path)
    clean = builder(vocab, bench, max_length=250, prune_length=170)
    reference = builder(vocab, bench, max_length=250, prune_length=170,
                        replicate_reference_bugs=True)
    rng = np.random.default_rng(2)
    checked = 0
    for y in range(60):
        m = reference.masked_example(y, rng)
        c = reference.contrast_example(y, m, rng)
        if c is None or not c.complete:
            continue
        a = m.attribute
        prefixed = bert_tokenizer()(f"{a}{vocab.words[a]}", add_special_tokens=False)["input_ids"]
        assert len(c.positions[0]) == len(prefixed) == len(c.positions[1])
        assert [c.input_ids[1][p] for p in c.positions[1]] == prefixed
        assert decode([m.label_ids[p] for p in m.mask_positions]) == vocab.words[a]
        assert decode(c.input_ids[1]).count(str(a)) >= 1
        m2 = clean.masked_example(y, rng)
        c2 = clean.contrast_example(y, m2, rng)
        if c2 is not None and c2.complete:
            assert c2.input_ids[0] == m2.input_ids
            assert decode([c2.input_ids[1][p] for p in c2.positions[1]]) == vocab.words[
                m2.attribute]
        checked += 1
    assert checked > 40


def test_pad_to_tensor():
    ids, mask = pad_to_tensor([[5, 6, 7], [8], [9, 10]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0], [9, 10, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0], [1, 1, 0]]
    assert ids.dtype == mask.dtype == __import__("torch").int64


def test_builder_survives_pickling_for_dataloader_workers(awa2):
    *_, b = awa2
    copy = __import__("pickle").loads(__import__("pickle").dumps(b))
    first = b.masked_example(5, np.random.default_rng(1))
    again = copy.masked_example(5, np.random.default_rng(1))
    assert first.input_ids == again.input_ids and first.mask_positions == again.mask_positions
