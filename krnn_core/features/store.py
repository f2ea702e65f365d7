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

from krnn_core.data import qlib_store
from krnn_core.features.alpha360 import (
    ALPHA360_COLUMNS,
    FIELDS,
    LABEL_COLUMN,
    LABEL_HORIZON,
    LAGS,
    alpha360_chunks,
    calendar_position,
    labels_block,
    load_panel,
)
from krnn_core.features.row_file import RowFile
from krnn_core.warehouse import QLIB_INDEX, is_lake, read_indexed, replace_rows, replace_rows_streamed

FEATURES_TABLE = "alpha360_features"
LABELS_TABLE = "alpha360_labels"
NAMED_VIEW = "alpha360_features_named"
LONG_VIEW = "alpha360_features_long"
# DuckDB's buffer pool while rows stream in or out: at its default (80 % of RAM) it keeps every block a long
# write or read touched (docs/feature_store.md, "Larger than memory")
STREAMING_MEMORY_LIMIT = "1GiB"
# rows of one write transaction at most (about 1.4 GiB of features): DuckDB 1.5 holds what a transaction
# inserted from Arrow in memory until it commits, so a long range is written a run of whole days at a time
WRITE_ROWS = 1 << 20
READ_CHUNK_ROWS = 1 << 16  # rows per chunk of iter_features: about 90 MiB of features

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
    x: np.ndarray | RowFile  # (rows, 360) float32, raw Alpha360 values; a RowFile from features_to_file
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
    """Compute the Alpha360 rows of days [start, end] from the Qlib folder (and the 59 days before) and store them.

    Read, computed and written a run of whole days at a time (_write_blocks), one transaction each, so
    memory stays bounded whatever the market's size and the range's length."""
    ensure_schema(con)
    rows = 0
    for (first, last), window in _write_blocks(provider_uri, market, start, end):
        panel = load_panel(provider_uri, market, first, last, history=LAGS - 1)
        rows += write_features(con, alpha360_chunks(panel, panel.day_index(first), panel.day_index(last)), *window)
    return rows


def materialize_labels(
    con: duckdb.DuckDBPyConnection, provider_uri: str | Path, market: str, start: pd.Timestamp, end: pd.Timestamp
) -> LabelsWritten:
    """Store the labels that mature on days [start, end]: those of the days LABEL_HORIZON trading days before."""
    calendar = qlib_store.read_calendar(provider_uri)
    first = max(calendar_position(calendar, start) - LABEL_HORIZON, 0)
    last = calendar_position(calendar, end) - LABEL_HORIZON
    if last < first:
        return LabelsWritten(0)
    ensure_schema(con)
    rows = 0
    for (block_first, block_last), window in _write_blocks(provider_uri, market, calendar[first], calendar[last]):
        panel = load_panel(provider_uri, market, block_first, block_last, horizon=LABEL_HORIZON)
        labels = labels_block(panel, panel.day_index(block_first), panel.day_index(block_last))
        rows += write_labels(con, labels, *window)
    return LabelsWritten(rows, calendar[first], calendar[last])


def _write_blocks(
    provider_uri: str | Path, market: str, start: pd.Timestamp, end: pd.Timestamp
) -> Iterator[tuple[tuple[pd.Timestamp, pd.Timestamp], tuple[pd.Timestamp, pd.Timestamp]]]:
    """Runs of trading days of [start, end] of at most WRITE_ROWS rows (one per instrument of the market and
    day), each with the window of dates its write replaces: consecutive, together exactly [start, end]."""
    calendar = qlib_store.read_calendar(provider_uri)
    first, last = calendar_position(calendar, start), calendar_position(calendar, end)
    days = max(1, WRITE_ROWS // max(len(qlib_store.read_instruments(provider_uri, market)), 1))
    for block_first in range(first, last + 1, days):
        block_last = min(block_first + days - 1, last)
        window_start = start if block_first == first else calendar[block_first - 1] + pd.Timedelta(days=1)
        yield (calendar[block_first], calendar[block_last]), (window_start, calendar[block_last])


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
    # row groups written meanwhile store plain float32: DuckDB's float compression saves 20 % of the file
    # on these ratios but makes a full-history write 1.3x slower (docs/feature_store.md); small writes go
    # through the WAL and are compressed as usual at the next checkpoint
    with _settings(con, force_compression="uncompressed", memory_limit=STREAMING_MEMORY_LIMIT):
        # for backfills and re-execution, delete all existing rows of the window first
        return replace_rows_streamed(con, FEATURES_TABLE, tables, "datetime BETWEEN ? AND ?", window)


@contextmanager
def _settings(con: duckdb.DuckDBPyConnection, **values: str) -> Iterator[None]:
    """DuckDB settings changed for the block; they are global to the database instance, so put back as they were."""
    previous = {name: con.execute(f"SELECT current_setting('{name}')").fetchone()[0] for name in values}
    for name, value in values.items():
        con.execute(f"SET {name} = '{value}'")
    try:
        yield
    finally:
        for name, value in previous.items():
            con.execute(f"SET {name} = '{value}'")


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
    # con.execute, not con.sql: with parameters, DuckDB 1.5.5's relation took 7.5 s to hand over 44,000 rows
    # that its query produced in 0.4 s (con.execute: 0.25 s)
    table = con.execute(
        f"""SELECT f.datetime, f.instrument, f.x{label} FROM {FEATURES_TABLE} f {join}
            WHERE f.datetime BETWEEN $start AND $end ORDER BY f.datetime, f.instrument""",
        {"start": start.date(), "end": end.date()},
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


def iter_features(
    con: duckdb.DuckDBPyConnection, start: pd.Timestamp, end: pd.Timestamp, with_labels: bool = False
) -> Iterator[FeatureMatrix]:
    """read_features of days [start, end] in chunks of whole days, about READ_CHUNK_ROWS rows each, in order."""
    for first, last in _day_chunks(_stored_days(con, start, end)):
        with _settings(con, memory_limit=STREAMING_MEMORY_LIMIT):
            chunk = read_features(con, first, last, with_labels)
        yield chunk


def _stored_days(con: duckdb.DuckDBPyConnection, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
    """Feature rows stored per day of [start, end], indexed by day, in order."""
    counts = con.execute(
        f"SELECT datetime, count(*) AS n FROM {FEATURES_TABLE} WHERE datetime BETWEEN ? AND ? GROUP BY 1 ORDER BY 1",
        [start.date(), end.date()],
    ).df()
    return pd.Series(counts["n"].to_numpy(), index=pd.DatetimeIndex(counts["datetime"]))


def _day_chunks(rows_per_day: pd.Series) -> Iterator[tuple[pd.Timestamp, pd.Timestamp]]:
    """(first, last) day of consecutive runs of days holding about READ_CHUNK_ROWS rows (at least one day)."""
    chunk = np.cumsum(rows_per_day.to_numpy()) // READ_CHUNK_ROWS
    for number in np.unique(chunk):
        days = rows_per_day.index[chunk == number]
        yield days[0], days[-1]


def features_to_file(
    con: duckdb.DuckDBPyConnection, start: pd.Timestamp, end: pd.Timestamp, path: Path
) -> FeatureMatrix:
    """read_features(..., with_labels=True) of days [start, end] with x in a RowFile at `path`, written
    chunk by chunk: only the index and the labels are ever in memory whole."""
    x = RowFile.create(path, int(_stored_days(con, start, end).sum()), len(ALPHA360_COLUMNS))
    days, instruments = [np.empty(0, "datetime64[ns]")], [np.empty(0, object)]
    labels, written = [np.empty(0, np.float32)], 0
    for chunk in iter_features(con, start, end, with_labels=True):
        x.write(written, chunk.x)
        written += len(chunk.x)
        days.append(chunk.index.get_level_values("datetime").to_numpy())
        instruments.append(chunk.index.get_level_values("instrument").to_numpy())
        labels.append(chunk.y)
    index = pd.MultiIndex.from_arrays([np.concatenate(days), np.concatenate(instruments)], names=list(QLIB_INDEX))
    return FeatureMatrix(index, x, np.concatenate(labels))


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
