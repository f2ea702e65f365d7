"""A read-only copy of the served tables, republished after each write, for readers during a backfill.

DuckDB lets one process hold a database file for writing, and a read-only connection from another
process blocks that writer too. So readers (the CLI, people at the duckdb shell) never
open the pipeline's file: after each committed write the pipeline copies the served tables into a
temporary file and renames it over the snapshot, and readers open the snapshot read-only. A reader
sees the last committed state, never a lock error and never half a write. (Pipeline steps that read
the unserved tables open the file itself, under the lock of krnn_core.warehouse.connect.) Each publish
also deletes the staging files that killed publishers left behind (`.<snapshot>.<pid>.tmp` of a pid that
is gone).

A DuckLake warehouse needs no copy: each committed transaction is a snapshot of the lake, and a reader
opens the lake itself, read-only, in one transaction that sees the snapshot of its first query.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import duckdb

from krnn_core.features.store import FEATURES_TABLE
from krnn_core.warehouse import DuckLake, open_file, open_lake

# the raw feature store is large and is read by the pipeline, not by people during a backfill
NOT_SERVED = (FEATURES_TABLE,)


def snapshot_path(database: Path) -> Path:
    """Where the snapshot of a pipeline database lives: beside it, `<name>.snapshot.duckdb`."""
    return database.with_name(f"{database.stem}.snapshot.duckdb")


def publish_for_readers(con: duckdb.DuckDBPyConnection, warehouse: Path | DuckLake) -> None:
    """After a committed write, publish what readers see: the DuckDB file's snapshot (a DuckLake's commit is one)."""
    if not isinstance(warehouse, DuckLake):
        publish_snapshot(con, snapshot_path(warehouse))


def publish_snapshot(con: duckdb.DuckDBPyConnection, target: Path) -> None:
    """Copy every served table and view of `con`'s database to `target`, replacing it atomically."""
    source = con.execute("SELECT current_database()").fetchone()[0]
    tables = [
        name
        for (name,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = ?", [source]
        ).fetchall()
    ]
    views = con.execute(
        "SELECT view_name, sql FROM duckdb_views() WHERE database_name = ? AND NOT internal", [source]
    ).fetchall()
    staging = _staging_path(target, os.getpid())
    staging.unlink(missing_ok=True)
    con.execute(f"ATTACH '{staging}' AS snapshot_staging")
    try:
        for table in (t for t in tables if t not in NOT_SERVED):
            con.execute(f'CREATE TABLE snapshot_staging."{table}" AS SELECT * FROM "{source}"."{table}"')
        con.execute("USE snapshot_staging")
        for _, sql in views:
            if not any(table in sql for table in NOT_SERVED):
                con.execute(sql)
    finally:
        con.execute(f'USE "{source}"')
        con.execute("DETACH snapshot_staging")
    os.replace(staging, target)
    remove_stale_staging(target)


def _staging_path(target: Path, pid: int) -> Path:
    """Where process `pid` builds the next snapshot before renaming it over `target`."""
    return target.with_name(f".{target.name}.{pid}.tmp")


def remove_stale_staging(target: Path) -> None:
    """Delete the staging files (and their DuckDB WAL) that publishers killed mid-copy left behind.

    A staging file is named after its writer's pid, so one whose process is gone was left by a
    killed run; one of a live process (or of a pid we may not signal) is left alone.
    """
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(\d+)\.tmp(\.wal)?")
    for path in target.parent.glob(f".{target.name}.*.tmp*"):
        if (match := pattern.fullmatch(path.name)) and not _process_exists(int(match[1])):
            path.unlink(missing_ok=True)


def _process_exists(pid: int) -> bool:
    """Whether a process with this pid runs on this machine (signal 0 checks without signalling)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def open_snapshot(warehouse: Path | DuckLake) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the last committed state of the warehouse's served tables."""
    if isinstance(warehouse, DuckLake):
        con = open_lake(warehouse, read_only=True)
        con.execute("BEGIN TRANSACTION")  # every query of this reader sees one snapshot of the lake
        return con
    path = snapshot_path(warehouse)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist yet: it is published after the pipeline's first write")
    return open_file(path, read_only=True)
