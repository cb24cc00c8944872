"""CE-GZSL's own networks (reference `model.py`): E+H and the comparator F with its factored
scoring. G, D and the final classifier are the shared ones (`unseen.methods.generative`).

Every Linear layer is created with PyTorch's default init and then overwritten with
N(0, 0.02^2) weights and zero biases, in construction order, exactly as the reference does:
the default init still consumes the global RNG, which keeps the random stream aligned.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unseen.methods.generative.networks import LEAKY_SLOPE, init_linear_


class EmbeddingNet(nn.Module):
    """E and its projection head H: h = ReLU(fc1 x); z = L2-normalised fc2 h."""

    def __init__(self, feature_dim: int, embed_dim: int, projection_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(feature_dim, embed_dim)
        self.fc2 = nn.Linear(embed_dim, projection_dim)
        self.apply(init_linear_)

    def embed(self, features: torch.Tensor) -> torch.Tensor:
        """h alone (what the final classifier consumes)."""
        return F.relu(self.fc1(features))

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.embed(features)
        return h, F.normalize(self.fc2(h), dim=1)


class Comparator(nn.Module):
    """F: [h ; a] -> hidden (LeakyReLU 0.2) -> relevance score, for every (sample, class) pair."""

    def __init__(self, embed_dim: int, semantic_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.fc1 = nn.Linear(embed_dim + semantic_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, 1)
        self.apply(init_linear_)

    def forward(self, embedding: torch.Tensor, semantics: torch.Tensor) -> torch.Tensor:
        """The plain form on paired rows: [n, E] x [n, A] -> [n, 1]."""
        hidden = F.leaky_relu(self.fc1(torch.cat([embedding, semantics], 1)), LEAKY_SLOPE)
        return self.fc2(hidden)

    def pair_scores(self, embedding: torch.Tensor, semantics: torch.Tensor,
                    chunk_rows: int) -> torch.Tensor:
        """Scores of every sample against every class: [B, E] x [C, A] -> [B, C].

        Factored first layer: fc1([h_i ; a_c]) = P_i + Q_c with P = h W_h^T (B x hidden) and
        Q = A W_a^T + b (C x hidden), so the B*C concatenated rows are never built. The
        B x C x hidden activation is processed `chunk_rows` samples at a time and recomputed in
        the backward pass (nothing of that size is kept for autograd).
        """
        scores = _FactoredPairScores.apply(embedding, semantics, self.fc1.weight, self.fc1.bias,
                                           self.fc2.weight, chunk_rows)
        return scores + self.fc2.bias


class _FactoredPairScores(torch.autograd.Function):
    """s[i, c] = w2 . LeakyReLU(P[i] + Q[c]) with P = h W_h^T, Q = A W_a^T + b1, where
    [W_h | W_a] = fc1.weight; chunked over i and recomputed in backward.

    With g[i, c, k] = ds[i, c] * LeakyReLU'(P[i, k] + Q[c, k]): dP[i] = w2 * sum_c g[i, c],
    dQ[c] = w2 * sum_i g[i, c], dw2 = sum_{i,c} ds[i, c] * act[i, c]; then dh = dP W_h,
    d fc1.weight = [dP^T h | dQ^T A] (built whole: autograd through slices of a parameter
    would allocate, zero and add full-size gradients for every slice), db1 = sum_c dQ[c].
    """

    @staticmethod
    def forward(ctx, embedding: torch.Tensor, semantics: torch.Tensor,  # type: ignore[override]
                weight: torch.Tensor, bias: torch.Tensor, out_weight: torch.Tensor,
                chunk_rows: int) -> torch.Tensor:
        embed_dim = embedding.shape[1]
        p = embedding @ weight[:, :embed_dim].T
        q = torch.addmm(bias, semantics, weight[:, embed_dim:].T)
        w = out_weight[0]
        ctx.save_for_backward(embedding, semantics, weight, out_weight, p, q)
        ctx.chunk_rows = chunk_rows
        scores = p.new_empty(p.shape[0], q.shape[0])
        for start in range(0, p.shape[0], chunk_rows):
            hidden = torch.add(p[start:start + chunk_rows, None, :], q[None])
            F.leaky_relu(hidden, LEAKY_SLOPE, inplace=True)
            torch.matmul(hidden.view(-1, hidden.shape[-1]), w,
                         out=scores[start:start + chunk_rows].view(-1))
        return scores

    @staticmethod
    def backward(ctx, grad_scores: torch.Tensor):  # type: ignore[override]
        embedding, semantics, weight, out_weight, p, q = ctx.saved_tensors
        need_h, _, need_weight, need_bias, need_w = ctx.needs_input_grad[:5]
        need_p, need_q = need_h or need_weight, need_weight or need_bias
        w = out_weight[0]
        grad_p = torch.empty_like(p) if need_p else None
        grad_q = torch.zeros_like(q) if need_q else None
        grad_w = torch.zeros_like(w) if need_w else None
        grad_scores = grad_scores.contiguous()
        rows = ctx.chunk_rows
        for start in range(0, p.shape[0], rows):
            g = grad_scores[start:start + rows]
            hidden = torch.add(p[start:start + rows, None, :], q[None])
            if need_p or need_q:
                # g * LeakyReLU'(hidden) in one fused kernel.
                local = torch.ops.aten.leaky_relu_backward(
                    g[:, :, None].expand_as(hidden), hidden, LEAKY_SLOPE, False)
                if grad_p is not None:
                    torch.sum(local, 1, out=grad_p[start:start + rows])
                if grad_q is not None:
                    grad_q += local.sum(0)
            if grad_w is not None:
                F.leaky_relu(hidden, LEAKY_SLOPE, inplace=True)
                grad_w.addmv_(hidden.view(-1, hidden.shape[-1]).T, g.reshape(-1))
        embed_dim = embedding.shape[1]
        grad_h = grad_weight = grad_bias = None
        if grad_p is not None:
            grad_p.mul_(w)
            if need_h:
                grad_h = grad_p @ weight[:, :embed_dim]
        if grad_q is not None:
            grad_q.mul_(w)
            if need_bias:
                grad_bias = grad_q.sum(0)
        if need_weight:
            grad_weight = torch.cat([grad_p.T @ embedding, grad_q.T @ semantics], dim=1)
        grad_out = grad_w[None] if grad_w is not None else None
        return grad_h, None, grad_weight, grad_bias, grad_out, None
