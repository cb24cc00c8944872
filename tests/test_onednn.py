"""oneDNN linear layers: the same values and gradients as `nn.Linear` (to float rounding), the
same parameters and state-dict keys, fallbacks where oneDNN does not apply."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

from unseen.methods import onednn

pytestmark = pytest.mark.skipif(not onednn.available(), reason="no oneDNN in this build")


def _grads(layer: nn.Linear, inputs: torch.Tensor, upstream: torch.Tensor):
    inputs = inputs.clone().requires_grad_(True)
    layer.zero_grad(set_to_none=True)
    out = layer(inputs)
    out.backward(upstream)
    return out.detach(), inputs.grad, layer.weight.grad, layer.bias.grad


@pytest.mark.parametrize("rows", [1, 7, 50])
def test_values_and_gradients_match_nn_linear(rows):
    torch.manual_seed(rows)
    layer, inputs = nn.Linear(33, 21), torch.randn(rows, 33)
    upstream = torch.randn(rows, 21)
    expected = _grads(layer, inputs, upstream)
    onednn.use_onednn(layer)
    assert type(layer) is onednn.OneDNNLinear
    for got, want in zip(_grads(layer, inputs, upstream), expected, strict=True):
        assert torch.allclose(got, want, atol=1e-5, rtol=1e-5)


def test_expanded_upstream_gradient_and_frozen_weights():
    torch.manual_seed(1)
    layer, inputs = nn.Linear(6, 4), torch.randn(5, 6, requires_grad=True)
    expected_input_grad = torch.ones(5, 4) @ layer.weight.detach()
    onednn.use_onednn(layer).requires_grad_(False)
    layer(inputs).sum().backward()  # the gradient of a sum is an expanded (stride 0) tensor
    assert torch.allclose(inputs.grad, expected_input_grad, atol=1e-6)
    assert layer.weight.grad is None


def test_conversion_keeps_parameters_and_keys_and_falls_back_off_its_case():
    torch.manual_seed(2)
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2, bias=False))
    state = {key: value.clone() for key, value in net.state_dict().items()}
    onednn.use_onednn(net)
    assert net.state_dict().keys() == state.keys()
    assert all(torch.equal(net.state_dict()[key], value) for key, value in state.items())
    batched = torch.randn(2, 5, 3)  # 3-d input: F.linear, the same maths
    assert torch.allclose(net(batched), nn.functional.linear(
        torch.relu(nn.functional.linear(batched, state["0.weight"], state["0.bias"])),
        state["2.weight"]), atol=1e-6)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_retain_freed_memory_applies_on_glibc():
    """In a child process: the setting is process-wide."""
    code = ("from unseen.methods import onednn; import torch; "
            "assert onednn.retain_freed_memory(); x = torch.ones(1 << 24); del x; "
            "print(float(torch.ones(1 << 24).sum()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == str(float(1 << 24))
