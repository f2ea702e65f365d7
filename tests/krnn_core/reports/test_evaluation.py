"""Daily IC / Rank IC against hand-checkable cases and scipy's reference implementations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from krnn_core.reports.evaluation import daily_ic, ic_summary


def _panel(values: dict[str, list[float]], instruments: list[str]) -> pd.Series:
    """Series on (datetime, instrument) from one list of values per day."""
    index = pd.MultiIndex.from_product([pd.to_datetime(list(values)), instruments], names=["datetime", "instrument"])
    return pd.Series(np.concatenate([values[d] for d in values]), index=index)


def _random_panel(rng: np.random.Generator, days: int, names: int) -> tuple[pd.Series, pd.Series]:
    """Correlated random scores and labels, with labels rounded so that ties occur."""
    dates = pd.bdate_range("2022-01-03", periods=days)
    codes = [f"S{i:03d}" for i in range(names)]
    index = pd.MultiIndex.from_product([dates, codes], names=["datetime", "instrument"])
    labels = rng.normal(size=len(index))
    scores = 0.3 * labels + rng.normal(size=len(index))
    return pd.Series(scores, index=index), pd.Series(np.round(labels, 1), index=index)


def test_perfect_and_inverse_scores_give_ic_of_one() -> None:
    codes = ["A", "B", "C", "D", "E"]
    labels = _panel({"2022-01-03": [0.01, -0.02, 0.03, 0.0, 0.05], "2022-01-04": [0.2, 0.1, -0.1, 0.4, 0.3]}, codes)
    agreeing = daily_ic(labels * 3 + 1, labels)
    opposing = daily_ic(-labels, labels)
    assert agreeing["ic"].to_numpy() == pytest.approx([1.0, 1.0])
    assert agreeing["rank_ic"].to_numpy() == pytest.approx([1.0, 1.0])
    assert opposing["ic"].to_numpy() == pytest.approx([-1.0, -1.0])
    assert opposing["rank_ic"].to_numpy() == pytest.approx([-1.0, -1.0])
    assert agreeing["n"].tolist() == [5, 5]


def test_monotone_but_nonlinear_scores_have_rank_ic_one_and_ic_below_one() -> None:
    labels = _panel({"2022-01-03": [1.0, 2.0, 3.0, 4.0, 10.0]}, ["A", "B", "C", "D", "E"])
    daily = daily_ic(np.exp(labels), labels)
    assert daily["rank_ic"].iloc[0] == pytest.approx(1.0)
    assert daily["ic"].iloc[0] < 0.99


def test_matches_scipy_on_random_data_with_ties() -> None:
    scores, labels = _random_panel(np.random.default_rng(3), days=6, names=40)
    daily = daily_ic(scores, labels)
    assert len(daily) == 6
    for day, row in daily.iterrows():
        s, y = scores.xs(day, level="datetime"), labels.xs(day, level="datetime")
        assert y.duplicated().any()
        assert row["ic"] == pytest.approx(stats.pearsonr(s, y).statistic, abs=1e-12)
        assert row["rank_ic"] == pytest.approx(stats.spearmanr(s, y).statistic, abs=1e-12)


def test_nan_and_unmatched_instruments_are_left_out() -> None:
    scores, labels = _random_panel(np.random.default_rng(5), days=3, names=30)
    labels.iloc[[0, 4, 7]] = np.nan
    extra = _panel({"2022-01-03": [9.0]}, ["ZZZ"])
    daily = daily_ic(pd.concat([scores, extra]), labels)
    first = pd.DataFrame({"s": scores, "y": labels}).xs(pd.Timestamp("2022-01-03"), level="datetime").dropna()
    assert daily["n"].tolist() == [27, 30, 30]
    assert daily["ic"].iloc[0] == pytest.approx(first["s"].corr(first["y"]), abs=1e-12)


def test_days_without_a_defined_correlation_are_dropped() -> None:
    codes = ["A", "B", "C"]
    days = ["2022-01-03", "2022-01-04", "2022-01-05"]
    labels = _panel(dict(zip(days, [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [5.0, 5.0, 5.0]], strict=True)), codes)
    scores = _panel(dict(zip(days, [[0.1, 0.1, 0.1], [3.0, 1.0, 2.0], [1.0, 2.0, 3.0]], strict=True)), codes)
    scores.iloc[4:6] = np.nan  # 2022-01-04 keeps a single pair
    assert daily_ic(scores, labels).empty
    scores.iloc[5] = 2.0
    daily = daily_ic(scores, labels)
    assert list(daily.index) == [pd.Timestamp("2022-01-04")]
    assert daily["n"].iloc[0] == 2


def test_summary_uses_sample_std_like_sig_ana_record() -> None:
    index = pd.DatetimeIndex(["2022-01-03", "2022-01-04"], name="datetime")
    daily = pd.DataFrame({"ic": [0.1, 0.3], "rank_ic": [0.2, 0.2 + 1e-3], "n": [10, 10]}, index=index)
    summary = ic_summary(daily)
    # mean 0.2, sample std sqrt(2 * 0.1**2 / 1) = 0.1 * sqrt(2)
    assert summary["ic"] == pytest.approx(0.2)
    assert summary["icir"] == pytest.approx(0.2 / (0.1 * math.sqrt(2)))
    assert summary["rank_icir"] == pytest.approx(0.2005 / (0.0005 * math.sqrt(2)))
    assert summary["days"] == 2


def test_summary_of_no_days_raises() -> None:
    with pytest.raises(ValueError, match="at least one day"):
        ic_summary(pd.DataFrame(columns=["ic", "rank_ic", "n"]))
