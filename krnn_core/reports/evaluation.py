"""Signal quality: daily IC and Rank IC with the summary Qlib's SigAnaRecord reports."""

from __future__ import annotations

import numpy as np
import pandas as pd

DATE_LEVEL = "datetime"
ROLLING_WINDOWS = (20, 60)


def _pearson_by_day(pairs: pd.DataFrame) -> pd.Series:
    """Pearson correlation of the `score` and `label` columns within each day."""
    centred = pairs - pairs.groupby(level=DATE_LEVEL).transform("mean")
    sums = (
        pd.DataFrame(
            {
                "xy": centred["score"] * centred["label"],
                "xx": centred["score"] ** 2,
                "yy": centred["label"] ** 2,
            }
        )
        .groupby(level=DATE_LEVEL)
        .sum()
    )
    return sums["xy"] / np.sqrt(sums["xx"] * sums["yy"])


def _defined_days(pairs: pd.DataFrame) -> pd.Index:
    """Days with at least two pairs and neither column constant, where a correlation exists."""
    by_day = pairs.groupby(level=DATE_LEVEL)
    spread = by_day.max() - by_day.min()
    # Comparing max with min (not a computed variance) keeps constant days out exactly.
    defined = (by_day.size() >= 2) & (spread["score"] > 0) & (spread["label"] > 0)
    return defined.index[defined]


def _matched_pairs(scores: pd.Series, labels: pd.Series) -> pd.DataFrame:
    """(score, label) in float64 of the rows having both, on the days where a correlation exists."""
    # labels are stored as FLOAT: correlating in float32 would cost about eight digits
    pairs = pd.DataFrame({"score": scores, "label": labels}).astype("float64").dropna()
    return pairs[pairs.index.get_level_values(DATE_LEVEL).isin(_defined_days(pairs))]


def daily_pearson_ic(scores: pd.Series, labels: pd.Series) -> pd.Series:
    """Per-day Pearson IC alone, for callers that need no Rank IC (the trainer's early stopping)."""
    return _pearson_by_day(_matched_pairs(scores, labels))


def daily_ic(scores: pd.Series, labels: pd.Series) -> pd.DataFrame:
    """Per-day Pearson IC, Spearman Rank IC and pair count over instruments having both values."""
    pairs = _matched_pairs(scores, labels)
    # Spearman is Pearson on average ranks, as pandas' corr(method="spearman") that Qlib's calc_ic uses.
    ranks = pairs.groupby(level=DATE_LEVEL).rank(method="average")
    daily = pd.DataFrame(
        {
            "ic": _pearson_by_day(pairs),
            "rank_ic": _pearson_by_day(ranks),
            "n": pairs.groupby(level=DATE_LEVEL).size(),
        }
    )
    daily.index.name = DATE_LEVEL
    return daily


def ic_summary(daily: pd.DataFrame) -> dict[str, float]:
    """Mean IC/Rank IC and their IRs (mean / sample std, ddof=1) as SigAnaRecord logs them."""
    if daily.empty:
        raise ValueError("ic_summary needs at least one day with a defined IC")
    # pandas' std defaults to ddof=1, which is what SigAnaRecord's `ic.std()` uses; one day gives NaN ICIR.
    return {
        "ic": float(daily["ic"].mean()),
        "icir": float(daily["ic"].mean() / daily["ic"].std()),
        "rank_ic": float(daily["rank_ic"].mean()),
        "rank_icir": float(daily["rank_ic"].mean() / daily["rank_ic"].std()),
        "days": len(daily),
    }


def with_rolling_means(daily: pd.DataFrame, windows: tuple[int, ...] = ROLLING_WINDOWS) -> pd.DataFrame:
    """Daily IC with `ic_mean_<w>` and `rank_ic_mean_<w>`: means over the last w IC days, NaN before w exist."""
    frame = daily.copy()
    for window in windows:
        for column in ("ic", "rank_ic"):
            # a mean over fewer days than its name says would read as the w-day figure
            frame[f"{column}_mean_{window}"] = daily[column].rolling(window, min_periods=window).mean()
    return frame
