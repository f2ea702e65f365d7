"""Fused duplicates: the K GRUs run as one give the outputs and gradients of running them one by one."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from krnn_core.model.fused_gru import fused_gru
from krnn_core.model.krnn import KRNN, KRNNConfig


def _one_by_one(x: torch.Tensor, grus: nn.ModuleList) -> torch.Tensor:
    """The unfused reference: each GRU on its own, hidden states side by side (T, B, K*H)."""
    return torch.cat([gru(x)[0] for gru in grus], dim=-1)


def _grads(out: torch.Tensor, weight: torch.Tensor, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    return list(torch.autograd.grad((out * weight).sum(), inputs))


@pytest.mark.parametrize("native", [False, True])  # GRUScan (CPU) and PyTorch's kernel (what CUDA runs)
def test_fused_matches_one_by_one_with_gradients(native: bool) -> None:
    torch.manual_seed(0)
    grus = nn.ModuleList([nn.GRU(5, 4, num_layers=2) for _ in range(3)])
    x = torch.randn(20, 7, 5, requires_grad=True)  # (T, B, in)
    expected = _one_by_one(x, grus)
    fused = fused_gru(x, grus, dropout=0.0, training=True, native=native)
    torch.testing.assert_close(fused, expected, rtol=0, atol=1e-5)
    weight = torch.randn_like(expected)  # a loss that reads every step, so every step's backward is checked
    inputs = [x, *grus.parameters()]
    for got, want in zip(_grads(fused, weight, inputs), _grads(expected, weight, inputs), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_krnn_output_and_gradients_match_unfused_at_benchmark_size() -> None:
    torch.manual_seed(1)
    model = KRNN(KRNNConfig())  # Qlib's benchmark dims: K=2 GRUs of 2 layers, hidden 8
    x = torch.randn(2000, 360)
    conv_out = model.encoder.cnn_encoder.conv(x.view(2000, 6, 60)).permute(2, 0, 1)  # (T, B, cnn_dim)
    last = _one_by_one(conv_out, model.encoder.krnn_encoder.rnn_modules)[-1].view(2000, 2, 8).mean(dim=1)
    expected = model.out_fc(last).squeeze(-1)  # (B,)
    got = model(x)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    params = list(model.parameters())
    fused_grads, unfused_grads = torch.autograd.grad(got.sum(), params), torch.autograd.grad(expected.sum(), params)
    for fused, unfused in zip(fused_grads, unfused_grads, strict=True):
        torch.testing.assert_close(fused, unfused, rtol=1e-5, atol=1e-4)


def test_trained_duplicates_stay_separate_gru_modules() -> None:
    torch.manual_seed(2)
    model = KRNN(KRNNConfig(rnn_dups=3, rnn_layers=2))
    grus = model.encoder.krnn_encoder.rnn_modules
    before = [p.detach().clone() for p in grus.parameters()]
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(3):
        optimizer.zero_grad()
        model(torch.randn(64, 360)).pow(2).mean().backward()
        optimizer.step()
    # every duplicate learned, and the fused run still equals running the trained modules one by one:
    # the zero blocks are rebuilt from the duplicates' own weights, never trained
    assert all(not torch.equal(a, b) for a, b in zip(grus.parameters(), before, strict=True))
    x = torch.randn(30, 16, 8)  # (T, B, cnn_dim)
    with torch.no_grad():
        torch.testing.assert_close(fused_gru(x, grus, 0.0, False), _one_by_one(x, grus), atol=1e-5, rtol=0)
