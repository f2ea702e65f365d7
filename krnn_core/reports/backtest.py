"""Qlib's own TopkDropout backtest of daily scores, its excess-return summary and a chart of it.

Timing (Qlib's, unchanged): TopkDropoutStrategy trades on day d with the scores of the previous
trading day (`get_step_time(trade_step, shift=1)`), filling orders at `deal_price` of day d. A score
of day t is therefore traded at the close of the next trading day t+1, and the report row of day d
holds what the portfolio earned from the close of d-1 to the close of d, less the costs paid on d.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from krnn_core.data.qlib_runtime import init_qlib
from krnn_core.reports.plots import new_figure, to_png

EXCESS_COLUMNS = ("excess_return_with_cost", "excess_return_without_cost")
RISK_KEYS = ("annualized_return", "information_ratio", "max_drawdown")


@dataclass(frozen=True)
class ExchangeConfig:
    """Qlib's backtest `exchange_kwargs`, same names; the source of the config file's keys."""

    limit_threshold: float = 0.095
    deal_price: str = "close"
    open_cost: float = 0.0005
    close_cost: float = 0.0015
    min_cost: float = 5

    def __post_init__(self) -> None:
        if self.deal_price not in ("close", "open"):
            raise ValueError(f"deal_price={self.deal_price!r} is not one of ('close', 'open')")


@dataclass(frozen=True)
class BacktestConfig:
    """TopkDropoutStrategy's kwargs, the account, the benchmark and the exchange, named as in Qlib."""

    topk: int = 50
    n_drop: int = 5
    account: float = 100_000_000
    benchmark: str = "SH000300"
    exchange: ExchangeConfig = ExchangeConfig()
    region: str = "cn"  # qlib_init's: Qlib's exchange defaults of the region, such as a 100-share trade unit

    def __post_init__(self) -> None:
        if self.topk < 1 or not 0 <= self.n_drop <= self.topk:
            raise ValueError(f"needs 1 <= topk and 0 <= n_drop <= topk, got topk {self.topk} and n_drop {self.n_drop}")


def _trading_window(start: pd.Timestamp, end: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last day with data in [start, end] that Qlib's backtest can step through."""
    from qlib.data import D

    calendar = pd.DatetimeIndex(D.calendar(freq="day"))
    days = calendar[(calendar >= start) & (calendar <= end)]
    # Qlib's TradeCalendarManager reads the day after each step from the future calendar
    # (day_future.txt, or day.txt without it): a last day without a successor raises IndexError.
    if len(days) and days[-1] == D.calendar(freq="day", future=True)[-1]:
        days = days[:-1]
    if days.empty:
        raise ValueError(f"no tradable calendar days in [{start:%Y-%m-%d}, {end:%Y-%m-%d}]")
    return days[0], days[-1]


def _qlib_report(scores: pd.Series, start: pd.Timestamp, end: pd.Timestamp, config: BacktestConfig) -> pd.DataFrame:
    """Qlib's daily portfolio report of TopkDropoutStrategy on `scores` over [start, end]."""
    from qlib.contrib.evaluate import backtest_daily
    from qlib.contrib.strategy import TopkDropoutStrategy

    strategy = TopkDropoutStrategy(signal=scores, topk=config.topk, n_drop=config.n_drop)
    # The strategy only ever trades scored names, so only their quotes are loaded.
    exchange_kwargs = {"codes": sorted(scores.index.get_level_values("instrument").unique())} | asdict(config.exchange)
    with warnings.catch_warnings():
        # Qlib averages the prices of a day where none of a stock's bars exist (a suspension): NaN, as meant
        warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning, module="qlib.utils.index_data")
        report, _positions = backtest_daily(
            start_time=start,
            end_time=end,
            strategy=strategy,
            account=config.account,
            benchmark=config.benchmark,
            exchange_kwargs=exchange_kwargs,
        )
    return report


def excess_summary(daily: pd.DataFrame, last: pd.Timestamp) -> dict[str, float | str]:
    """Qlib's risk_analysis (sum of returns, 238 days a year) of both excess series, with the last day."""
    from qlib.contrib.evaluate import risk_analysis

    summary: dict[str, float | str] = {"end": f"{last:%Y-%m-%d}", "days": len(daily)}
    for column in EXCESS_COLUMNS:
        risk = risk_analysis(daily[column], freq="day")["risk"]
        summary.update({f"{column}.{key}": float(risk[key]) for key in RISK_KEYS})
    return summary


def run_backtest(
    provider_uri: Path | str,
    scores: pd.Series,
    start: str | pd.Timestamp,
    end: str | pd.Timestamp,
    config: BacktestConfig,
) -> tuple[pd.DataFrame, dict[str, float | str]]:
    """Qlib backtest of `scores` in [start, end]: daily frame, summary ("end" = last day run)."""
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    dates = scores.index.get_level_values("datetime")
    if not ((dates >= start) & (dates <= end)).any():
        raise ValueError(f"no scores in [{start:%Y-%m-%d}, {end:%Y-%m-%d}]")
    init_qlib(provider_uri, config.region)
    first, last = _trading_window(start, end)
    report = _qlib_report(scores, first, last, config)
    daily = report[["return", "bench", "cost", "turnover"]].copy()
    daily["excess_return_without_cost"] = daily["return"] - daily["bench"]
    daily["excess_return_with_cost"] = daily["return"] - daily["bench"] - daily["cost"]
    daily.index.name = "datetime"
    return daily, excess_summary(daily, last)


def cumulative_excess_plot(daily: pd.DataFrame) -> bytes:
    """PNG of cumulative excess return with and without cost and of the benchmark, summed as Qlib does."""
    figure = new_figure(10, 5)
    axes = figure.subplots()
    curves = {
        "excess return with cost": daily["excess_return_with_cost"],
        "excess return without cost": daily["excess_return_without_cost"],
        "benchmark return": daily["bench"],
    }
    for label, returns in curves.items():
        axes.plot(daily.index, returns.cumsum().to_numpy(), label=label)
    axes.axhline(0.0, color="grey", linewidth=0.8)
    first, last = daily.index[0], daily.index[-1]
    axes.set_title(f"Cumulative excess return, {first:%Y-%m-%d} to {last:%Y-%m-%d}")
    axes.set_ylabel("cumulative return (sum of daily returns)")
    axes.legend(loc="upper left")
    axes.grid(alpha=0.3)
    figure.autofmt_xdate()
    return to_png(figure)
