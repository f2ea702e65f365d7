"""What the Dagster UI shows of each report: headline figures rounded for reading, inline charts, small tables.

The figures are the ones worth plotting over materializations (the UI's "Plots"); each rounding keeps the
digits a reader compares: IC to 4 decimals, ratios to 2, returns in percent or basis points.
"""

from __future__ import annotations

import pandas as pd

from krnn_core.reports.factor_report import FactorReport
from krnn_core.reports.inline_charts import bar_chart, line_chart

RECENT_DAYS = 20  # the rolling window of the IC chart and of `rank_ic_20d`, as the IC drift check's


def window_text(days: pd.DatetimeIndex) -> str:
    """The report window as 'first..last (n days)'."""
    return f"{days.min():%Y-%m-%d}..{days.max():%Y-%m-%d} ({len(days)} days)"


def ic_figures(report: FactorReport) -> dict[str, float]:
    """Mean IC and Rank IC, their IRs, the last 20-day Rank IC, long-short spread (bp) and turnover (%)."""
    summary = report.summary()
    figures = {
        "ic": round(summary["ic"], 4),
        "rank_ic": round(summary["rank_ic"], 4),
        "icir": round(summary["icir"], 2),
        "rank_icir": round(summary["rank_icir"], 2),
        "long_short_bp": round(summary["long_short"] * 1e4, 1),
        "turnover_pct": round(summary["turnover"] * 100, 1),
    }
    recent = report.ic_daily[f"rank_ic_mean_{RECENT_DAYS}"].iloc[-1]
    # before 20 IC days there is no 20-day figure: left out rather than shown as a shorter mean
    return figures | ({"rank_ic_20d": round(float(recent), 4)} if pd.notna(recent) else {})


def ic_charts(report: FactorReport) -> dict[str, str]:
    """The IC report's inline charts: rolling Rank IC, quantile returns, Rank IC decay."""
    decay = report.decay()["rank_ic"].dropna().rename_axis("horizon h, trading days")
    return {
        "ic_series": _rank_ic_chart(report.ic_daily),
        "quantile_returns": _quantile_chart(report.quantile_daily),
        "ic_decay": bar_chart("Rank IC of the return over h days", decay, lambda value: f"{value:.3f}"),
    }


def _rank_ic_chart(ic_daily: pd.DataFrame) -> str:
    """The 20-day mean Rank IC (what the drift check watches), or the daily one before 20 days exist."""
    rolling = ic_daily[f"rank_ic_mean_{RECENT_DAYS}"]
    if rolling.notna().any():
        return line_chart(f"{RECENT_DAYS}-day mean Rank IC", rolling, lambda value: f"{value:.3f}")
    return line_chart("Daily Rank IC", ic_daily["rank_ic"], lambda value: f"{value:.3f}")


def _quantile_chart(quantile_daily: pd.DataFrame) -> str:
    """Mean daily return of each score quantile in basis points, each bar captioned with its value."""
    means = quantile_daily.drop(columns="long_short").mean() * 1e4
    means.index = [f"{name.upper()} {_signed(value)}" for name, value in means.items()]
    return bar_chart("Mean next-day return by score quantile, bp", means, _signed)


def _signed(value: float) -> str:
    """A signed number to one decimal, with no minus sign on a value that rounds to zero."""
    return f"{round(value, 1) + 0.0:+.1f}"


def backtest_figures(summary: dict[str, float | str]) -> dict[str, float]:
    """Annualized excess return (%), information ratio and max drawdown (%) after trading costs."""
    return {
        "excess_return_pct": round(summary["excess_return_with_cost.annualized_return"] * 100, 2),
        "information_ratio": round(summary["excess_return_with_cost.information_ratio"], 2),
        "max_drawdown_pct": round(summary["excess_return_with_cost.max_drawdown"] * 100, 2),
    }


def backtest_table(summary: dict[str, float | str]) -> pd.DataFrame:
    """Annualized excess return, information ratio (IR) and max drawdown (DD), after and before costs."""
    # short headers: the table has to fit the asset page's metadata column
    rows = [
        {
            "costs": costs,
            "annualized %": round(summary[f"{column}.annualized_return"] * 100, 2),
            "IR": round(summary[f"{column}.information_ratio"], 2),
            "max DD %": round(summary[f"{column}.max_drawdown"] * 100, 2),
        }
        for costs, column in (("after", "excess_return_with_cost"), ("before", "excess_return_without_cost"))
    ]
    return pd.DataFrame(rows)


def backtest_chart(daily: pd.DataFrame) -> str:
    """Cumulative excess return after costs, summed as Qlib does."""
    cumulative = daily["excess_return_with_cost"].cumsum()
    return line_chart("Cumulative excess return after costs", cumulative, lambda value: f"{value:.1%}")


def recent_ic_table(ic_daily: pd.DataFrame, days: int = 10) -> pd.DataFrame:
    """The last days' IC and Rank IC to 4 decimals and the stocks they span, newest first."""
    recent = ic_daily.tail(days).iloc[::-1]
    return pd.DataFrame(
        {
            "date": recent.index.strftime("%Y-%m-%d"),
            "ic": recent["ic"].round(4).to_numpy(),
            "rank_ic": recent["rank_ic"].round(4).to_numpy(),
            "stocks": recent["n"].astype(int).to_numpy(),
        }
    )
