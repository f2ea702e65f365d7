"""What people ask of the stored signals: a day's ranking, IC over a window, the models, an export."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd

from krnn_core.reports.evaluation import ic_summary
from krnn_core.tables import MODEL_VERSIONS_TABLE, SEARCH_TRIALS_TABLE, SIGNALS_TABLE
from krnn_core.warehouse import day_window, describe_window, read_indexed


class NoSignals(LookupError):
    """The asked day or window has no signals; the message names the nearest day that has."""


def signal_days(con: duckdb.DuckDBPyConnection) -> pd.DatetimeIndex:
    """Every day that has signals, ascending."""
    days = con.execute(f"SELECT DISTINCT datetime FROM {SIGNALS_TABLE} ORDER BY 1").fetchall()
    if not days:
        raise NoSignals("no signals stored yet: run `make demo` or materialize the signals asset")
    return pd.DatetimeIndex([day for (day,) in days])


def top_signals(con: duckdb.DuckDBPyConnection, day: dt.date | None, top: int) -> pd.DataFrame:
    """The `top` best-ranked signals of `day` (default: the last day with signals)."""
    days = signal_days(con)
    wanted = pd.Timestamp(day) if day else days[-1]
    if wanted not in days:
        nearest = days[abs(days - wanted).argmin()]
        raise NoSignals(f"no signals for {wanted.date()}; the nearest day with signals is {nearest.date()}")
    return con.execute(
        f"SELECT datetime, rank, instrument, score, model_version FROM {SIGNALS_TABLE} WHERE datetime = ? "
        "ORDER BY rank LIMIT ?",
        [wanted.date(), top],
    ).df()


def ic_over(con: duckdb.DuckDBPyConnection, start: dt.date | None, end: dt.date | None) -> dict[str, float]:
    """IC, ICIR, Rank IC and Rank ICIR of the stored daily IC over [start, end] (all days by default)."""
    window, bounds = day_window(start, end)
    daily = con.execute(f"SELECT datetime, ic, rank_ic FROM ic_daily WHERE {window} ORDER BY datetime", bounds).df()
    if daily.empty:
        raise NoSignals(f"no daily IC {describe_window(start, end)}")
    summary = ic_summary(daily.set_index("datetime"))
    return {"start": str(daily["datetime"].min().date()), "end": str(daily["datetime"].max().date())} | summary


def model_table(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every recorded model version, newest first: an ensemble before its members, which name it."""
    return con.execute(
        "SELECT model_version, kind, ensemble_version AS ensemble, period, train_start, train_end, valid_start, "
        "valid_end, best_epoch, round(valid_loss, 5) AS valid_loss, round(valid_ic, 4) AS valid_ic, "
        "round(valid_rank_ic, 4) AS valid_rank_ic, seed, device, round(duration_s, 1) AS duration_s "
        f"FROM {MODEL_VERSIONS_TABLE} ORDER BY label_end DESC, created_at DESC"
    ).df()


def latest_search(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The trials of the last model search recorded, best valid Rank IC first."""
    return con.execute(
        "SELECT period, trial, chosen, round(valid_rank_ic, 4) AS valid_rank_ic, round(valid_ic, 4) AS valid_ic, "
        "best_epoch, epochs, round(seconds, 1) AS seconds, params_json AS params "
        f"FROM {SEARCH_TRIALS_TABLE} WHERE created_at = (SELECT max(created_at) FROM {SEARCH_TRIALS_TABLE}) "
        "ORDER BY valid_rank_ic DESC"
    ).df()


def export_qlib_predictions(
    con: duckdb.DuckDBPyConnection, start: dt.date | None, end: dt.date | None, path: Path
) -> int:
    """Pickle the scores as Qlib's `pred.pkl`: a DataFrame indexed by (datetime, instrument), column `score`."""
    window, bounds = day_window(start, end)
    sql = f"SELECT datetime, instrument, score FROM {SIGNALS_TABLE} WHERE {window} ORDER BY datetime, instrument"
    frame = read_indexed(con, sql, bounds)
    if frame.empty:
        raise NoSignals(f"no signals {describe_window(start, end)}")
    frame.to_pickle(path)
    return len(frame)
