"""The shared VAE pieces against the references' slow forms (TF-VAEGAN `train_images.py`,
FREE `train_free.py`, CADA-VAE `vaemodel.py`): values, gradients and random streams."""

from __future__ import annotations

import pytest
import torch
from test_cegzsl_method import _one_thread  # noqa: F401  (autouse: one torch thread)

from unseen.methods.generative.vae import reparameterize, vae_loss, weighted_l1


def _reference_weighted_l1(pred, gt):
    """WeightedL1 (`train_images.py:74-78`) as written, in-place division included."""
    wt = (pred - gt).pow(2)
    wt /= wt.sum(1).sqrt().unsqueeze(1).expand(wt.size(0), wt.size(1))
    loss = wt * (pred - gt).abs()
    return loss.sum() / loss.size(0)


def _reference_vae_loss(recon_x, x, mean, log_var):
    """loss_fn (`train_images.py:63-67`), with `reduction="sum"` for `size_average=False`."""
    bce = torch.nn.functional.binary_cross_entropy(recon_x + 1e-12, x.detach(), reduction="sum")
    bce = bce.sum() / x.size(0)
    kld = -0.5 * torch.sum(1 + log_var - mean.pow(2) - log_var.exp()) / x.size(0)
    return bce + kld


def _values_and_gradients(function, *inputs):
    inputs = [tensor.detach().clone().requires_grad_(True) for tensor in inputs]
    value = function(*inputs)
    value.backward()
    return value.detach(), [tensor.grad for tensor in inputs]


def test_weighted_l1_matches_the_reference_in_value_and_gradient():
    torch.manual_seed(0)
    prediction, target = torch.randn(6, 9, dtype=torch.float64), torch.randn(6, 9,
                                                                           dtype=torch.float64)
    got, got_grads = _values_and_gradients(weighted_l1, prediction, target)
    expected, expected_grads = _values_and_gradients(_reference_weighted_l1, prediction, target)
    assert torch.allclose(got, expected, rtol=1e-13, atol=0)
    # the weights are not detached: the gradient differs from that of the detached form
    detached = ((prediction - target).pow(2) / (prediction - target).norm(dim=1, keepdim=True))
    assert not torch.allclose(got_grads[0], (detached * (prediction - target).sign()) / 6)
    for g, e in zip(got_grads, expected_grads, strict=True):
        assert torch.allclose(g, e, rtol=1e-12, atol=1e-14)
    # sum |d|^3 / ||d|| per row, averaged over rows
    d = prediction - target
    assert torch.allclose(got, (d.abs().pow(3).sum(1) / d.norm(dim=1)).mean(), rtol=1e-12)


def test_vae_loss_matches_the_reference_in_value_and_gradient():
    torch.manual_seed(1)
    reconstruction = torch.rand(5, 8, dtype=torch.float64) * 0.98 + 0.01
    target = torch.rand(5, 8, dtype=torch.float64)
    mu, logvar = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    got, got_grads = _values_and_gradients(vae_loss, reconstruction, target, mu, logvar)
    expected, expected_grads = _values_and_gradients(_reference_vae_loss, reconstruction, target,
                                                     mu, logvar)
    assert torch.allclose(got, expected, rtol=1e-13, atol=0)
    assert got_grads[1] is None  # the target is detached, as the reference's x.detach()
    for g, e in zip(got_grads[::2] + got_grads[3:], expected_grads[::2] + expected_grads[3:],
                    strict=True):
        assert torch.allclose(g, e, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cpu_noise", [False, True])
def test_reparameterize_standard_form_draws_the_reference_stream(cpu_noise):
    mu, logvar = torch.randn(4, 3), torch.randn(4, 3)
    torch.manual_seed(2)
    eps = torch.randn([4, 3]).cpu()  # TF-VAEGAN: drawn on the CPU generator
    expected = eps * torch.exp(0.5 * logvar) + mu
    torch.manual_seed(2)
    assert torch.allclose(reparameterize(mu, logvar, cpu_noise=cpu_noise), expected,
                          rtol=0, atol=1e-6)


def test_reparameterize_cada_form_shares_one_draw_per_row():
    mu, logvar = torch.randn(4, 3), torch.randn(4, 3)
    torch.manual_seed(3)
    eps = torch.randn(4, 1)
    torch.manual_seed(3)
    z = reparameterize(mu, logvar, noise="per_sample", std="logvar")
    assert torch.allclose(z, mu + torch.exp(logvar) * eps, rtol=0, atol=1e-6)
    ratio = (z - mu) / torch.exp(logvar)  # the same eps in every latent dimension of a row
    assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio), atol=1e-5)
