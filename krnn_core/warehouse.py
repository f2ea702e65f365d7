"""DuckDB access shared by every stage: one connection helper and one idempotent writer."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd


def connect(path: str | Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the pipeline's DuckDB file, creating its folder on first use."""
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    return duckdb.connect(str(path), read_only=read_only)


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
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DELETE FROM {table} WHERE {where}", params or [])
        if len(frame):
            con.register("_replace_rows_frame", frame)
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _replace_rows_frame")
            con.unregister("_replace_rows_frame")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return len(frame)
