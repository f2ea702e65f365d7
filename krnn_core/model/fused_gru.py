"""K GRUs of the same shape run as one: block-diagonal weights and a hand-written backward pass.

K GRUs with hidden size H that read the same input are one GRU with hidden size K*H whose
recurrent weights (and, above the first layer, input weights) are block-diagonal: a GRU mixes
hidden units only through those matrices, every other operation is elementwise. The blocks are
built from the K separate parameter sets on every call, so the off-diagonal zeros are constants,
never parameters, and gradients reach each duplicate's own weights only.

On CUDA the fused weights go to cuDNN's GRU. On the CPU, PyTorch's GRU backward spends most of its
time concatenating per-step gate gradients; `GRUScan` keeps the per-step work to one small matmul
and a few elementwise ops each way, writing gate gradients in place, and keeps nothing without grad.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def fused_layer_weights(grus: nn.ModuleList, layer: int) -> tuple[torch.Tensor, ...]:
    """(w_ih (3KH, in), w_hh (3KH, KH), b_ih (3KH,), b_hh (3KH,)) of `layer`, rows gate-major then duplicate."""
    K, H = len(grus), grus[0].hidden_size

    def stacked(name: str) -> torch.Tensor:
        return torch.stack([getattr(gru, f"{name}_l{layer}") for gru in grus])  # (K, 3H, ...)

    def block_diagonal(w: torch.Tensor) -> torch.Tensor:
        blocks = w.view(K, 3, H, -1)  # (K, gates, H, in of one duplicate)
        eye = torch.eye(K, dtype=w.dtype, device=w.device)
        return torch.einsum("kgij,kl->gkilj", blocks, eye).reshape(3 * K * H, -1)  # (3KH, K*in)

    def gate_major(w: torch.Tensor) -> torch.Tensor:
        return w.view(K, 3, H, -1).transpose(0, 1).reshape(3 * K * H, -1).squeeze(-1)

    w_ih = stacked("weight_ih")  # (K, 3H, in)
    # the first layer reads the shared input; a higher one reads only its own duplicate's units
    w_ih = gate_major(w_ih) if layer == 0 else block_diagonal(w_ih)
    return w_ih, block_diagonal(stacked("weight_hh")), gate_major(stacked("bias_ih")), gate_major(stacked("bias_hh"))


def _tanh(a: torch.Tensor) -> torch.Tensor:
    """tanh of a fresh tensor, in place: 2 sigmoid(2a) - 1, as PyTorch's CPU sigmoid is several times faster."""
    return torch.sigmoid(a.mul_(2)).mul_(2).sub_(1)


def gru_scan(
    gi: torch.Tensor, w_hh: torch.Tensor, b_hh: torch.Tensor, keep: bool = False
) -> tuple[torch.Tensor, tuple[list[torch.Tensor], ...]]:
    """GRU recurrence from input gates gi (T, B, 3G): every step's h (T, B, G), and the gates' values if `keep`."""
    T, B, G = gi.shape[0], gi.shape[1], w_hh.shape[1]
    out = gi.new_empty(T, B, G)
    h = gi.new_zeros(B, G)
    rzs, ns, ghs = [], [], []  # kept as made, for the backward pass: no copies in the loop
    for t in range(T):
        gh = torch.addmm(b_hh, h, w_hh.t())  # (B, 3G)
        rz = torch.sigmoid(gi[t, :, : 2 * G] + gh[:, : 2 * G])  # (B, 2G): reset and update gates
        n = _tanh(torch.addcmul(gi[t, :, 2 * G :], rz[:, :G], gh[:, 2 * G :]))  # (B, G)
        h = torch.addcmul(n, rz[:, G:], h - n, out=out[t])  # (1 - z) n + z h: (B, G)
        if keep:
            rzs.append(rz), ns.append(n), ghs.append(gh)
    return out, (rzs, ns, ghs)


class GRUScan(torch.autograd.Function):
    """gru_scan with a hand-written backward: (gi (T, B, 3G), w_hh (3G, G), b_hh (3G,)) -> h (T, B, G)."""

    @staticmethod
    def forward(ctx, gi: torch.Tensor, w_hh: torch.Tensor, b_hh: torch.Tensor) -> torch.Tensor:
        out, ctx.steps = gru_scan(gi, w_hh, b_hh, keep=True)
        ctx.save_for_backward(w_hh, out)
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        (w_hh, out), (rzs, ns, ghs) = ctx.saved_tensors, ctx.steps
        T, B, G = out.shape
        d_gi, d_w_hh, d_b_hh = out.new_empty(T, B, 3 * G), torch.zeros_like(w_hh), torch.zeros_like(w_hh[:, 0])
        dh = out.new_zeros(B, G)
        for t in range(T - 1, -1, -1):
            dh = dh + grad_out[t]
            rz, n, h_prev = rzs[t], ns[t], out[t - 1] if t else torch.zeros_like(dh)
            dh_z = dh * rz[:, G:]  # (B, G): what reaches h_prev directly
            dn = torch.mul(dh - dh_z, torch.addcmul(torch.ones_like(n), n, n, value=-1), out=d_gi[t, :, 2 * G :])
            torch.mul(dn, ghs[t][:, 2 * G :], out=d_gi[t, :, :G])
            torch.mul(dh, h_prev - n, out=d_gi[t, :, G : 2 * G])
            d_gi[t, :, : 2 * G] *= torch.addcmul(rz, rz, rz, value=-1)  # through the sigmoids
            d_gh = d_gi[t].clone()  # (B, 3G): the new gate reads W_hn h through the reset gate
            d_gh[:, 2 * G :] *= rz[:, :G]
            d_w_hh.addmm_(d_gh.t(), h_prev)  # accumulated while the step is in cache
            d_b_hh += d_gh.sum(dim=0)
            dh = torch.addmm(dh_z, d_gh, w_hh)  # (B, G)
        ctx.steps = None
        return d_gi, d_w_hh, d_b_hh


def fused_gru(
    x: torch.Tensor, grus: nn.ModuleList, dropout: float, training: bool, native: bool | None = None
) -> torch.Tensor:
    """Run the K GRUs of `grus` on x (T, B, in) as one; every step's hidden states (T, B, K*H).

    `native` picks PyTorch's GRU kernel (cuDNN on CUDA) over GRUScan; by default on CUDA only.
    """
    layers = grus[0].num_layers
    weights = [fused_layer_weights(grus, layer) for layer in range(layers)]
    native = x.is_cuda if native is None else native
    if native:
        h0 = x.new_zeros(layers, x.shape[1], weights[0][1].shape[1])
        flat = [w.to(x.dtype) for layer in weights for w in layer]  # autocast leaves the weights in float32
        return torch._VF.gru(x, h0, flat, True, layers, dropout, training, False, False)[0]
    for layer, (w_ih, w_hh, b_ih, b_hh) in enumerate(weights):
        if layer:
            x = nn.functional.dropout(x, dropout, training)  # between layers, as nn.GRU
        gi = nn.functional.linear(x, w_ih, b_ih)  # (T, B, 3*K*H)
        x = GRUScan.apply(gi, w_hh, b_hh) if torch.is_grad_enabled() else gru_scan(gi, w_hh, b_hh)[0]  # (T, B, K*H)
    return x
