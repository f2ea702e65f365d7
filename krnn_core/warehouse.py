"""DuckDB access shared by every stage: one locked connection helper, the idempotent writers, one reader."""

from __future__ import annotations

import datetime as dt
import fcntl
import itertools
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

QLIB_INDEX = ("datetime", "instrument")


@contextmanager
def connect(path: str | Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the pipeline's DuckDB file, held under its lock file until the block ends.

    DuckDB fails at once, rather than waits, when another process holds the file. So every process
    first takes an OS lock on a sidecar file and waits for it: one writer alone, or readers together.
    Nesting a second connection to the same file inside the block would wait on itself: it raises.
    """
    path = Path(path)
    if read_only and not path.exists():
        raise FileNotFoundError(f"{path} does not exist yet: nothing has been written to the warehouse")
    path.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(lock_path(path), fcntl.LOCK_SH if read_only else fcntl.LOCK_EX):
        con = duckdb.connect(str(path), read_only=read_only)
        try:
            yield con
        finally:
            con.close()


def lock_path(database: str | Path) -> Path:
    """The sidecar file whose lock every connection to `database` holds: `<name>.lock` beside it."""
    database = Path(database).resolve()
    return database.with_name(f"{database.name}.lock")


class _HeldLocks(threading.local):
    """The lock files the current thread holds: a nested connect to one of them would wait on itself."""

    def __init__(self) -> None:
        self.paths: set[Path] = set()


_held = _HeldLocks()


@contextmanager
def _file_lock(path: Path, mode: int) -> Iterator[None]:
    """Hold `fcntl.flock(mode)` on `path` for the block, waiting as long as another process holds it."""
    if path in _held.paths:
        raise RuntimeError(f"this thread already holds {path}: use the connection it has open")
    with open(path, "a") as lock:
        fcntl.flock(lock, mode)  # released when the file is closed, and by the OS if the process dies
        _held.paths.add(path)
        try:
            yield
        finally:
            _held.paths.discard(path)


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
    with transaction(con):
        _replace(con, table, frame, where, params)
    return len(frame)


def replace_tables(con: duckdb.DuckDBPyConnection, frames: dict[str, pd.DataFrame]) -> None:
    """Replace the whole content of each table with its frame, all in one transaction.

    A report spread over several tables is then either the previous run's or the new one, never a mix.
    """
    with transaction(con):
        for table, frame in frames.items():
            _replace(con, table, frame, "true")


def _replace(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame, where: str, params=None) -> None:
    """Delete the rows matching `where` and insert `frame` by column name, inside the caller's transaction."""
    con.execute(f"DELETE FROM {table} WHERE {where}", params or [])
    if len(frame):
        con.register("_replace_rows_frame", frame)
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _replace_rows_frame")
        con.unregister("_replace_rows_frame")


def replace_rows_streamed(
    con: duckdb.DuckDBPyConnection,
    table: str,
    chunks: Iterable[pa.Table],
    where: str,
    params: list | None = None,
) -> int:
    """As replace_rows, with the new rows streamed into one INSERT from Arrow tables of one schema.

    Only one chunk is in memory at a time, and since a single INSERT fills whole row groups, DuckDB
    writes them to the file while it inserts instead of all of them at the commit.
    """
    chunks = iter(chunks)
    first = next(chunks, None)
    rows = 0
    failures: list[BaseException] = []

    def batches() -> Iterator[pa.RecordBatch]:
        nonlocal rows
        try:
            for chunk in itertools.chain([first], chunks):
                rows += len(chunk)
                yield from chunk.to_batches()
        except BaseException as error:
            failures.append(error)  # DuckDB reraises it as its own error; the caller gets this one
            raise

    try:
        with transaction(con):
            con.execute(f"DELETE FROM {table} WHERE {where}", params or [])
            if first is not None:
                con.register("_replace_rows_stream", pa.RecordBatchReader.from_batches(first.schema, batches()))
                con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _replace_rows_stream")
    except duckdb.Error as error:
        if failures:
            raise failures[0] from error
        raise
    finally:
        if first is not None:
            con.unregister("_replace_rows_stream")
    return rows


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """BEGIN ... COMMIT around the block; any failure in it rolls all of it back and propagates."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def read_indexed(
    con: duckdb.DuckDBPyConnection, sql: str, params: list | dict, index: Sequence[str] = QLIB_INDEX
) -> pd.DataFrame:
    """The rows of `sql`, with its `datetime` column as Timestamps (DuckDB gives dates), indexed by `index`."""
    frame = con.execute(sql, params).df()
    frame["datetime"] = pd.to_datetime(frame["datetime"]).astype("datetime64[ns]")
    return frame.set_index(list(index))
