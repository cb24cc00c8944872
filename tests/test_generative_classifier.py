"""The shared final-classifier trainer: CADA-VAE's shuffled full batches against a real
`DataLoader(shuffle=True, drop_last=True)` loop (`final_classifier.py`), random stream included."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from test_cegzsl_method import _one_thread  # noqa: F401  (autouse: one torch thread)
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from unseen.methods.generative.classifier import ShuffledBatches, train_classifier
from unseen.methods.generative.networks import init_linear_


def test_shuffled_batches_draw_what_a_dataloader_draws():
    dataset = TensorDataset(torch.arange(23))
    torch.manual_seed(4)
    expected = [rows for _ in range(3) for (rows,) in DataLoader(dataset, batch_size=5,
                                                                 shuffle=True, drop_last=True)]
    after = torch.rand(1)
    torch.manual_seed(4)
    batches = ShuffledBatches(23)
    got = [batches.next(5) for _ in range(3 * batches.steps_per_epoch(5))]
    assert len(got) == len(expected) == 12
    assert all(torch.equal(g, e) for g, e in zip(got, expected, strict=True))
    assert torch.equal(torch.rand(1), after)  # the global stream moved as the DataLoader's


def _reference_training(x, y, eval_x, num_classes, epochs, batch_size, lr):
    """A Linear + LogSoftmax, xavier(0.5) init, NLL, Adam(0.5, 0.999), over a shuffling
    DataLoader that drops the last partial batch."""
    model = nn.Linear(x.shape[1], num_classes)
    init_linear_(model, "xavier_half")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.5, 0.999))
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True, drop_last=True)
    outputs = []
    for _ in range(epochs):
        for batch_x, batch_y in loader:
            optimizer.zero_grad()
            F.nll_loss(F.log_softmax(model(batch_x), 1), batch_y).backward()
            optimizer.step()
        outputs.append(F.log_softmax(model(eval_x), 1).detach())
    return outputs


def test_shuffled_training_matches_the_dataloader_loop():
    torch.manual_seed(0)
    x, y, eval_x = torch.randn(45, 6), torch.randint(0, 3, (45,)), torch.randn(7, 6)
    torch.manual_seed(1)
    expected = _reference_training(x, y, eval_x, 3, 4, 8, 1e-2)
    torch.manual_seed(1)
    got = [epoch.log_probs for epoch in train_classifier(
        x, y, eval_x, 3, 4, 8, 1e-2, init="xavier_half", batching="shuffle_drop_last")]
    assert not torch.allclose(expected[0], expected[-1], atol=1e-3)  # it trained
    for g, e in zip(got, expected, strict=True):
        assert torch.allclose(g, e, rtol=0, atol=1e-6)


def test_default_init_draws_made_by_the_caller_are_skipped():
    """`draw_default_init=False`: the caller made the Linear's default-init draws earlier (FREE,
    whose reference makes them before its transform draws); the run then draws only the
    re-init and the batches, and trains the same classifier."""
    torch.manual_seed(0)
    x, y = torch.rand(50, 9), torch.arange(50) % 4

    def run(draw_default_init: bool) -> tuple[list[torch.Tensor], torch.Tensor]:
        torch.manual_seed(3)
        if not draw_default_init:
            nn.Linear(9, 4)  # the caller's draws
        weights = [epoch.weight for epoch in train_classifier(
            x, y, x[:5], 4, 3, 16, 1e-3, draw_default_init=draw_default_init)]
        return weights, torch.get_rng_state()

    (ours, state), (default, default_state) = run(False), run(True)
    assert torch.equal(state, default_state)
    assert all(torch.equal(a, b) for a, b in zip(ours, default, strict=True))
    torch.manual_seed(3)
    list(train_classifier(x, y, x[:5], 4, 3, 16, 1e-3, draw_default_init=False))
    assert not torch.equal(torch.get_rng_state(), default_state)  # fewer draws alone
