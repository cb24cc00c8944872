"""CADA-VAE's objective against a slow per-row form (values and gradients), its warm-up
schedules, its reparameterisation and the classifier's first-rows-per-class selection."""

from __future__ import annotations

import math

import pytest
import torch

from unseen.methods.cadavae.latents import first_rows_per_class, noisy_latents
from unseen.methods.cadavae.losses import WarmUp, reparameterize, vae_loss
from unseen.methods.cadavae.method import CADAVAE, CADAVAEConfig
from unseen.methods.cadavae.networks import AlignedVAEs, Encoder

B, D, A, Z = 5, 7, 4, 3


def _vaes() -> AlignedVAEs:
    torch.manual_seed(0)
    return AlignedVAEs(D, A, Z, 6, 8, 5, 4).double()


def _slow_loss(vaes, x, a, eps_x, eps_a, beta, gamma, delta, reference):
    """The reference's loss written row by row and element by element."""
    total = x.new_zeros(())
    mu_x, lv_x = vaes.image_encoder(x)
    mu_a, lv_a = vaes.attribute_encoder(a)
    for i in range(B):
        if reference:
            z_x = mu_x[i] + torch.exp(lv_x[i]) * eps_x[i, 0]
            z_a = mu_a[i] + torch.exp(lv_a[i]) * eps_a[i, 0]
        else:
            z_x = mu_x[i] + torch.exp(lv_x[i] / 2) * eps_x[i]
            z_a = mu_a[i] + torch.exp(lv_a[i] / 2) * eps_a[i]
        recon = sum(abs(vaes.image_decoder(z_x)[j] - x[i, j]) for j in range(D)) + sum(
            abs(vaes.attribute_decoder(z_a)[j] - a[i, j]) for j in range(A))
        cross = sum(abs(vaes.image_decoder(z_a)[j] - x[i, j]) for j in range(D)) + sum(
            abs(vaes.attribute_decoder(z_x)[j] - a[i, j]) for j in range(A))
        kld = 0.0
        distance = 0.0
        for d in range(Z):
            kld = kld + 0.5 * (1 + lv_x[i, d] - mu_x[i, d] ** 2 - torch.exp(lv_x[i, d]))
            kld = kld + 0.5 * (1 + lv_a[i, d] - mu_a[i, d] ** 2 - torch.exp(lv_a[i, d]))
            distance = distance + (mu_x[i, d] - mu_a[i, d]) ** 2 + (
                torch.exp(lv_x[i, d] / 2) - torch.exp(lv_a[i, d] / 2)) ** 2
        total = total + recon - beta * kld + gamma * cross + delta * torch.sqrt(distance)
    return total


@pytest.mark.parametrize("reference", [True, False])
@pytest.mark.parametrize(("beta", "gamma", "delta"), [(0.0, 0.0, 0.0), (0.13, 1.2, 4.0)])
def test_loss_matches_the_slow_form_in_value_and_gradient(reference, beta, gamma, delta):
    generator = torch.Generator().manual_seed(1)
    x = torch.rand(B, D, generator=generator, dtype=torch.float64)
    a = torch.rand(B, A, generator=generator, dtype=torch.float64)
    fast, slow = _vaes(), _vaes()
    torch.manual_seed(7)
    loss, terms = vae_loss(fast, x, a, beta, gamma, delta, reference)
    torch.manual_seed(7)  # the same draws, in the same order: eps of x, then eps of a
    shape = (B, 1) if reference else (B, Z)
    eps_x = torch.randn(*shape, dtype=torch.float64)
    eps_a = torch.randn(*shape, dtype=torch.float64)
    expected = _slow_loss(slow, x, a, eps_x, eps_a, beta, gamma, delta, reference)
    assert torch.allclose(loss, expected, rtol=1e-10)
    assert terms["kl"] >= 0 and terms["distribution_alignment"] >= 0
    loss.backward()
    expected.backward()
    for (name, p), q in zip(fast.named_parameters(), slow.parameters(), strict=True):
        assert p.grad is not None and torch.allclose(p.grad, q.grad, rtol=1e-8, atol=1e-10), name


def test_reference_noise_is_one_value_per_row_with_sigma_exp_logvar():
    mu, logvar = torch.zeros(4, 6), torch.full((4, 6), -1.0)
    z = reparameterize(mu, logvar, reference=True)
    eps = z / math.exp(-1.0)  # sigma = exp(logvar)
    assert torch.allclose(eps, eps[:, :1].expand(4, 6))  # every dimension shares the row's eps
    fixed = reparameterize(torch.zeros(400, 6), torch.zeros(400, 6), reference=False)
    assert (fixed[:, 0] != fixed[:, 1]).all()  # independent dimensions
    assert 0.8 < fixed.std() < 1.2  # sigma = exp(0 / 2) = 1


def test_warm_ups_match_the_published_schedule():
    weights = CADAVAE(CADAVAEConfig(), seed=0).warm_ups()
    beta, gamma, delta = weights["beta"], weights["gamma"], weights["delta"]
    epochs = (0, 22, 48, 75, 93, 99)
    assert [round(beta.at(e), 3) for e in epochs] == [0, 0.059, 0.129, 0.202, 0.25, 0.25]
    assert [round(gamma.at(e), 3) for e in epochs] == [0, 0.044, 1.185, 2.37, 2.37, 2.37]
    assert [gamma.at(e) for e in (0, 21)] == [0, 0]
    assert [delta.at(e) for e in (0, 6)] == [0, 0]
    assert delta.at(7) == pytest.approx(8.13 / 16) and delta.at(22) == delta.at(99) == 8.13
    assert WarmUp(1.0, 2, 4).at(3) == 0.5


def test_first_rows_per_class_keeps_training_order_and_tiles():
    labels = torch.tensor([1, 0, 1, 2, 0, 1])
    rows = first_rows_per_class(labels, 4)
    assert rows.tolist() == [1, 4, 1, 4, 0, 2, 5, 0, 3, 3, 3, 3]
    assert first_rows_per_class(labels, 2).tolist() == [1, 4, 0, 2, 3, 3]


def test_noisy_latents_of_repeated_rows_share_the_mean_not_the_noise():
    torch.manual_seed(3)
    encoder, inputs = Encoder(4, 5, 3), torch.randn(3, 4)
    rows = torch.tensor([0, 0, 2, 1])
    z = noisy_latents(encoder, inputs, rows, reference=True)
    with torch.no_grad():
        mu, logvar = encoder(inputs[rows])
    eps = (z - mu) / logvar.exp()
    assert torch.allclose(eps, eps[:, :1].expand_as(eps), atol=1e-5)  # one eps per row
    assert abs(float(eps[0, 0] - eps[1, 0])) > 1e-6  # a repeated row gets its own noise


def test_noisy_latents_encode_only_the_rows_drawn():
    torch.manual_seed(4)
    encoder, inputs = Encoder(4, 5, 3), torch.randn(5, 4)
    inputs[3] = float("nan")  # a row never drawn must not reach the encoder
    rows = torch.tensor([4, 0, 4, 1])
    torch.manual_seed(0)
    z = noisy_latents(encoder, inputs, rows, reference=True)
    assert torch.isfinite(z).all()
    torch.manual_seed(0)  # the same noise as encoding the tiled rows themselves
    with torch.no_grad():
        mu, logvar = encoder(inputs[rows])
    assert torch.allclose(z, reparameterize(mu, logvar, reference=True), atol=1e-6)
