"""Semi-real benchmarks: the real file's semantics and split proportions, generated features."""

from __future__ import annotations

import numpy as np
import pytest

from unseen.data.loading import load_dataset
from unseen.data.matfile import load_mat
from unseen.data.semi_real import DEFAULT_IMAGES_SCALE, parse_semi_real_name
from unseen.errors import UnseenInputError


def test_name_grammar_defaults_and_scale():
    assert parse_semi_real_name("a/b.mat") == ("a/b.mat", DEFAULT_IMAGES_SCALE)
    assert parse_semi_real_name("a/b.mat?scale=0.5") == ("a/b.mat", 0.5)


@pytest.mark.parametrize("bad", ["a.mat?scale=zero", "a.mat?scale=-1", "a.mat?size=2"])
def test_name_grammar_rejects_bad_query(bad):
    with pytest.raises(UnseenInputError, match="semi-real:PATH\\?scale=S"):
        parse_semi_real_name(bad)


def test_awa2_keeps_real_semantics_splits_and_scale(shared_data):
    path = shared_data / "xlsa17" / "AWA2" / "att_splits.mat"
    mat = load_mat(path)
    small = load_dataset(f"semi-real:{path}?scale=0.1")
    full = load_dataset(f"semi-real:{path}")  # the default: the real file's sizes
    assert DEFAULT_IMAGES_SCALE == 1.0

    np.testing.assert_allclose(full.semantics, np.asarray(mat["att"]).T, rtol=1e-6)
    unseen = np.unique(full.labels[full.test_unseen_idx])
    assert {full.class_names[c] for c in unseen} == {
        "bat", "blue+whale", "bobcat", "dolphin", "giraffe", "horse", "rat", "seal", "sheep",
        "walrus"}
    real_total = sum(np.asarray(mat[f"{k}_loc"]).size
                     for k in ("trainval", "test_seen", "test_unseen"))
    # Per-class counts are rounded down, so within one image per class of the scaled total.
    assert abs(full.features.shape[0] - real_total) <= full.semantics.shape[0]
    assert abs(small.features.shape[0] - 0.1 * real_total) <= small.semantics.shape[0]
    real_unseen_share = np.asarray(mat["test_unseen_loc"]).size / real_total
    assert full.test_unseen_idx.size / full.features.shape[0] == pytest.approx(
        real_unseen_share, abs=0.01)
    assert not np.isin(full.trainval_idx, full.test_seen_idx).any()
    assert np.isin(full.labels[full.trainval_idx], unseen).sum() == 0
