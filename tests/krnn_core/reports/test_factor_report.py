"""Factor statistics on hand-made panels: forward returns, IC decay, quantile groups, turnover, rolling IC."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from krnn_core.reports.evaluation import daily_ic, with_rolling_means
from krnn_core.reports.factor_report import (
    HORIZONS,
    factor_report,
    forward_returns,
    quantile_returns_by_day,
    topk_turnover,
)

DAYS = pd.bdate_range("2022-01-03", periods=80, name="datetime")


def _panel(values: np.ndarray, names: int) -> pd.Series:
    """Series on (datetime, instrument) of a (days, names) array."""
    codes = [f"S{i:03d}" for i in range(names)]
    index = pd.MultiIndex.from_product([DAYS[: len(values)], codes], names=["datetime", "instrument"])
    return pd.Series(values.ravel(), index=index)


def _noisy_oracle(rng: np.random.Generator, names: int = 50, noise: float = 2.0) -> tuple[pd.Series, pd.Series]:
    """i.i.d. labels and scores equal to the label plus `noise` times as much independent noise."""
    labels = rng.normal(0, 0.02, size=(len(DAYS), names))
    scores = labels + rng.normal(0, 0.02 * noise, size=labels.shape)
    return _panel(scores, names), _panel(labels, names)


def test_forward_returns_compound_labels_into_close_to_close_returns() -> None:
    rng = np.random.default_rng(1)
    close = np.exp(np.cumsum(rng.normal(0, 0.02, size=(30, 4)), axis=0))
    labels = _panel(close[2:] / close[1:-1] - 1, 4)  # Qlib's Ref($close,-2)/Ref($close,-1)-1 of days 0..27
    returns = forward_returns(labels)
    assert list(returns.columns) == list(HORIZONS)
    day, name = 5, 2
    for h in (1, 3, 10):
        expected = close[day + 1 + h, name] / close[day + 1, name] - 1
        assert returns[h].loc[(DAYS[day], f"S{name:03d}")] == pytest.approx(expected, rel=1e-12)
    # the 10-day return of day t needs the labels of t..t+9: the last 9 label days have none
    assert returns[10].groupby(level="datetime").count().loc[DAYS[18:28]].tolist() == [4] + [0] * 9


def test_a_missing_label_leaves_every_horizon_spanning_it_undefined() -> None:
    labels = _panel(np.full((12, 1), 0.01), 1)
    labels.iloc[4] = np.nan
    returns = forward_returns(labels, horizons=(1, 3))
    assert returns[3].isna().to_numpy()[:5].tolist() == [False, False, True, True, True]
    assert returns[3].iloc[0] == pytest.approx(1.01**3 - 1)


def test_a_planted_one_day_signal_decays_with_the_horizon() -> None:
    scores, labels = _noisy_oracle(np.random.default_rng(2), noise=1.0)
    decay = factor_report(scores, labels, topk=10).decay()
    # labels are i.i.d., so the h-day IC is about the 1-day IC over sqrt(h)
    assert decay.loc[1, "ic"] == pytest.approx(1 / np.sqrt(2), abs=0.05)
    assert decay["ic"].is_monotonic_decreasing and decay["rank_ic"].is_monotonic_decreasing
    assert decay.loc[4, "ic"] == pytest.approx(decay.loc[1, "ic"] / 2, abs=0.04)
    assert decay.loc[1, "days"] == 80 and decay.loc[10, "days"] == 71


def test_quantile_returns_rise_with_the_score_for_oracle_like_scores() -> None:
    scores, labels = _noisy_oracle(np.random.default_rng(3))
    daily = quantile_returns_by_day(scores, labels)
    means = daily.mean()
    assert means[["q1", "q2", "q3", "q4", "q5"]].is_monotonic_increasing
    assert means["long_short"] > 0.01
    np.testing.assert_allclose(daily["long_short"], daily["q5"] - daily["q1"])


def test_quantile_groups_have_equal_counts_and_average_the_label() -> None:
    labels = _panel(np.arange(10.0).reshape(1, 10), 10)
    daily = quantile_returns_by_day(-labels, labels)  # reversed scores: the lowest scores hold the highest labels
    assert daily.iloc[0].tolist() == [8.5, 6.5, 4.5, 2.5, 0.5, -8.0]


def test_days_with_fewer_names_than_groups_are_left_out() -> None:
    labels = _panel(np.arange(8.0).reshape(2, 4), 4)
    assert quantile_returns_by_day(labels, labels).empty


def test_turnover_of_a_constant_ranking_is_zero_and_of_a_reversed_one_is_one() -> None:
    ranking = np.tile(np.arange(20.0), (6, 1))
    assert topk_turnover(_panel(ranking, 20), topk=5).tolist() == [0.0] * 5
    flipping = ranking * np.array([1, -1, 1, -1, 1, -1])[:, None]
    turnover = topk_turnover(_panel(flipping, 20), topk=5)
    assert turnover.tolist() == [1.0] * 5 and list(turnover.index) == list(DAYS[1:6])


def test_turnover_counts_the_share_of_new_names() -> None:
    ranking = np.tile(np.arange(10.0), (2, 1))
    ranking[1, [5, 4]] = ranking[1, [4, 5]]  # the 5th and 6th best swap places
    assert topk_turnover(_panel(ranking, 10), topk=5).tolist() == [0.2]


def test_rolling_means_cover_full_windows_only() -> None:
    scores, labels = _noisy_oracle(np.random.default_rng(4), names=20)
    daily = with_rolling_means(daily_ic(scores, labels))
    assert daily["ic_mean_20"].isna().sum() == 19 and daily["rank_ic_mean_60"].isna().sum() == 59
    assert daily["ic_mean_20"].iloc[30] == pytest.approx(daily["ic"].iloc[11:31].mean())
    assert daily["rank_ic_mean_60"].iloc[-1] == pytest.approx(daily["rank_ic"].iloc[-60:].mean())


def test_summary_adds_long_short_and_turnover() -> None:
    scores, labels = _noisy_oracle(np.random.default_rng(5))
    report = factor_report(scores, labels, topk=10)
    summary = report.summary()
    assert summary["long_short"] == pytest.approx(report.quantile_daily["long_short"].mean())
    assert summary["turnover"] == pytest.approx(report.turnover.mean())
    assert 0.5 < summary["turnover"] < 1.0  # noisy scores of i.i.d. labels reshuffle most of the top 10
    assert report.quantile_means()["mean_return"].loc[5] == pytest.approx(report.quantile_daily["q5"].mean())
