"""Daily KRNN scores per universe member, each stamped with the model version that made it."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from krnn_core.alpha360 import ALPHA360_COLUMNS
from krnn_core.feature_store import read_features
from krnn_core.model_versions import LoadedModel, load_artifact, model_version_for
from krnn_core.processors import fillna
from krnn_core.tables import SIGNALS_TABLE
from krnn_core.trainer import predict
from krnn_core.warehouse import replace_rows
from krnn_core.warehouse_reads import read_indexed

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {SIGNALS_TABLE} (
    datetime DATE NOT NULL, instrument VARCHAR NOT NULL, score DOUBLE NOT NULL,
    rank INTEGER NOT NULL, model_version VARCHAR NOT NULL
);
"""
_CLOSE0 = ALPHA360_COLUMNS.index("CLOSE0")


def score_days(con: duckdb.DuckDBPyConnection, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Scores of every trading day in [start, end] from the version trained before each day."""
    data = read_features(con, start, end)
    days = data.index.get_level_values("datetime")
    if len(days) == 0:
        raise ValueError(f"no alpha360_features stored for {start.date()}..{end.date()}: materialize them first")
    # a suspended instrument has no bar today (CLOSE0 = $close/$close is NaN): it gets no score
    traded = np.isfinite(data.x[:, _CLOSE0])
    frames, models = [], {}
    for day in days.unique():
        version = model_version_for(con, day.date())
        if version is None:
            raise ValueError(f"no model version whose training labels end before {day.date()}: train krnn_model first")
        model = models.setdefault(version["model_version"], _load(version))
        rows = (days == day) & traded
        frames.append(_ranked(day, data.index[rows].get_level_values("instrument"), model, data.x[rows], version))
    return pd.concat(frames, ignore_index=True)


def write_signals(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> int:
    """Replace the signals of days [start, end] in one transaction."""
    con.execute(SCHEMA)
    # for backfills and re-execution, delete all existing signals of the window first
    return replace_rows(con, SIGNALS_TABLE, frame, "datetime BETWEEN ? AND ?", [start.date(), end.date()])


def read_signals(con: duckdb.DuckDBPyConnection, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
    """Stored scores of days [start, end], indexed by (datetime, instrument) as Qlib's `pred.pkl`."""
    sql = f"SELECT datetime, instrument, score FROM {SIGNALS_TABLE} WHERE datetime BETWEEN ? AND ? ORDER BY 1, 2"
    return read_indexed(con, sql, [start.date(), end.date()])["score"]


def _ranked(day: pd.Timestamp, instruments: pd.Index, model: LoadedModel, x: np.ndarray, version: dict) -> pd.DataFrame:
    """One day's scores, ranked 1 = best."""
    scores = predict(model.model, fillna(model.norm(x)))
    frame = pd.DataFrame({"datetime": day, "instrument": instruments, "score": scores.astype(np.float64)})
    frame["rank"] = frame["score"].rank(ascending=False, method="first").astype(np.int32)
    frame["model_version"] = version["model_version"]
    return frame.sort_values("rank", ignore_index=True)


def _load(version: dict) -> LoadedModel:
    return load_artifact(Path(version["artifact_path"]), version["sha256"])


def signal_coverage(con: duckdb.DuckDBPyConnection, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Per day: members with a bar (`traded`), of them scored, all stored scores and the finite ones."""
    return con.execute(
        f"""
        WITH stored AS (
            SELECT datetime, count(*) AS stored, count(*) FILTER (WHERE isfinite(score)) AS finite
            FROM {SIGNALS_TABLE} WHERE datetime BETWEEN $start AND $end GROUP BY datetime)
        SELECT f.datetime,
               count(*) FILTER (WHERE NOT isnan(f.x[$close0])) AS traded,
               count(s.score) FILTER (WHERE NOT isnan(f.x[$close0])) AS scored,
               any_value(coalesce(st.stored, 0)) AS stored,
               any_value(coalesce(st.finite, 0)) AS finite
        FROM alpha360_features f
        LEFT JOIN {SIGNALS_TABLE} s USING (datetime, instrument)
        LEFT JOIN stored st USING (datetime)
        WHERE f.datetime BETWEEN $start AND $end
        GROUP BY f.datetime ORDER BY f.datetime
        """,
        {"start": start.date(), "end": end.date(), "close0": _CLOSE0 + 1},
    ).df()


def signal_day_stats(con: duckdb.DuckDBPyConnection, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Per day: rows, cross-sectional score std, and the model version with the last day of its labels."""
    return con.execute(
        f"""
        SELECT s.datetime, count(*) AS n, coalesce(stddev_samp(s.score), 0) AS score_std,
               any_value(s.model_version) AS model_version, count(DISTINCT s.model_version) AS versions,
               any_value(m.label_end) AS label_end
        FROM {SIGNALS_TABLE} s LEFT JOIN model_versions m USING (model_version)
        WHERE s.datetime BETWEEN ? AND ? GROUP BY s.datetime ORDER BY s.datetime
        """,
        [start.date(), end.date()],
    ).df()
