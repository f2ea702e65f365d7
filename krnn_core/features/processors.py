"""Qlib's Alpha360 processors on numpy arrays, with Qlib's exact semantics.

Features: RobustZScoreNorm (fitted on the training window, clipped to +-3) then Fillna(0).
Labels: CSRankNorm, on the rows Qlib's DropnaLabel keeps (retraining.learn_sets applies both).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import torch

from krnn_core.features.row_file import RowFile

EPS = 1e-12  # qlib.constant.EPS
MAD_TO_STD = 1.4826  # MAD of a normal distribution times this is its standard deviation
CLIP = 3.0
RANK_TO_UNIT_STD = 3.46  # 1 / std of a uniform(0, 1) rank, Qlib's constant
FIT_VALUES = 1 << 26  # values of the columns RobustZScoreNorm.fit holds at a time (256 MiB of float32)


@dataclass(frozen=True)
class RobustZScoreNorm:
    """Per-column (x - median) / (1.4826 (MAD + EPS)), clipped to +-3, as Qlib's RobustZScoreNorm."""

    median: np.ndarray  # (C,)
    scale: np.ndarray  # (C,)

    @classmethod
    def fit(cls, x: np.ndarray | RowFile) -> RobustZScoreNorm:
        """Column medians and scaled MADs of the training rows (n, C), NaN ignored.

        A few columns at a time (FIT_VALUES values), so a RowFile is never in memory whole; each column's
        statistics are those of the whole column, so the result does not depend on the blocks."""
        rows, columns = x.shape
        step = max(1, FIT_VALUES // max(rows, 1))
        dtype = np.result_type(x.dtype, np.float32)  # as np.nanmedian's: float32 stays float32
        median, mad = np.empty(columns, dtype), np.empty(columns, dtype)
        for first in range(0, columns, step):
            last = min(first + step, columns)
            block = x[:, first:last] if isinstance(x, np.ndarray) else x.columns_block(first, last)  # (n, k)
            median[first:last] = np.nanmedian(block, axis=0)
            deviation = block - median[first:last]
            mad[first:last] = np.nanmedian(np.abs(deviation, out=deviation), axis=0)
        # Qlib adds EPS before scaling, so the floor of the scale is 1.4826 * EPS.
        return cls(median=median, scale=(mad + EPS) * MAD_TO_STD)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Normalized copy of x (n, C); NaN stays NaN."""
        if x.shape[-1] != self.median.shape[0]:
            raise ValueError(f"RobustZScoreNorm was fitted on {self.median.shape[0]} columns, got {x.shape[-1]}")
        out = (x - self.median) / self.scale  # (n, C)
        return np.clip(out, -CLIP, CLIP, out=out)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Plain tensors, loadable with torch.load(weights_only=True)."""
        import torch  # here, not at the top: the code location imports this module, and torch costs 1-3 s

        return {"median": torch.from_numpy(np.asarray(self.median)), "scale": torch.from_numpy(np.asarray(self.scale))}

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> RobustZScoreNorm:
        """Inverse of state_dict."""
        return cls(median=state["median"].numpy(), scale=state["scale"].numpy())


def fillna(x: np.ndarray) -> np.ndarray:
    """Copy of x with NaN replaced by 0, as Qlib's Fillna (infinities are kept)."""
    return np.where(np.isnan(x), np.zeros((), dtype=x.dtype), x)


def cs_rank_norm(label: np.ndarray, day_ids: np.ndarray) -> np.ndarray:
    """Per day: (percentile rank with average ties - 0.5) * 3.46, NaN kept, as Qlib's CSRankNorm."""
    if label.shape != day_ids.shape:
        raise ValueError(f"label {label.shape} and day_ids {day_ids.shape} must have the same shape")
    # pandas' rank is what Qlib calls: pct over the day's non-NaN labels, average rank for ties.
    pct = pd.Series(label).groupby(day_ids).rank(method="average", pct=True).to_numpy()  # (n,)
    return ((pct - 0.5) * RANK_TO_UNIT_STD).astype(label.dtype)
