"""What the UI shows of the reports: figures rounded for reading, charts that fit inline, small tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from krnn_core.reports.factor_report import factor_report
from krnn_core.reports.inline_charts import MARKDOWN_LIMIT
from krnn_core.reports.views import backtest_figures, backtest_table, ic_charts, ic_figures, recent_ic_table

SUMMARY = {
    "end": "2024-12-31",
    "days": 127,
    "excess_return_with_cost.annualized_return": 0.35371366420690026,
    "excess_return_with_cost.information_ratio": 5.394512,
    "excess_return_with_cost.max_drawdown": -0.016987,
    "excess_return_without_cost.annualized_return": 0.382049,
    "excess_return_without_cost.information_ratio": 5.821549,
    "excess_return_without_cost.max_drawdown": -0.016794,
}


def _report(days: int):
    """The factor report of scores that are the next-day label plus as much noise again, 40 names."""
    rng = np.random.default_rng(5)
    dates = pd.bdate_range("2024-07-01", periods=days, name="datetime")
    index = pd.MultiIndex.from_product([dates, [f"S{i:02d}" for i in range(40)]], names=["datetime", "instrument"])
    labels = pd.Series(rng.normal(0, 0.02, len(index)), index)
    return factor_report(labels + rng.normal(0, 0.02, len(index)), labels, topk=10)


def test_ic_figures_are_rounded_and_the_20_day_rank_ic_is_the_last_20_days_mean() -> None:
    report = _report(60)
    figures, summary = ic_figures(report), report.summary()
    assert figures["ic"] == round(figures["ic"], 4) and figures["ic"] == pytest.approx(summary["ic"], abs=5e-5)
    assert figures["rank_icir"] == pytest.approx(summary["rank_icir"], abs=5e-3)
    assert figures["long_short_bp"] == pytest.approx(summary["long_short"] * 1e4, abs=0.05)
    assert figures["turnover_pct"] == pytest.approx(summary["turnover"] * 100, abs=0.05)
    assert figures["rank_ic_20d"] == pytest.approx(report.ic_daily["rank_ic"].tail(20).mean(), abs=5e-5)
    assert 0.3 < figures["rank_ic"] < 0.9  # the scores do predict the labels


def test_a_window_shorter_than_20_days_has_no_20_day_figure_and_charts_the_daily_rank_ic() -> None:
    report = _report(12)
    assert "rank_ic_20d" not in ic_figures(report)
    charts = ic_charts(report)
    assert "Daily Rank IC" in charts["ic_series"]
    assert all(len(chart) < MARKDOWN_LIMIT for chart in charts.values())


def test_backtest_figures_are_percent_with_two_decimals_after_costs() -> None:
    figures = backtest_figures(SUMMARY)
    assert figures == {"excess_return_pct": 35.37, "information_ratio": 5.39, "max_drawdown_pct": -1.7}
    assert backtest_table(SUMMARY).to_dict("records") == [
        {"costs": "after", "annualized %": 35.37, "IR": 5.39, "max DD %": -1.7},
        {"costs": "before", "annualized %": 38.2, "IR": 5.82, "max DD %": -1.68},
    ]


def test_the_recent_ic_table_lists_the_last_days_newest_first() -> None:
    report = _report(25)
    table = recent_ic_table(report.ic_daily)
    assert table["date"].tolist() == [f"{day:%Y-%m-%d}" for day in report.ic_daily.index[::-1][:10]]
    assert table["ic"].iloc[0] == round(report.ic_daily["ic"].iloc[-1], 4)
    assert table["rank_ic"].iloc[-1] == round(report.ic_daily["rank_ic"].iloc[-10], 4)
    assert table["stocks"].tolist() == [40] * 10
