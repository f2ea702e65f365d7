"""Warehouse access shared by every stage: one connection helper, the idempotent writers, one reader.

The warehouse is either the embedded DuckDB file (one writer at a time, under a file lock) or a DuckLake:
a catalog in PostgreSQL and Parquet files under a folder, which many processes write at once, each
transaction committing a new snapshot of the lake. Both are queried through a DuckDB connection with
the same SQL.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import itertools
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import duckdb_extension_ducklake
import duckdb_extension_postgres
import pandas as pd
import pyarrow as pa

QLIB_INDEX = ("datetime", "instrument")
LAKE_ALIAS = "lake"  # the name the DuckLake is attached under in each connection


@dataclass(frozen=True)
class DuckLake:
    """A DuckLake warehouse: its catalog database in PostgreSQL, its Parquet files, the schema of our tables."""

    catalog: str  # libpq connection string of the catalog database, e.g. "host=db.internal dbname=krnn_lake"
    data_path: Path  # where new Parquet files go (DuckLake keeps the path of the files it already has)
    schema: str  # one per market config: two configs sharing a lake never touch each other's tables


@contextmanager
def connect(warehouse: str | Path | DuckLake, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the warehouse for the block: the DuckDB file under its lock, or the DuckLake's schema.

    DuckDB fails at once, rather than waits, when another process holds the file. So every process
    first takes an OS lock on a sidecar file and waits for it: one writer alone, or readers together.
    Nesting a second connection to the same file inside the block would wait on itself: it raises.
    A DuckLake takes no lock: each transaction commits a snapshot, and concurrent writers of different
    tables never wait for each other (two transactions rewriting one table conflict: the later one fails).
    """
    if isinstance(warehouse, DuckLake):
        with closing(open_lake(warehouse, read_only)) as con:
            yield con
        return
    path = Path(warehouse)
    if read_only and not path.exists():
        raise FileNotFoundError(f"{path} does not exist yet: nothing has been written to the warehouse")
    path.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(lock_path(path), fcntl.LOCK_SH if read_only else fcntl.LOCK_EX):
        con = open_file(path, read_only)
        try:
            yield con
        finally:
            con.close()


def open_file(path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection to the DuckDB file; an error opening it names the file (DuckDB's own may not)."""
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.Error as error:  # e.g. a file of a newer DuckDB: "Trying to read a database file with version..."
        raise type(error)(f"{path}: {error}") from error


def open_lake(lake: DuckLake, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection to the DuckLake whose default schema is `lake.schema` (created by the first writer)."""
    con = duckdb.connect(config={"autoinstall_known_extensions": False})
    try:
        _load_lake_extensions(con)
        _attach(con, lake, read_only)
        if not read_only:
            con.execute(f'CREATE SCHEMA IF NOT EXISTS {LAKE_ALIAS}."{lake.schema}"')
        elif not _schema_exists(con, lake.schema):
            raise FileNotFoundError(
                f"schema {lake.schema} of the DuckLake {lake.catalog!r} does not exist yet: "
                "nothing has been written to the warehouse"
            )
        con.execute(f'USE {LAKE_ALIAS}."{lake.schema}"')
    except BaseException:
        con.close()
        raise
    return con


def _schema_exists(con: duckdb.DuckDBPyConnection, schema: str) -> bool:
    """Whether the attached lake has `schema`."""
    sql = "SELECT count(*) FROM duckdb_schemas() WHERE database_name = ? AND schema_name = ?"
    return con.execute(sql, [LAKE_ALIAS, schema]).fetchone()[0] > 0


def _load_lake_extensions(con: duckdb.DuckDBPyConnection) -> None:
    """Load DuckDB's postgres and ducklake extensions from their Python wheels: these machines cannot download them.

    INSTALL from the wheel's file copies it once into DuckDB's extension folder under the extension's own
    name (the wheel's `postgres.duckdb_extension` is `postgres_scanner`, whose entry point a LOAD of the file
    by its path would not find); later calls find it installed.
    """
    for name, package in (("postgres", duckdb_extension_postgres), ("ducklake", duckdb_extension_ducklake)):
        (binary,) = Path(package.__file__).parent.glob(f"extensions/v{duckdb.__version__}/{name}.duckdb_extension")
        con.execute(f"INSTALL '{binary}'")
        con.execute(f"LOAD {name}")


def _attach(con: duckdb.DuckDBPyConnection, lake: DuckLake, read_only: bool) -> None:
    """Attach the lake as LAKE_ALIAS; the first attach to an empty catalog database creates DuckLake's tables."""
    options = f"DATA_PATH {_literal(str(lake.data_path) + '/')}" + (", READ_ONLY" if read_only else "")
    attach = f"ATTACH {_literal('ducklake:postgres:' + lake.catalog)} AS {LAKE_ALIAS} ({options})"
    try:
        con.execute(attach)
    except duckdb.Error as error:
        if "Failed to initialize DuckLake" not in str(error):
            raise
        # two processes attached an empty catalog at once and the other one created DuckLake's tables first
        con.execute(attach)


def _literal(text: str) -> str:
    """`text` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether the connection's current schema (the DuckDB file's, or the DuckLake's) has the table."""
    found = con.execute(
        "SELECT count(*) FROM duckdb_tables() "
        "WHERE database_name = current_database() AND schema_name = current_schema() AND table_name = ?",
        [table],
    )
    return found.fetchall()[0][0] > 0


def is_lake(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether `con`'s current database is a DuckLake (which has no fixed-size arrays and no key constraints)."""
    (kind,) = con.execute("SELECT type FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    return kind == "ducklake"


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
