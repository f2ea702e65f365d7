"""A self-contained HTML report of the stored reports over any window: summary tables and inlined charts.

It only reads the tables the `ic_report` and `backtest_report` assets store (so it runs on the read-only
snapshot) and summarizes their daily rows inside the window, the same way the assets do.
"""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path

import duckdb
import pandas as pd

from krnn_core.reports.backtest import EXCESS_COLUMNS, RISK_KEYS, cumulative_excess_plot, excess_summary
from krnn_core.reports.factor_report import FactorReport
from krnn_core.reports.plots import data_uri, ic_decay_plot, ic_series_plot, quantile_returns_plot
from krnn_core.reports.report_tables import signal_window
from krnn_core.warehouse import read_indexed

STYLE = """body{font-family:sans-serif;max-width:1040px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{padding:3px 10px;border-bottom:1px solid #ddd;text-align:right}
img{max-width:100%}"""


def _daily(con: duckdb.DuckDBPyConnection, table: str, start: dt.date, end: dt.date, index: list[str]) -> pd.DataFrame:
    """Rows of a stored daily report table inside the window, indexed like the report frames."""
    return read_indexed(con, f"SELECT * FROM {table} WHERE datetime BETWEEN ? AND ? ORDER BY ALL", [start, end], index)


def load_factor_report(con: duckdb.DuckDBPyConnection, start: dt.date, end: dt.date) -> FactorReport:
    """The stored factor statistics of the days in [start, end]."""
    ic_daily = _daily(con, "ic_daily", start, end, ["datetime"])
    if ic_daily.empty:
        raise ValueError(f"no stored daily IC between {start} and {end}: materialize the ic_report asset for it")
    turnover = _daily(con, "turnover_daily", start, end, ["datetime"])
    return FactorReport(
        ic_daily=ic_daily,
        decay_daily=_daily(con, "ic_decay_daily", start, end, ["datetime", "horizon"]),
        quantile_daily=_daily(con, "quantile_daily", start, end, ["datetime"]),
        turnover=turnover["turnover"],
        topk=int(turnover["topk"].max()),
    )


def _backtest_table(daily: pd.DataFrame) -> pd.DataFrame:
    """Annualized return, information ratio and max drawdown of the excess return, with and without cost."""
    summary = excess_summary(daily, daily.index[-1])
    return pd.DataFrame(
        {
            column.removeprefix("excess_return_").replace("_", " "): [summary[f"{column}.{key}"] for key in RISK_KEYS]
            for column in EXCESS_COLUMNS
        },
        index=pd.Index(RISK_KEYS, name="excess return"),
    )


def _summary_table(report: FactorReport) -> pd.DataFrame:
    """The window's signal-quality figures as a one-column table."""
    names = {
        "ic": "IC",
        "icir": "ICIR",
        "rank_ic": "Rank IC",
        "rank_icir": "Rank ICIR",
        "days": "days",
        "long_short": "long-short daily return (Q5 - Q1)",
        "turnover": f"top-{report.topk} daily turnover",
    }
    summary = report.summary()
    values = [f"{summary[key]:.4f}" if isinstance(summary[key], float) else str(summary[key]) for key in names]
    return pd.DataFrame({"value": values}, index=pd.Index(names.values(), name="figure"))


def _table(frame: pd.DataFrame) -> str:
    """An HTML table of the frame with its index as the first column, floats to four decimals."""
    return frame.reset_index().to_html(index=False, float_format=lambda value: f"{value:.4f}", border=0)


def _image(title: str, png: bytes) -> str:
    return f'<img alt="{html.escape(title)}" src="{data_uri(png)}">'


def render_html(report: FactorReport, backtest: pd.DataFrame, start: dt.date, end: dt.date) -> str:
    """The report page: summary tables first, then each chart with its numbers."""
    sections = [
        f"<h1>KRNN signals report</h1><p>Signal days {start} to {end}.</p>",
        "<h2>Signal quality</h2>" + _table(_summary_table(report)),
        "<h2>Backtest (Qlib TopkDropoutStrategy) against the benchmark</h2>"
        + _table(_backtest_table(backtest))
        + _image("cumulative excess return", cumulative_excess_plot(backtest)),
        "<h2>Daily IC</h2>" + _image("IC series", ic_series_plot(report.ic_daily)),
        "<h2>Quantile returns</h2>"
        + _table(report.quantile_means())
        + _image("quantile returns", quantile_returns_plot(report.quantile_daily)),
        "<h2>IC decay</h2>" + _table(report.decay()) + _image("IC decay", ic_decay_plot(report.decay())),
    ]
    title = f"KRNN signals report {start} to {end}"
    head = f'<meta charset="utf-8"><title>{html.escape(title)}</title><style>{STYLE}</style>'
    return f"<!DOCTYPE html>\n<html><head>{head}</head><body>\n" + "\n".join(sections) + "\n</body></html>\n"


def write_html_report(con: duckdb.DuckDBPyConnection, start: dt.date | None, end: dt.date | None, path: Path) -> Path:
    """Write the report of [start, end] (None: from the first / to the last signal day) to `path`."""
    first, last = (day.date() for day in signal_window(con, start, end))
    backtest = _daily(con, "backtest_daily", first, last, ["datetime"])
    if len(backtest) < 2:
        raise ValueError(f"fewer than two stored backtest days between {first} and {last}: materialize backtest_report")
    path = Path(path)
    path.write_text(render_html(load_factor_report(con, first, last), backtest, first, last), encoding="utf-8")
    return path
