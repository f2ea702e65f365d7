"""IC, factor and backtest reports of the stored signals, written to DuckDB tables that replace the last ones."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd

from krnn_core.features.store import LABELS_TABLE, read_labels
from krnn_core.reports.backtest import BacktestConfig, run_backtest
from krnn_core.reports.factor_report import HORIZONS, FactorReport, factor_report
from krnn_core.signals.scoring import SIGNALS_TABLE, read_signals
from krnn_core.warehouse import day_window, describe_window, replace_tables

SCHEMA = """
CREATE TABLE IF NOT EXISTS ic_daily (datetime DATE, ic DOUBLE, rank_ic DOUBLE, n INTEGER,
    ic_mean_20 DOUBLE, ic_mean_60 DOUBLE, rank_ic_mean_20 DOUBLE, rank_ic_mean_60 DOUBLE);
CREATE TABLE IF NOT EXISTS ic_summary (start_date DATE, end_date DATE, ic DOUBLE, icir DOUBLE,
    rank_ic DOUBLE, rank_icir DOUBLE, days INTEGER, long_short DOUBLE, turnover DOUBLE);
CREATE TABLE IF NOT EXISTS ic_decay_daily (datetime DATE, horizon INTEGER, ic DOUBLE, rank_ic DOUBLE, n INTEGER);
CREATE TABLE IF NOT EXISTS ic_decay (horizon INTEGER, ic DOUBLE, rank_ic DOUBLE, days INTEGER);
CREATE TABLE IF NOT EXISTS quantile_daily (datetime DATE, q1 DOUBLE, q2 DOUBLE, q3 DOUBLE, q4 DOUBLE, q5 DOUBLE,
    long_short DOUBLE);
CREATE TABLE IF NOT EXISTS quantile_returns (quantile INTEGER, mean_return DOUBLE, days INTEGER);
CREATE TABLE IF NOT EXISTS turnover_daily (datetime DATE, topk INTEGER, turnover DOUBLE);
CREATE TABLE IF NOT EXISTS backtest_daily (datetime DATE, "return" DOUBLE, bench DOUBLE, cost DOUBLE,
    turnover DOUBLE, excess_return_without_cost DOUBLE, excess_return_with_cost DOUBLE);
CREATE TABLE IF NOT EXISTS backtest_summary (start_date DATE, end_date DATE, metric VARCHAR, value DOUBLE);
"""
# views need the signals table, which exists once any report can run
VIEWS = f"""
CREATE OR REPLACE VIEW latest_signals AS
    SELECT datetime, rank, instrument, score, model_version FROM {SIGNALS_TABLE}
    WHERE datetime = (SELECT max(datetime) FROM {SIGNALS_TABLE}) ORDER BY rank;
"""


def ensure_report_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the report tables and views."""
    con.execute(SCHEMA)
    con.execute(VIEWS)


def signal_window(
    con: duckdb.DuckDBPyConnection, start: dt.date | pd.Timestamp | None, end: dt.date | pd.Timestamp | None
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The report window: [start, end] (None: open) cut to the days that have signals."""
    window, bounds = day_window(start, end)
    sql = f"SELECT min(datetime), max(datetime) FROM {SIGNALS_TABLE} WHERE {window}"
    first, last = con.execute(sql, bounds).fetchone()
    if first is None:
        raise ValueError(f"no signals {describe_window(start, end)}: materialize the signals first")
    return pd.Timestamp(first), pd.Timestamp(last)


def _decay_label_end(con: duckdb.DuckDBPyConnection, end: pd.Timestamp) -> pd.Timestamp:
    """The last label day the longest horizon of a score day `end` needs, or the last stored one before it."""
    last = con.execute(
        f"SELECT max(datetime) FROM (SELECT DISTINCT datetime FROM {LABELS_TABLE} WHERE datetime >= ? "
        "ORDER BY datetime LIMIT ?)",
        [end.date(), max(HORIZONS)],
    ).fetchone()[0]
    return end if last is None else pd.Timestamp(last)


def _frame(data: pd.DataFrame | pd.Series) -> pd.DataFrame:
    """A report frame or series with its index as columns, ready to insert by name."""
    return data.reset_index() if isinstance(data, pd.DataFrame) else data.to_frame().reset_index()


def write_ic_report(con: duckdb.DuckDBPyConnection, start: pd.Timestamp, end: pd.Timestamp, topk: int) -> FactorReport:
    """IC with rolling means, IC decay, quantile returns and top-k turnover of the window's signals, stored."""
    labels = read_labels(con, start, _decay_label_end(con, end))
    report = factor_report(read_signals(con, start, end), labels, topk)
    ensure_report_schema(con)
    summary = pd.DataFrame([{"start_date": start.date(), "end_date": end.date()} | report.summary()])
    tables = {
        "ic_daily": _frame(report.ic_daily),
        "ic_summary": summary,
        "ic_decay_daily": _frame(report.decay_daily),
        "ic_decay": _frame(report.decay()),
        "quantile_daily": _frame(report.quantile_daily),
        "quantile_returns": _frame(report.quantile_means()),
        "turnover_daily": _frame(report.turnover).assign(topk=topk),
    }
    replace_tables(con, tables)
    return report


def write_backtest_report(
    con: duckdb.DuckDBPyConnection, provider_uri: Path, start: pd.Timestamp, end: pd.Timestamp, config: BacktestConfig
) -> tuple[pd.DataFrame, dict]:
    """Qlib's TopkDropout backtest of the signals over the window, stored daily and summarized."""
    daily, summary = run_backtest(provider_uri, read_signals(con, start, end), start, end, config)
    ensure_report_schema(con)
    numbers = {name: float(value) for name, value in summary.items() if isinstance(value, (int, float))}
    rows = pd.DataFrame({"metric": list(numbers), "value": list(numbers.values())})
    rows.insert(0, "end_date", daily.index.max().date())
    rows.insert(0, "start_date", daily.index.min().date())
    replace_tables(con, {"backtest_daily": daily.rename_axis("datetime").reset_index(), "backtest_summary": rows})
    return daily, summary
