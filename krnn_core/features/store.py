"""Alpha360 features and labels in DuckDB: raw, model-independent, one row per (day, instrument)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from krnn_core.features.alpha360 import (
    ALPHA360_COLUMNS,
    FIELDS,
    LABEL_COLUMN,
    LABEL_HORIZON,
    LAGS,
    alpha360_chunks,
    labels_block,
    load_panel,
)
from krnn_core.warehouse import is_lake, read_indexed, replace_rows, replace_rows_streamed

FEATURES_TABLE = "alpha360_features"
LABELS_TABLE = "alpha360_labels"
NAMED_VIEW = "alpha360_features_named"
LONG_VIEW = "alpha360_features_long"

# x holds the 360 values in Qlib's column order; the names (CLOSE59 .. VOLUME0) live in a view, as
# generated columns on the table doubled the insert time of a full history (docs/feature_store.md)
_NAMED_COLUMNS_SQL = ", ".join(f"x[{j + 1}] AS {name}" for j, name in enumerate(ALPHA360_COLUMNS))
_FIELD_NAMES_SQL = "[" + ", ".join(f"'{field.upper()}'" for field in FIELDS) + "]"
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {FEATURES_TABLE} (
    datetime DATE NOT NULL, instrument VARCHAR NOT NULL, x {{x_type}} NOT NULL);
CREATE TABLE IF NOT EXISTS {LABELS_TABLE} (datetime DATE NOT NULL, instrument VARCHAR NOT NULL, {LABEL_COLUMN} FLOAT);
CREATE OR REPLACE VIEW {NAMED_VIEW} AS SELECT datetime, instrument, {_NAMED_COLUMNS_SQL} FROM {FEATURES_TABLE};
CREATE OR REPLACE VIEW {LONG_VIEW} AS
    SELECT datetime, instrument, {_FIELD_NAMES_SQL}[pos // {LAGS} + 1] AS field, {LAGS - 1} - pos % {LAGS} AS lag, value
    FROM (SELECT datetime, instrument, unnest(x) AS value, unnest(range({len(ALPHA360_COLUMNS)})) AS pos
          FROM {FEATURES_TABLE});
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
    """Compute the Alpha360 rows of days [start, end] from the Qlib folder (and the 59 days before) and store them."""
    panel = load_panel(provider_uri, market, start, end, history=LAGS - 1)
    chunks = alpha360_chunks(panel, panel.day_index(start), panel.day_index(end))
    ensure_schema(con)
    return write_features(con, chunks, start, end)


def materialize_labels(
    con: duckdb.DuckDBPyConnection, provider_uri: str | Path, market: str, start: pd.Timestamp, end: pd.Timestamp
) -> LabelsWritten:
    """Store the labels that mature on days [start, end]: those of the days LABEL_HORIZON trading days before."""
    panel = load_panel(provider_uri, market, start, end, history=LABEL_HORIZON)
    first = max(panel.day_index(start) - LABEL_HORIZON, 0)
    last = panel.day_index(end) - LABEL_HORIZON
    if last < first:
        return LabelsWritten(0)
    ensure_schema(con)
    labels = labels_block(panel, first, last)
    rows = write_labels(con, labels, panel.calendar[first], panel.calendar[last])
    return LabelsWritten(rows, panel.calendar[first], panel.calendar[last])


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the feature and label tables and their views."""
    # DuckLake has no fixed-size arrays: there x is a list, of 360 values as every writer writes it
    x_type = "FLOAT[]" if is_lake(con) else f"FLOAT[{len(ALPHA360_COLUMNS)}]"
    con.execute(SCHEMA.format(x_type=x_type))


def write_features(
    con: duckdb.DuckDBPyConnection,
    chunks: Iterable[tuple[pd.MultiIndex, np.ndarray]],
    start: pd.Timestamp,
    end: pd.Timestamp,
) -> int:
    """Replace the features of days [start, end] with these (index, rows x 360) chunks, in one transaction."""
    tables = (arrow_rows(index, x) for index, x in chunks)
    window = [start.date(), end.date()]
    with _uncompressed(con):
        # for backfills and re-execution, delete all existing rows of the window first
        return replace_rows_streamed(con, FEATURES_TABLE, tables, "datetime BETWEEN ? AND ?", window)


@contextmanager
def _uncompressed(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Row groups written meanwhile store plain float32: DuckDB's float compression saves 20 % of the
    file on these ratios but makes a full-history write 1.3x slower (docs/feature_store.md). Small
    writes go through the WAL and are compressed as usual at the next checkpoint.

    The setting is global to the database instance, so it is put back as it was."""
    previous = con.execute("SELECT current_setting('force_compression')").fetchone()[0]
    con.execute("SET force_compression = 'uncompressed'")
    try:
        yield
    finally:
        con.execute(f"SET force_compression = '{previous}'")


def arrow_rows(index: pd.MultiIndex, x: np.ndarray) -> pa.Table:
    """One chunk as an Arrow table of (datetime, instrument, x FLOAT[360]), without copying x."""
    days = index.get_level_values("datetime").to_numpy().astype("datetime64[D]")
    values = pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(x, np.float32).ravel()), x.shape[1])
    return pa.table({"datetime": days, "instrument": index.get_level_values("instrument").to_numpy(), "x": values})


def write_labels(con: duckdb.DuckDBPyConnection, labels: pd.Series, start: pd.Timestamp, end: pd.Timestamp) -> int:
    """Replace the labels of days [start, end] with these, in one transaction."""
    frame = labels.reset_index()
    return replace_rows(con, LABELS_TABLE, frame, "datetime BETWEEN ? AND ?", [start.date(), end.date()])


def read_features(
    con: duckdb.DuckDBPyConnection, start: pd.Timestamp, end: pd.Timestamp, with_labels: bool = False
) -> FeatureMatrix:
    """Features of days [start, end], sorted by (datetime, instrument), optionally with raw labels."""
    label = f", l.{LABEL_COLUMN}" if with_labels else ""
    join = f"LEFT JOIN {LABELS_TABLE} l USING (datetime, instrument)" if with_labels else ""
    table = con.sql(
        f"""SELECT f.datetime, f.instrument, f.x{label} FROM {FEATURES_TABLE} f {join}
            WHERE f.datetime BETWEEN $start AND $end ORDER BY f.datetime, f.instrument""",
        params={"start": start.date(), "end": end.date()},
    ).to_arrow_table()
    index = pd.MultiIndex.from_arrays(
        [
            pd.DatetimeIndex(table["datetime"].to_numpy()).as_unit("ns"),
            table["instrument"].to_numpy(zero_copy_only=False).astype(str),
        ],
        names=["datetime", "instrument"],
    )
    flat = table["x"].combine_chunks().flatten().to_numpy(zero_copy_only=False)
    x = flat.astype(np.float32, copy=False).reshape(len(index), len(ALPHA360_COLUMNS))
    y = _as_float32(table[LABEL_COLUMN].to_numpy()) if with_labels else None
    return FeatureMatrix(index, x, y)


def read_labels(con: duckdb.DuckDBPyConnection, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
    """Raw labels of days [start, end] as a Series indexed by (datetime, instrument)."""
    sql = (
        f"SELECT datetime, instrument, {LABEL_COLUMN} FROM {LABELS_TABLE} WHERE datetime BETWEEN ? AND ? "
        "ORDER BY datetime, instrument"
    )
    return read_indexed(con, sql, [start.date(), end.date()])[LABEL_COLUMN]


def _as_float32(column: np.ndarray) -> np.ndarray:
    """A fetched column as float32 with NULL as NaN."""
    if np.ma.isMaskedArray(column):
        column = column.filled(np.nan)
    return np.asarray(column, dtype=np.float32)
