"""DUET mining tables: distances, tf-idf, rare-first masking, positive and negative mining."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2
from test_duet_attributes import awa2_vocabulary, sun_vocabulary

from unseen.methods.duet.mining import MiningTables, minmax_probabilities


def awa2_tables(replicate: bool = False) -> tuple[MiningTables, object]:
    bench, vocab = awa2_vocabulary()
    seen = bench.seen_classes
    tables = MiningTables(vocab.binary[seen], bench.semantics[seen], vocab.group_index,
                          vocab.group_order, replicate)
    return tables, vocab


def test_distance_is_squared_manhattan_with_unit_diagonal():
    tables, _ = awa2_tables()
    deal = tables.deal
    assert deal.min() == 0.0 and deal.max() == 1.0  # one global min-max
    brute = np.abs(deal[:, None, :] - deal[None, :, :]).sum(-1) ** 2
    off = ~np.eye(tables.num_seen, dtype=bool)
    assert np.allclose(tables.distance[off], brute[off])
    assert np.array_equal(np.diag(tables.distance), np.ones(tables.num_seen))
    assert np.allclose(tables.distance, tables.distance.T)


def test_frequency_counts_seen_classes_and_boosts_awa2_aspects():
    tables, vocab = awa2_tables()
    times = tables.binary.sum(0).astype(float)
    boosted = np.isin(np.array(vocab.groups), ["habit", "diet", "behaviour", "role"])
    assert boosted.sum() == 7 + 5 + 5 + 7
    expected = np.where(times + 3 * boosted > 0, 1 / np.maximum(times + 3 * boosted, 1), 0)
    assert np.allclose(tables.frequency, expected)
    assert np.all(tables.frequency[times + 3 * boosted == 0] == 0)


def test_rare_first_draws_follow_minmax_probabilities():
    tables, _ = awa2_tables()
    tables.has_negatives[:] = True  # no retries: the draw distribution is the newmask one
    y = 3
    active = np.flatnonzero(tables.binary[y])
    expected = minmax_probabilities(tables.frequency[active])
    assert expected.min() == 0.0  # the most frequent attribute is never masked
    rng = np.random.default_rng(123)
    n = 20000
    draws = np.array([tables.choose_masked_attribute(y, rng)[0] for _ in range(n)])
    counts = np.array([(draws == a).sum() for a in active])
    assert counts[expected == 0].sum() == 0
    live = expected > 0
    statistic = (((counts[live] - n * expected[live]) ** 2) / (n * expected[live])).sum()
    assert chi2.sf(statistic, live.sum() - 1) > 1e-3


def test_newmask_edge_cases_fall_back_to_uniform():
    assert np.allclose(minmax_probabilities(np.full(4, 0.25)), 0.25)
    assert np.allclose(minmax_probabilities(np.array([0.3])), 1.0)
    binary = np.zeros((3, 4), dtype=bool)
    binary[0, 2] = True  # one active attribute
    binary[1, [0, 1]] = True
    tables = MiningTables(binary, np.random.default_rng(0).random((3, 4)),
                          np.array([0, 0, 1, 1]), ["a", "b"])
    rng = np.random.default_rng(0)
    assert tables.choose_masked_attribute(0, rng)[0] == 2
    assert tables.choose_masked_attribute(2, rng) == (-1, False)  # nothing to mask
    both = {tables.choose_masked_attribute(1, rng)[0] for _ in range(50)}  # equal frequencies
    assert both == {0, 1}


def test_retry_gives_up_after_three_failures():
    tables, _ = awa2_tables()
    tables.has_negatives[:] = False

    class CountingRng:
        def __init__(self):
            self.calls, self.inner = 0, np.random.default_rng(0)

        def random(self):
            self.calls += 1
            return self.inner.random()

    rng = CountingRng()
    attribute, valid = tables.choose_masked_attribute(0, rng)
    assert not valid and tables.binary[0, attribute] and rng.calls == 3


def test_negative_candidates_match_the_definition_and_order():
    tables, vocab = sun_vocabulary_tables()
    rng = np.random.default_rng(5)
    for y in rng.choice(tables.num_seen, 12, replace=False):
        for g in range(len(vocab.group_order)):
            cannot, need = tables.aspect_sets(y, tables.group_members[g][0])
            rows = tables.binary
            valid = ~rows[:, cannot].any(1) & rows[:, need].any(1)
            assert tables.has_negatives[y, g] == valid.any()
            candidates, p = tables.negative_candidates(y, g)
            if not valid.any():
                assert candidates.size == 0
                continue
            assert candidates.size == valid.sum() // 2 + 1
            assert valid[candidates].all() and y not in candidates
            d = tables.distance[y, candidates]
            assert np.all(np.diff(d) >= 0)  # closest first
            assert d[-1] <= np.sort(tables.distance[y, valid])[candidates.size - 1] + 1e-12
            assert np.allclose(p, (1 / d) / (1 / d).sum())


def sun_vocabulary_tables():
    bench, vocab = sun_vocabulary()
    seen = bench.seen_classes
    return MiningTables(vocab.binary[seen], bench.semantics[seen], vocab.group_index,
                        vocab.group_order), vocab


def test_positive_candidates_are_far_first_and_share_the_attribute():
    tables, _ = awa2_tables()
    rng = np.random.default_rng(1)
    for y in range(tables.num_seen):
        a = int(rng.choice(np.flatnonzero(tables.binary[y])))
        candidates, p = tables.positive_candidates(y, a)
        having = np.flatnonzero(tables.binary[:, a])
        assert candidates.size == having.size // 2 + 1
        assert tables.binary[candidates, a].all()
        d = tables.distance[y, candidates]
        assert np.all(np.diff(d) <= 0)
        assert np.isclose(d[-1], np.sort(tables.distance[y, having])[::-1][candidates.size - 1])
        assert np.allclose(p, d / d.sum())
        for _ in range(5):
            assert tables.draw_positive(y, a, rng) in set(candidates.tolist())


@pytest.mark.parametrize("replicate", [False, True])
def test_negatives_avoid_cannotmask_and_carry_a_needmask_value(replicate):
    tables, _ = awa2_tables(replicate)
    rng = np.random.default_rng(7)
    drawn = 0
    for i in range(300):
        y = i % tables.num_seen
        a, valid = tables.choose_masked_attribute(y, rng)
        if not valid:
            continue
        cannot, need = tables.aspect_sets(y, a)
        assert a in cannot and need.size
        pairs = tables.draw_negatives(y, a, need, cannot[cannot != a], np.zeros(0, int), rng)
        assert pairs is not None and len(pairs) == 4
        classes = [c for c, _ in pairs]
        assert classes[0] == classes[1] and classes[2] == classes[3]
        for c, b in pairs:
            assert not tables.binary[c, cannot].any()
            assert tables.binary[c, need].any()
            assert b in need and tables.binary[c, b]
        drawn += 1
    assert drawn > 200


def test_single_negative_class_gives_four_values_from_it():
    binary = np.array([[1, 0, 0, 1], [0, 1, 1, 0], [1, 0, 0, 0]], dtype=bool)
    tables = MiningTables(binary, binary.astype(float) + 0.1, np.array([0, 0, 0, 1]), ["g", "h"])
    cannot, need = tables.aspect_sets(0, 0)
    assert cannot.tolist() == [0] and need.tolist() == [1, 2]
    pairs = tables.draw_negatives(0, 0, need, np.zeros(0, int), np.zeros(0, int),
                                  np.random.default_rng(0))
    assert [c for c, _ in pairs] == [1, 1, 1, 1] and {b for _, b in pairs} <= {1, 2}
    assert tables.draw_negatives(0, 0, np.zeros(0, int), cannot, cannot,
                                 np.random.default_rng(0)) is None
