"""What the trainer optimises and stops on: MSE over labelled rows, mean daily IC."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from krnn_core.reports.evaluation import DATE_LEVEL, daily_ic, daily_pearson_ic


def masked_mse(pred: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the rows whose label is not NaN."""
    mask = ~torch.isnan(label)
    return ((pred[mask] - label[mask]) ** 2).mean()


def mean_daily_ic(pred: np.ndarray, label: np.ndarray, day: np.ndarray) -> float:
    """Mean over days of the Pearson correlation of pred and label, skipping days where it is undefined."""
    index = pd.MultiIndex.from_arrays([day, np.arange(len(day))], names=[DATE_LEVEL, "row"])
    ic = daily_pearson_ic(pd.Series(pred, index=index), pd.Series(label, index=index))
    return float(ic.mean()) if len(ic) else float("nan")


def mean_daily_ic_and_rank_ic(pred: np.ndarray, label: np.ndarray, day: np.ndarray) -> tuple[float, float]:
    """Means over days of the Pearson IC and of the Spearman Rank IC of pred and label."""
    index = pd.MultiIndex.from_arrays([day, np.arange(len(day))], names=[DATE_LEVEL, "row"])
    daily = daily_ic(pd.Series(pred, index=index), pd.Series(label, index=index))
    if daily.empty:
        return float("nan"), float("nan")
    return float(daily["ic"].mean()), float(daily["rank_ic"].mean())
