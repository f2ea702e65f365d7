"""What the Dagster UI shows of each report: headline figures rounded for reading, inline charts, small tables.

The figures are the ones worth plotting over materializations (the UI's "Plots"); each rounding keeps the
digits a reader compares: IC to 4 decimals, ratios to 2, returns in percent or basis points.
"""

from __future__ import annotations

import pandas as pd

from krnn_core.backtest import EXCESS_COLUMNS
from krnn_core.factor_report import FactorReport
from krnn_core.inline_charts import bar_chart, line_chart

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
    """The IC report's inline charts: rolling IC, quantile returns, IC decay."""
    return {
        "ic_series": _ic_series_chart(report.ic_daily),
        "quantile_returns": _quantile_chart(report.quantile_daily),
        "ic_decay": bar_chart(
            "IC decay: mean IC of the return over h days",
            report.decay()[["ic", "rank_ic"]].dropna().rename(columns={"ic": "IC", "rank_ic": "Rank IC"}),
            lambda value: f"{value:.3f}",
        ),
    }


def _ic_series_chart(ic_daily: pd.DataFrame) -> str:
    """The 20-day mean IC and Rank IC, or the daily ones while the window is shorter than 20 days."""
    ic, rank_ic = f"ic_mean_{RECENT_DAYS}", f"rank_ic_mean_{RECENT_DAYS}"
    title = f"{RECENT_DAYS}-day mean IC"
    if ic_daily[ic].isna().all():
        ic, rank_ic, title = "ic", "rank_ic", "Daily IC"
    return line_chart(title, {"IC": ic_daily[ic], "Rank IC": ic_daily[rank_ic]}, lambda value: f"{value:.3f}")


def _quantile_chart(quantile_daily: pd.DataFrame) -> str:
    """Mean daily return of each score quantile in basis points, each bar captioned with its value."""
    means = quantile_daily.drop(columns="long_short").mean() * 1e4
    captions = [f"{name.upper()} {value:+.1f}" for name, value in means.items()]
    bars = pd.DataFrame({"bp": means.to_numpy()}, index=captions)
    return bar_chart("Mean next-day return by score quantile (Q5 highest), bp", bars, lambda value: f"{value:+.1f}")


def backtest_figures(summary: dict[str, float | str]) -> dict[str, float]:
    """Annualized excess return (%), information ratio and max drawdown (%) after trading costs."""
    return {
        "excess_return_pct": round(summary["excess_return_with_cost.annualized_return"] * 100, 2),
        "information_ratio": round(summary["excess_return_with_cost.information_ratio"], 2),
        "max_drawdown_pct": round(summary["excess_return_with_cost.max_drawdown"] * 100, 2),
    }


def backtest_table(summary: dict[str, float | str]) -> pd.DataFrame:
    """The excess return's annualized return, IR and max drawdown, with and without cost, rounded."""
    rows = [
        {
            "excess return": column.removeprefix("excess_return_").replace("_", " "),
            "annualized %": round(summary[f"{column}.annualized_return"] * 100, 2),
            "information ratio": round(summary[f"{column}.information_ratio"], 2),
            "max drawdown %": round(summary[f"{column}.max_drawdown"] * 100, 2),
        }
        for column in EXCESS_COLUMNS
    ]
    return pd.DataFrame(rows)


def backtest_chart(daily: pd.DataFrame) -> str:
    """Cumulative excess return with and without cost and the benchmark's, summed as Qlib does."""
    lines = {
        "with cost": daily["excess_return_with_cost"].cumsum(),
        "without cost": daily["excess_return_without_cost"].cumsum(),
        "benchmark": daily["bench"].cumsum(),
    }
    return line_chart("Cumulative excess return", lines, lambda value: f"{value:.1%}")


def recent_ic_table(ic_daily: pd.DataFrame, days: int = 10) -> pd.DataFrame:
    """The last days' IC, Rank IC and their 20-day means, to 4 decimals, newest first."""
    columns = ["ic", "rank_ic", f"ic_mean_{RECENT_DAYS}", f"rank_ic_mean_{RECENT_DAYS}"]
    recent = ic_daily.tail(days).iloc[::-1]
    table = recent[columns].round(4)
    table.insert(0, "instruments", recent["n"].astype(int))
    table.insert(0, "date", recent.index.strftime("%Y-%m-%d"))
    return table.reset_index(drop=True)
