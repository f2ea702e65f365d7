"""IC and backtest reports of the stored signals, written to DuckDB tables that replace the last ones."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from krnn_core.backtest import BacktestConfig, run_backtest
from krnn_core.evaluation import daily_ic, ic_summary
from krnn_core.feature_store import read_labels
from krnn_core.signals import read_signals
from krnn_core.warehouse import replace_rows

SCHEMA = """
CREATE TABLE IF NOT EXISTS ic_daily (datetime DATE, ic DOUBLE, rank_ic DOUBLE, n INTEGER);
CREATE TABLE IF NOT EXISTS ic_summary (start_date DATE, end_date DATE, ic DOUBLE, icir DOUBLE,
    rank_ic DOUBLE, rank_icir DOUBLE, days INTEGER);
CREATE TABLE IF NOT EXISTS backtest_daily (datetime DATE, "return" DOUBLE, bench DOUBLE, cost DOUBLE,
    turnover DOUBLE, excess_return_without_cost DOUBLE, excess_return_with_cost DOUBLE);
CREATE TABLE IF NOT EXISTS backtest_summary (start_date DATE, end_date DATE, metric VARCHAR, value DOUBLE);
"""


def signal_window(con: duckdb.DuckDBPyConnection, start: pd.Timestamp, end: pd.Timestamp | None) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The report window: [start, end] cut to the days that have signals."""
    first, last = con.execute(
        "SELECT min(datetime), max(datetime) FROM signals WHERE datetime >= ? AND datetime <= coalesce(?, DATE '9999-12-31')",
        [start.date(), None if end is None else end.date()],
    ).fetchone()
    if first is None:
        raise ValueError(f"no signals stored from {start.date()} on: materialize the signals first")
    return pd.Timestamp(first), pd.Timestamp(last)


def write_ic_report(con: duckdb.DuckDBPyConnection, start: pd.Timestamp, end: pd.Timestamp) -> tuple[pd.DataFrame, dict]:
    """Daily IC / Rank IC of signals against matured labels, and ICIR over the window."""
    daily = daily_ic(read_signals(con, start, end), read_labels(con, start, end))
    if daily.empty:
        raise ValueError(f"no signal day in {start.date()}..{end.date()} has matured labels yet")
    summary = ic_summary(daily)
    con.execute(SCHEMA)
    replace_rows(con, "ic_daily", daily.rename_axis("datetime").reset_index(), "true")
    row = pd.DataFrame([{"start_date": start.date(), "end_date": end.date()} | summary])
    replace_rows(con, "ic_summary", row, "true")
    return daily, summary


def write_backtest_report(
    con: duckdb.DuckDBPyConnection, provider_uri: Path, start: pd.Timestamp, end: pd.Timestamp, config: BacktestConfig
) -> tuple[pd.DataFrame, dict]:
    """Qlib's TopkDropout backtest of the signals over the window, stored daily and summarized."""
    daily, summary = run_backtest(provider_uri, read_signals(con, start, end), start, end, config)
    con.execute(SCHEMA)
    replace_rows(con, "backtest_daily", daily.rename_axis("datetime").reset_index(), "true")
    numbers = {name: float(value) for name, value in summary.items() if isinstance(value, (int, float))}
    rows = pd.DataFrame({"metric": list(numbers), "value": list(numbers.values())})
    rows.insert(0, "end_date", daily.index.max().date())
    rows.insert(0, "start_date", daily.index.min().date())
    replace_rows(con, "backtest_summary", rows, "true")
    return daily, summary
