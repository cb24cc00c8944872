"""Linear layers on oneDNN's fp32 GEMM instead of MKL's (CPU only), for training and inference.

Why: on AMD CPUs with AVX-512 PyTorch's MKL sgemm runs its AVX2 path; oneDNN (bundled with
PyTorch as `mkldnn`) dispatches on the instruction set and reaches about twice the FLOP/s on
the GEMM shapes of the generative methods (docs/methods/cadavae.md, Speed). Same maths, other
summation order: results differ from the MKL path in the last bits, so every method exposes
this as an option (`onednn_matmul`), off by default.

`use_onednn(module)` turns every `nn.Linear` of a module into a `OneDNNLinear` in place: same
parameters, state-dict keys and initialisation (nothing is re-drawn), only `forward` changes.
`retain_freed_memory()` is the allocator setting that the speed options pair it with (option
`retain_freed_memory`): without it, oneDNN's extra large buffers cost more in page faults than
its kernels save (docs/methods/fclswgan.md §9.6.1).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

import torch
import torch.nn.functional as F
from torch import nn

from unseen.errors import UnseenInputError


def available() -> bool:
    """Whether this PyTorch build has oneDNN's linear kernel."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn,
                                                            "_linear_pointwise")


_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX = -1, -2, -4  # glibc's mallopt parameters


def retain_freed_memory() -> bool:
    """Make glibc serve every block from the heap and keep what is freed (mallopt: no mmap,
    no trimming, 512 MiB top pad), for the whole process. A training step frees and
    re-allocates the same gradient and GEMM buffers of tens of MB; by default glibc maps each
    one afresh and the kernel zero-fills its pages on first touch (page faults: a fifth to a
    third of a CPU step here). The cost: the process does not hand freed memory back to the
    system. Returns whether it applied (glibc on Linux only)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return all(mallopt(param, value) == 1 for param, value in (
        (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1), (_M_TOP_PAD, 512 << 20)))


def _gemm(inputs: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
          ) -> torch.Tensor:
    """inputs [n, k] @ weight[m, k]^T (+ bias): transposed views are read in place."""
    return torch.ops.mkldnn._linear_pointwise(inputs, weight, bias, "none", [], "")


class _Linear(torch.autograd.Function):
    """y = x W^T + b with its three gradients, each one oneDNN GEMM (or a sum)."""

    @staticmethod
    def forward(ctx, inputs: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
                ) -> torch.Tensor:
        inputs = inputs.contiguous()
        ctx.save_for_backward(inputs, weight)
        ctx.has_bias = bias is not None
        return _gemm(inputs, weight, bias)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        inputs, weight = ctx.saved_tensors
        grad = grad.contiguous()  # e.g. the expanded gradient of a sum
        grad_inputs = _gemm(grad, weight.t(), None) if ctx.needs_input_grad[0] else None
        grad_weight = _gemm(grad.t(), inputs.t(), None) if ctx.needs_input_grad[1] else None
        grad_bias = grad.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_inputs, grad_weight, grad_bias


def matmul(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """left [n, k] @ right [k, m] through oneDNN, with gradients."""
    return _Linear.apply(left, right.t(), None)


class OneDNNLinear(nn.Linear):
    """`nn.Linear` whose fp32 CPU calls go to oneDNN (leading dimensions flattened into rows;
    other devices and dtypes: `F.linear`)."""

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if (inputs.device.type != "cpu" or inputs.dim() < 2 or inputs.dtype != torch.float32
                or self.weight.dtype != torch.float32):
            return F.linear(inputs, self.weight, self.bias)
        rows = inputs.reshape(-1, inputs.shape[-1])
        return _Linear.apply(rows, self.weight, self.bias).view(*inputs.shape[:-1], -1)


def use_onednn(module: nn.Module) -> nn.Module:
    """Route every `nn.Linear` of `module` through oneDNN, in place; returns `module`."""
    if not available():
        raise UnseenInputError("option 'onednn_matmul': this PyTorch build has no oneDNN "
                               "(mkldnn) linear kernel; set it to false")
    for layer in module.modules():
        if type(layer) is nn.Linear:
            layer.__class__ = OneDNNLinear
    return module
