"""Alpha360 features and labels in DuckDB: raw, model-independent, one row per (day, instrument)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from krnn_core.alpha360 import ALPHA360_COLUMNS, LABEL_COLUMN, LABEL_HORIZON, alpha360_block, labels_block, load_panel
from krnn_core.warehouse import replace_rows

FEATURES_TABLE = "alpha360_features"
LABELS_TABLE = "alpha360_labels"

_FEATURE_COLUMNS_SQL = ", ".join(f"{name} FLOAT" for name in ALPHA360_COLUMNS)
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {FEATURES_TABLE} (datetime DATE NOT NULL, instrument VARCHAR NOT NULL, {_FEATURE_COLUMNS_SQL});
CREATE TABLE IF NOT EXISTS {LABELS_TABLE} (datetime DATE NOT NULL, instrument VARCHAR NOT NULL, {LABEL_COLUMN} FLOAT);
"""


@dataclass(frozen=True)
class FeatureMatrix:
    """Features (and labels where asked) of a date range, ready for numpy and torch."""

    index: pd.MultiIndex  # (datetime, instrument), sorted
    x: np.ndarray  # (rows, 360) float32, raw Alpha360 values
    y: np.ndarray | None  # (rows,) float32 raw label, NaN where not matured or missing


@dataclass(frozen=True)
class LabelsWritten:
    """Labels written by one materialization: how many, and the days they belong to."""

    rows: int
    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None


def materialize_features(
    con: duckdb.DuckDBPyConnection, provider_uri: str | Path, market: str, start: pd.Timestamp, end: pd.Timestamp
) -> int:
    """Compute the Alpha360 rows of days [start, end] from the Qlib folder and store them."""
    panel = load_panel(provider_uri, market)
    index, x = alpha360_block(panel, panel.day_index(start), panel.day_index(end))
    ensure_schema(con)
    return write_features(con, index, x, start, end)


def materialize_labels(
    con: duckdb.DuckDBPyConnection, provider_uri: str | Path, market: str, start: pd.Timestamp, end: pd.Timestamp
) -> LabelsWritten:
    """Store the labels that mature on days [start, end]: those of the days LABEL_HORIZON trading days before."""
    panel = load_panel(provider_uri, market)
    first = max(panel.day_index(start) - LABEL_HORIZON, 0)
    last = panel.day_index(end) - LABEL_HORIZON
    if last < first:
        return LabelsWritten(0)
    ensure_schema(con)
    labels = labels_block(panel, first, last)
    rows = write_labels(con, labels, panel.calendar[first], panel.calendar[last])
    return LabelsWritten(rows, panel.calendar[first], panel.calendar[last])


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the feature and label tables if they do not exist."""
    con.execute(SCHEMA)


def write_features(
    con: duckdb.DuckDBPyConnection, index: pd.MultiIndex, x: np.ndarray, start: pd.Timestamp, end: pd.Timestamp
) -> int:
    """Replace the features of days [start, end] with these rows, in one transaction."""
    frame = pd.DataFrame(x, columns=ALPHA360_COLUMNS)
    frame.insert(0, "instrument", index.get_level_values("instrument"))
    frame.insert(0, "datetime", index.get_level_values("datetime"))
    # for backfills and re-execution, delete all existing rows of the window first
    return replace_rows(con, FEATURES_TABLE, frame, "datetime BETWEEN ? AND ?", [start.date(), end.date()])


def write_labels(con: duckdb.DuckDBPyConnection, labels: pd.Series, start: pd.Timestamp, end: pd.Timestamp) -> int:
    """Replace the labels of days [start, end] with these, in one transaction."""
    frame = labels.reset_index()
    return replace_rows(con, LABELS_TABLE, frame, "datetime BETWEEN ? AND ?", [start.date(), end.date()])


def read_features(
    con: duckdb.DuckDBPyConnection, start: pd.Timestamp, end: pd.Timestamp, with_labels: bool = False
) -> FeatureMatrix:
    """Features of days [start, end], sorted by (datetime, instrument), optionally with raw labels."""
    columns = ", ".join(f"f.{name}" for name in ALPHA360_COLUMNS)
    label = f", l.{LABEL_COLUMN}" if with_labels else ""
    join = f"LEFT JOIN {LABELS_TABLE} l USING (datetime, instrument)" if with_labels else ""
    table = con.execute(
        f"""SELECT f.datetime, f.instrument, {columns}{label}
            FROM {FEATURES_TABLE} f {join}
            WHERE f.datetime BETWEEN ? AND ? ORDER BY f.datetime, f.instrument""",
        [start.date(), end.date()],
    ).fetchnumpy()
    index = pd.MultiIndex.from_arrays(
        [pd.DatetimeIndex(table["datetime"]).as_unit("ns"), table["instrument"].astype(str)], names=["datetime", "instrument"]
    )
    x = np.column_stack([_as_float32(table[name]) for name in ALPHA360_COLUMNS]) if len(index) else np.empty((0, 360), np.float32)
    y = _as_float32(table[LABEL_COLUMN]) if with_labels else None
    return FeatureMatrix(index, x, y)


def read_labels(con: duckdb.DuckDBPyConnection, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
    """Raw labels of days [start, end] as a Series indexed by (datetime, instrument)."""
    frame = con.execute(
        f"SELECT datetime, instrument, {LABEL_COLUMN} FROM {LABELS_TABLE} WHERE datetime BETWEEN ? AND ? "
        "ORDER BY datetime, instrument",
        [start.date(), end.date()],
    ).df()
    frame["datetime"] = pd.to_datetime(frame["datetime"]).astype("datetime64[ns]")
    return frame.set_index(["datetime", "instrument"])[LABEL_COLUMN]


def _as_float32(column: np.ndarray) -> np.ndarray:
    """A fetched column as float32 with NULL as NaN."""
    if np.ma.isMaskedArray(column):
        column = column.filled(np.nan)
    return np.asarray(column, dtype=np.float32)
