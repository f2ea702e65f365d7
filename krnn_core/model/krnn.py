"""KRNN on Alpha360: a Conv1d encoder over the 60 daily steps, K parallel GRUs averaged, a linear head.

The architecture and parameter names are Qlib's (`qlib.contrib.model.pytorch_krnn.KRNNModel`), so a
Qlib state_dict loads unchanged. The input layout is not: Alpha360's 360 columns are feature-major
(CLOSE59..CLOSE0, OPEN59..OPEN0, ..., VOLUME59..VOLUME0), and Qlib's `x.view(B, -1, 6)` reads six
consecutive lags of one field as a "day". Here a row is read as (6 fields, 60 days), oldest day first,
so the last GRU step is day t. The K GRUs keep Qlib's separate parameters but run as one fused GRU
(`krnn_core.model.fused_gru`).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from krnn_core.model.config import INPUT_DIM, KRNNConfig
from krnn_core.model.fused_gru import fused_gru


class KRNN(nn.Module):
    """Alpha360 row (B, 360) -> score (B,)."""

    def __init__(self, config: KRNNConfig) -> None:
        super().__init__()
        self.config = config
        same_length = (config.cnn_kernel_size - 1) // 2
        conv = nn.Conv1d(config.fea_dim, config.cnn_dim, config.cnn_kernel_size, padding=same_length)
        grus = [
            nn.GRU(config.cnn_dim, config.rnn_dim, num_layers=config.rnn_layers, dropout=config.dropout)
            for _ in range(config.rnn_dups)
        ]
        # The nesting only reproduces Qlib's state_dict keys (encoder.cnn_encoder.conv.*, ...); the GRU
        # modules hold each duplicate's parameters, and forward runs them fused rather than one by one.
        self.encoder = nn.ModuleDict(
            {
                "cnn_encoder": nn.ModuleDict({"conv": conv}),
                "krnn_encoder": nn.ModuleDict({"rnn_modules": nn.ModuleList(grus)}),
            }
        )
        self.out_fc = nn.Linear(config.rnn_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Score each Alpha360 row from the GRUs' averaged hidden state on day t."""
        B, D = x.size()
        if D != INPUT_DIM:
            raise ValueError(f"KRNN expects (batch, {INPUT_DIM}) Alpha360 rows, got {tuple(x.shape)}")
        C, T = self.config.fea_dim, self.config.lags
        x = x.view(B, C, T)  # (B, fields, days): feature-major rows already are Conv1d's channel layout
        h = self.encoder.cnn_encoder.conv(x)  # (B, cnn_dim, T)
        h = h.permute(2, 0, 1).contiguous()  # (T, B, cnn_dim): GRUs are sequence-first, as Qlib's
        K, H = self.config.rnn_dups, self.config.rnn_dim
        h = fused_gru(h, self.encoder.krnn_encoder.rnn_modules, self.config.dropout, self.training)  # (T, B, K*H)
        # The mean of the last steps equals Qlib's last step of the mean over all steps.
        h = h[-1].view(B, K, H).mean(dim=1)  # (B, rnn_dim)
        return self.out_fc(h).squeeze(-1)  # (B,)
