"""DuckDB access shared by every stage: one connection helper and the idempotent writers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa


def connect(path: str | Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the pipeline's DuckDB file, creating its folder on first use."""
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    return duckdb.connect(str(path), read_only=read_only)


def day_window(start: dt.date | pd.Timestamp | None, end: dt.date | pd.Timestamp | None) -> tuple[str, list]:
    """(SQL condition, parameters) selecting `datetime` in [start, end]; None leaves that side open."""
    bounds = [None if day is None else pd.Timestamp(day).date() for day in (start, end)]
    return "datetime BETWEEN coalesce(?, DATE '1900-01-01') AND coalesce(?, DATE '9999-12-31')", bounds


def describe_window(start: dt.date | pd.Timestamp | None, end: dt.date | pd.Timestamp | None) -> str:
    """'between <start> and <end>' for messages, naming an open side as the first or last day."""
    first, last = (None if day is None else pd.Timestamp(day).date() for day in (start, end))
    return f"between {first or 'the first day'} and {last or 'the last day'}"


def replace_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    frame: pd.DataFrame,
    where: str,
    params: list | None = None,
) -> int:
    """Delete the rows matching `where` and insert `frame` by column name, in one transaction.

    Re-running a partition therefore replaces it and never duplicates it; a failure part-way
    rolls back and leaves the previous rows in place.
    """
    return replace_rows_chunked(con, table, [frame], where, params)


def replace_rows_chunked(
    con: duckdb.DuckDBPyConnection,
    table: str,
    chunks: Iterable[pd.DataFrame | pa.Table],
    where: str,
    params: list | None = None,
) -> int:
    """As replace_rows, with the new rows inserted chunk by chunk: one chunk in memory, one commit for all."""
    rows = 0
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DELETE FROM {table} WHERE {where}", params or [])
        for chunk in chunks:
            if len(chunk):
                con.register("_replace_rows_frame", chunk)
                con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _replace_rows_frame")
                con.unregister("_replace_rows_frame")
                rows += len(chunk)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return rows
