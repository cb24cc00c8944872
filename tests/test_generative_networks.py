"""The shared networks against the references' forms (TF-VAEGAN `TFVAEGAN_model.py`,
f-CLSWGAN `model.py`): outputs, the generator's feedback path and the init schemes."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from test_cegzsl_method import _one_thread  # noqa: F401  (autouse: one torch thread)

from unseen.methods.generative.networks import (
    ConditionalGenerator,
    LinearLogSoftmax,
    VAEEncoder,
    init_linear_,
)


def _reference_generator(generator, z, c, a1=None, feedback_layers=None):
    """TF-VAEGAN's Generator.forward (`:55-70`), G's fc3 being our fc2."""
    x1 = F.leaky_relu(generator.fc1(torch.cat((z, c), dim=-1)), 0.2)
    if feedback_layers is not None:
        x1 = x1 + a1 * feedback_layers
    out = generator.fc2(x1)
    return torch.sigmoid(out) if generator.output == "sigmoid" else torch.relu(out)


@pytest.mark.parametrize("output", ["relu", "sigmoid"])
def test_generator_with_and_without_feedback_matches_the_reference(output):
    torch.manual_seed(0)
    generator = ConditionalGenerator(3, 4, 8, 5, output=output).double()
    with torch.no_grad():  # outputs of both signs, so ReLU and Sigmoid both matter
        generator.fc2.bias.copy_(torch.linspace(-1, 1, 5))
    noise, semantics = torch.randn(6, 3, dtype=torch.float64), torch.rand(6, 4,
                                                                          dtype=torch.float64)
    feedback = torch.randn(6, 8, dtype=torch.float64, requires_grad=True)
    plain = generator(noise, semantics)
    assert torch.equal(plain, _reference_generator(generator, noise, semantics))
    fed = generator(noise, semantics, feedback, 0.7)
    expected = _reference_generator(generator, noise, semantics, 0.7, feedback)
    assert torch.allclose(fed, expected, rtol=0, atol=1e-15)
    assert not torch.allclose(fed, plain)  # the feedback changes the output
    (grad,) = torch.autograd.grad(fed.sum(), feedback)
    (expected_grad,) = torch.autograd.grad(expected.sum(), feedback)
    assert torch.allclose(grad, expected_grad, rtol=0, atol=1e-15) and grad.abs().sum() > 0
    if output == "sigmoid":
        assert bool(((fed > 0) & (fed < 1)).all())
    else:
        assert bool((plain >= 0).all()) and bool((plain == 0).any())


def test_generator_rejects_an_unknown_output():
    with pytest.raises(ValueError, match="tanh"):
        ConditionalGenerator(3, 4, 8, 5, output="tanh")


def test_vae_encoder_is_the_reference_two_layer_encoder():
    torch.manual_seed(1)
    encoder = VAEEncoder(feature_dim=6, semantic_dim=2, hidden_dim=10, latent_dim=2).double()
    for parameter in encoder.parameters():  # away from the init's zero biases
        torch.nn.init.normal_(parameter, 0, 0.5)
    x, a = torch.rand(5, 6, dtype=torch.float64), torch.rand(5, 2, dtype=torch.float64)
    hidden = F.leaky_relu(encoder.fc1(torch.cat((x, a), dim=-1)), 0.2)
    hidden = F.leaky_relu(encoder.fc3(hidden), 0.2)
    mu, logvar = encoder(x, a)
    assert encoder.fc3.out_features == 4 and mu.shape == logvar.shape == (5, 2)
    assert torch.equal(mu, encoder.linear_means(hidden))
    assert torch.equal(logvar, encoder.linear_log_var(hidden))


def test_init_schemes_replace_the_default_init_after_it_drew():
    torch.manual_seed(2)
    reference = torch.nn.Linear(300, 200)  # default init, then the scheme, as the references
    torch.nn.init.normal_(reference.weight, 0.0, 0.02)
    torch.manual_seed(2)
    model = LinearLogSoftmax(300, 200)
    assert torch.equal(model.fc.weight, reference.weight)
    assert not model.fc.bias.any()
    xavier = LinearLogSoftmax(300, 200, init="xavier_half").fc.requires_grad_(False)
    bound = 0.5 * math.sqrt(6.0 / (300 + 200))
    assert float(xavier.weight.abs().max()) <= bound
    assert float(xavier.weight.abs().max()) > 0.9 * bound  # uniform up to the bound, not N(0, .02)
    assert not xavier.bias.any()
    with pytest.raises(ValueError, match="kaiming"):
        init_linear_(torch.nn.Linear(2, 2), "kaiming")
