"""DUET's per-sample texts: the masked anchor (spec §3.2) and the ACL 6-tuple (spec §3.4-3.5).

A text is the FST of a class's binary row after attribute dropout (the focus attribute kept),
pruned for CUB when longer than `prune_length` word pieces. Masking is by token span: the builder
knows where each attribute word sits because it wrote the text, so the focus word's token
positions are recorded while encoding, never found by string search.

Encoding: with a BERT WordPiece tokenizer the FST tokenises piecewise (every boundary is a space or
one of `, : | .`), so token ids are concatenated from per-group and per-word ids cached at
construction. The builder checks this against the tokenizer on several rows and otherwise falls
back to tokenising each text with `return_offsets_mapping` and mapping the recorded character span
to tokens. Truncation keeps the first `max_length - 1` tokens plus [SEP], identically for masked
inputs and labels.

`replicate_reference_bugs`: True follows zjukg/DUET, False is the clean version.

| behaviour              | True (reference)                          | False (clean)               |
|------------------------|-------------------------------------------|-----------------------------|
| CUB ACL anchor and     | index-prefixed word (`21black`): the      | the plain word              |
| positive word          | anchor gets as many [MASK] as `21black`   |                             |
|                        | has pieces; the positive carries them     |                             |
| CUB pruning trigger    | pieces of the text with index prefixes    | pieces of the text          |
| CUB pruning lengths    | `attributeid2length` key bug: mapped      | the words' own lengths plus |
|                        | words measured by their unmapped names;   | one per comma               |
|                        | commas not counted                        |                             |
| 2nd negative class's   | redrawn once when the position equals the | no redraw                   |
| values                 | 1st class's (a meaningless retry)         |                             |

In both modes the pruning base length is measured with the tokenizer (114 word pieces for the CUB
template under bert-base-uncased, the reference's hard-coded value), and string-replacement
collisions are not replicated: the reference masks every occurrence of the word (e.g. SUN
"natural" inside "natural light"); here only a*'s own span is masked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import chain

import numpy as np

from unseen.methods.duet.attributes import AttributeVocabulary, fst_with_spans
from unseen.methods.duet.mining import ContrastExample, MiningTables, minmax_probabilities

_PRUNE_DRAWS = 30  # the reference tries at most 30 extra attributes when pruning


def _no_attributes() -> np.ndarray:
    return np.zeros(0, dtype=np.int64)


@dataclass
class MaskedExample:
    """The masked anchor of one training image and the state its ACL tuple is mined from."""

    input_ids: list[int]  # masked anchor text, [CLS] ... [SEP], the attribute span = [MASK]s
    label_ids: list[int]  # the unmasked anchor text, same length as input_ids
    mask_positions: list[int]  # token positions of the masked span
    attribute: int  # a* (-1 when the class has no active attribute: nothing masked, weight 0)
    weight: float  # 3 * w(y, a*) (the mask-loss sample weight, spec §3.3)
    # spec §3.2 sets (attribute indices): y's values of a*'s group, the other values of the
    # group (both empty when the 3 tries found no negatives), and y's values dropped / kept
    cannotmask: np.ndarray = field(default_factory=_no_attributes)
    needmask: np.ndarray = field(default_factory=_no_attributes)
    miss: np.ndarray = field(default_factory=_no_attributes)
    notmiss: np.ndarray = field(default_factory=_no_attributes)


class DuetTextBuilder:
    """Builds DUET's masked anchors and ACL tuples for the seen classes of one task.

    `semantics` [C, A] and `vocab.binary` [C, A] are indexed by global class id; `seen_classes`
    are the task's sorted global seen ids and every `seen_index` is a position in them.
    `prune_length` (CUB: 170) counts word pieces without [CLS]/[SEP], like the reference's
    `len(tokenizer.tokenize(text))`. The builder is picklable (numpy tables plus the tokenizer),
    so DataLoader workers can own a copy; draws use only the `rng` passed in.
    """

    def __init__(self, vocab: AttributeVocabulary, semantics: np.ndarray,
                 seen_classes: np.ndarray, tokenizer, max_length: int,
                 attribute_dropout: float = 0.5, prune_length: int | None = None,
                 replicate_reference_bugs: bool = False) -> None:
        seen = np.asarray(seen_classes, dtype=np.int64)
        self.vocab = vocab
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self.attribute_dropout = float(attribute_dropout)
        self.prune_length = prune_length
        self.replicate = bool(replicate_reference_bugs)
        self.tables = MiningTables(vocab.binary[seen], np.asarray(semantics)[seen],
                                   vocab.group_index, vocab.group_order, self.replicate)
        self.cls_id, self.sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
        self.mask_id, self.pad_id = tokenizer.mask_token_id, tokenizer.pad_token_id

        count = vocab.num_attributes
        self._group_of = vocab.group_index
        self._text_order = np.lexsort((np.arange(count), self._group_of))
        self._word_ids = [self._ids(w) for w in vocab.words]
        self._header_ids = [self._ids(f"{g} :") for g in vocab.group_order]
        self._bar_ids, self._comma_ids, self._dot_ids = (self._ids(s) for s in ("|", ",", "."))
        self._word_lengths = np.array([len(w) for w in self._word_ids], dtype=np.int64)
        self._comma_word_ids = [self._comma_ids + w for w in self._word_ids]
        self._group_prefix_ids = [(self._bar_ids if g else []) + h
                                  for g, h in enumerate(self._header_ids)]
        self._group_cuts = np.arange(len(vocab.group_order) + 1)
        # the reference's CUB index prefix ("21black") and its pruning lengths (spec §1.6)
        cub_quirks = self.replicate and vocab.style == "cub"
        self._prefixed_ids = [self._ids(f"{a}{w}") for a, w in enumerate(vocab.words)] \
            if cub_quirks else None
        self._prefix_extra = np.array(
            [len(p) - len(w) for p, w in zip(self._prefixed_ids, self._word_ids, strict=True)]
        ) if cub_quirks else None
        unmapped = vocab.unmapped_words or vocab.words
        self._prune_lengths = np.array(
            [len(self._ids(w)) for w in unmapped] if self.replicate
            else [len(w) for w in self._word_ids], dtype=np.int64)
        self.piecewise = False
        self.piecewise = self._piecewise_matches_tokenizer()
        self.base_length = len(self._body(np.zeros(count, dtype=bool), -1)[0])
        self._template_ids: list[int] | None = None

    # -- encoding -------------------------------------------------------------------------------

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _body_piecewise(self, row: np.ndarray, focus: int) -> tuple[list[int], tuple[int, int]]:
        order = self._text_order[row[self._text_order]]
        cuts = np.searchsorted(self._group_of[order], self._group_cuts).tolist()
        order = order.tolist()
        focus_group = int(self._group_of[focus]) if focus >= 0 else -1
        body: list[int] = []
        span = (0, 0)
        for g, prefix in enumerate(self._group_prefix_ids):
            body += prefix
            values = order[cuts[g]:cuts[g + 1]]
            if not values:
                continue
            if g == focus_group:
                for k, a in enumerate(values):
                    if k:
                        body += self._comma_ids
                    if a == focus:
                        span = (len(body), len(body) + len(self._word_ids[a]))
                    body += self._word_ids[a]
            else:
                body += self._word_ids[values[0]]
                body.extend(chain.from_iterable(map(self._comma_word_ids.__getitem__,
                                                    values[1:])))
        body += self._dot_ids
        return body, span

    def _body_tokenized(self, row: np.ndarray, focus: int) -> tuple[list[int], tuple[int, int]]:
        text, spans = fst_with_spans(self.vocab, row)
        encoded = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True,
                                 verbose=False)
        if focus < 0:
            return list(encoded["input_ids"]), (0, 0)
        offsets = np.asarray(encoded["offset_mapping"], dtype=np.int64).reshape(-1, 2)
        start, end = spans[focus]
        inside = np.flatnonzero((offsets[:, 0] >= start) & (offsets[:, 1] <= end)
                                & (offsets[:, 1] > offsets[:, 0]))
        span = (int(inside[0]), int(inside[-1]) + 1) if inside.size else (0, 0)
        return list(encoded["input_ids"]), span

    def _body(self, row: np.ndarray, focus: int) -> tuple[list[int], tuple[int, int]]:
        """Word-piece ids of the FST text of `row` (no [CLS]/[SEP]) and the focus word's span."""
        if self.piecewise:
            return self._body_piecewise(row, focus)
        return self._body_tokenized(row, focus)

    def _piecewise_matches_tokenizer(self) -> bool:
        count = self.vocab.num_attributes
        rng = np.random.default_rng(0)
        rows = [np.zeros(count, dtype=bool), np.ones(count, dtype=bool),
                *(rng.random((3, count)) < 0.5)]
        for row in rows:
            focus = int(np.flatnonzero(row)[-1]) if row.any() else -1
            if self._body_piecewise(row, focus) != self._body_tokenized(row, focus):
                return False
        return True

    def _finish(self, body: list[int], span: tuple[int, int]) -> tuple[list[int], list[int]]:
        """[CLS] body [SEP] truncated to max_length, and the span's surviving positions."""
        kept = body[: self.max_length - 2]
        return [self.cls_id, *kept, self.sep_id], list(range(span[0] + 1,
                                                             min(span[1], len(kept)) + 1))

    def template_ids(self) -> list[int]:
        """Token ids of the fixed template (cached)."""
        if self._template_ids is None:
            self._template_ids = list(self.tokenizer(
                self.vocab.template, truncation=True, max_length=self.max_length)["input_ids"])
        return self._template_ids

    # -- one member text: dropout, encoding, CUB pruning ----------------------------------------

    def _member(self, full_row: np.ndarray, focus: int, rng: np.random.Generator
                ) -> tuple[list[int], tuple[int, int], np.ndarray]:
        row = full_row & ~(rng.random(full_row.size) < self.attribute_dropout)
        row[focus] = True
        if self.prune_length is not None and self._length(row) > self.prune_length:
            row = self._prune(row, focus, rng)
        body, span = self._body(row, focus)
        return body, span, row

    def _length(self, row: np.ndarray) -> int:
        """Word pieces of the FST text of `row`, as the reference's pruning trigger counts them."""
        if self.piecewise:  # header pieces + word pieces + one comma per extra value of a group
            per_group = np.bincount(self._group_of[row], minlength=len(self._header_ids))
            length = self.base_length + int(self._word_lengths[row].sum()) + int(
                np.maximum(per_group - 1, 0).sum())
        else:
            length = len(self._body(row, -1)[0])
        if self._prefix_extra is not None:  # the reference counts "21black", not "black"
            length += int(self._prefix_extra[row].sum())
        return length

    def _prune(self, row: np.ndarray, focus: int, rng: np.random.Generator) -> np.ndarray:
        """Spec §1.6 `prun`: focus first, then rare-first attributes until prune_length."""
        active = np.flatnonzero(row)
        probabilities = minmax_probabilities(self.tables.frequency[active])
        # the reference asks for min(30, n - 3) draws without replacement and crashes when fewer
        # have non-zero probability; we draw only as many as exist
        size = max(0, min(_PRUNE_DRAWS, active.size - 3, int(np.count_nonzero(probabilities))))
        # successive weighted draws without replacement = the `size` smallest Exp(1) / p keys
        with np.errstate(divide="ignore"):
            keys = rng.exponential(size=active.size) / probabilities
        draws = active[np.argsort(keys, kind="stable")[:size]]
        draws = draws[draws != focus]  # the reference skips the focus without counting it
        groups = self._group_of[draws]
        increments = self._prune_lengths[draws]
        if not self.replicate:  # a comma before every value after the first of its group
            first = np.zeros(draws.size, dtype=bool)
            first[np.unique(groups, return_index=True)[1]] = True
            increments = increments + (~first | (groups == self._group_of[focus]))
        total = self.base_length + self._prune_lengths[focus] + np.cumsum(increments)
        reached = np.flatnonzero(total >= self.prune_length)
        pruned = np.zeros_like(row)
        pruned[focus] = True
        pruned[draws[: reached[0] + 1 if reached.size else draws.size]] = True
        return pruned

    # -- the two public draws -------------------------------------------------------------------

    def masked_example(self, seen_index: int, rng: np.random.Generator,
                       attribute: int | None = None) -> MaskedExample:
        """The anchor of a seen class: rare-first a* (or the given one), dropout, [MASK] span."""
        tables, y = self.tables, int(seen_index)
        full = tables.binary[y]
        if attribute is None:
            attribute, valid = tables.choose_masked_attribute(y, rng)
        else:
            if not full[attribute]:
                raise ValueError(f"attribute {attribute} is not active in seen class {y}")
            valid = bool(tables.has_negatives[y, self._group_of[attribute]])
        if attribute < 0:
            ids, _ = self._finish(self._body(full, -1)[0], (0, 0))
            return MaskedExample(ids, list(ids), [], -1, 0.0)
        cannotmask, needmask = tables.aspect_sets(y, attribute) if valid else \
            (_no_attributes(), _no_attributes())
        body, span, row = self._member(full, attribute, rng)
        labels, positions = self._finish(body, span)
        inputs = list(labels)
        for p in positions:
            inputs[p] = self.mask_id
        others = cannotmask[cannotmask != attribute]
        return MaskedExample(
            input_ids=inputs, label_ids=labels, mask_positions=positions, attribute=attribute,
            weight=3.0 * float(tables.deal[y, attribute]), cannotmask=cannotmask,
            needmask=needmask, miss=others[~row[others]], notmiss=others[row[others]])

    def contrast_example(self, seen_index: int, masked: MaskedExample,
                         rng: np.random.Generator) -> ContrastExample | None:
        """The ACL tuple of an anchor; None where the reference skips ACL before mining a
        positive, an incomplete example (`complete=False`, the classes mined so far) where it
        skips afterwards."""
        tables, y, attribute = self.tables, int(seen_index), masked.attribute
        if attribute < 0 or not masked.mask_positions:
            return None
        positive = tables.draw_positive(y, attribute, rng)
        if positive is None:
            return None
        negatives = tables.draw_negatives(y, attribute, masked.needmask, masked.notmiss,
                                          masked.miss, rng)
        if negatives is None:
            return ContrastExample([], [], [y, positive], 0.0, complete=False)
        classes = [y, positive, *(c for c, _ in negatives)]
        anchor_ids, anchor_positions = masked.input_ids, masked.mask_positions
        if self._prefixed_ids is not None:  # reference: anchor masks as many pieces as "21black"
            start, end = anchor_positions[0] - 1, anchor_positions[-1]
            body = masked.label_ids[1:-1]
            pieces = len(self._prefixed_ids[attribute])
            anchor_ids, anchor_positions = self._finish(
                body[:start] + [self.mask_id] * pieces + body[end:], (start, start + pieces))
        sequences, positions = [anchor_ids], [anchor_positions]
        for k, (cls, focus) in enumerate([(positive, attribute), *negatives]):
            body, span, _ = self._member(tables.binary[cls], focus, rng)
            if k == 0 and self._prefixed_ids is not None:
                prefixed = self._prefixed_ids[focus]
                body = body[: span[0]] + prefixed + body[span[1]:]
                span = (span[0], span[0] + len(prefixed))
            ids, kept = self._finish(body, span)
            if not kept:  # the attribute word was truncated away: nothing to pool
                return ContrastExample([], [], classes, 0.0, complete=False)
            sequences.append(ids)
            positions.append(kept)
        weight = min(float(tables.deal[y, attribute]), float(tables.deal[positive, attribute]))
        return ContrastExample(input_ids=sequences, positions=positions, classes=classes,
                               weight=weight)
