"""What the trainer optimises and stops on: MSE over labelled rows, mean daily IC."""

from __future__ import annotations

import numpy as np
import torch


def masked_mse(pred: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the rows whose label is not NaN."""
    mask = ~torch.isnan(label)
    return ((pred[mask] - label[mask]) ** 2).mean()


def mean_daily_ic(pred: np.ndarray, label: np.ndarray, day: np.ndarray) -> float:
    """Mean over days of the Pearson correlation of pred and label, skipping days where it is undefined."""
    keep = ~np.isnan(label)
    p, y = pred[keep].astype(np.float64), label[keep].astype(np.float64)
    _, d = np.unique(day[keep], return_inverse=True)
    n = np.bincount(d)  # (days,)
    p = p - (np.bincount(d, p) / n)[d]
    y = y - (np.bincount(d, y) / n)[d]
    sxy, sxx, syy = np.bincount(d, p * y), np.bincount(d, p * p), np.bincount(d, y * y)
    defined = (n >= 2) & (sxx > 0) & (syy > 0)
    return float(np.mean(sxy[defined] / np.sqrt(sxx[defined] * syy[defined]))) if defined.any() else float("nan")
