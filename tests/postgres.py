"""A throwaway PostgreSQL cluster for the tests: `initdb` and `pg_ctl` in a temporary folder, once per session.

The server listens on a Unix socket in that folder only (no TCP port to collide with), trusts local
connections, and is stopped and deleted when the session ends. PostgreSQL refuses to run as root, so
under root the cluster belongs to `nobody`. Without the binaries (Debian's `postgresql` package,
which `.ci/run` installs) the tests that need it are skipped.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

SUPERUSER = "postgres"
PORT = 5432  # only names the socket file: the server listens on no TCP port
# durability is pointless for a cluster deleted at the end of the session, and costs seconds of fsync
FAST_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off", "listen_addresses=")


@dataclass(frozen=True)
class PostgresCluster:
    """A running test cluster, reached through the socket in `socket_dir`."""

    socket_dir: Path

    def conninfo(self, database: str) -> str:
        """libpq's connection string for `database` (what DuckDB's postgres extension takes)."""
        return f"host={self.socket_dir} port={PORT} user={SUPERUSER} dbname={database}"

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of `database` (what dagster-postgres takes: SQLAlchemy 2.1 needs the driver named)."""
        return f"postgresql+psycopg2://{SUPERUSER}@/{database}?host={self.socket_dir}&port={PORT}"

    def create_database(self, name: str) -> str:
        """Create an empty database; its connection string."""
        self.execute("postgres", f'CREATE DATABASE "{name}"')
        return self.conninfo(name)

    def execute(self, database: str, sql: str, params: tuple = ()) -> list[tuple]:
        """Run one statement in `database` (autocommit); the rows it returns."""
        import psycopg2

        con = psycopg2.connect(self.conninfo(database))
        con.autocommit = True
        try:
            with con.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall() if cursor.description else []
        finally:
            con.close()


def postgres_bin() -> Path | None:
    """The folder of `initdb` and `pg_ctl`: on the PATH, else Debian's /usr/lib/postgresql/<version>/bin."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda path: int(Path(path).parts[-3]))
    return Path(debian[-1]).parent if debian else None


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster that lives for the test session."""
    binaries = postgres_bin()
    if binaries is None:
        pytest.skip("PostgreSQL's initdb and pg_ctl are not installed (Debian package `postgresql`, see .ci/run)")
    with running_cluster(binaries) as cluster:
        yield cluster


@contextmanager
def running_cluster(binaries: Path) -> Iterator[PostgresCluster]:
    """Create a cluster in a new temporary folder and start it; stop it and delete the folder after the block."""
    root = Path(tempfile.mkdtemp(prefix="krnn-pg-"))  # short: a socket path has at most 107 characters
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, user="nobody")
    try:
        _run(binaries / "initdb", "-D", data, "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-sync")
        options = " ".join(f"-c {setting}" for setting in FAST_SETTINGS) + f" -k {root} -p {PORT}"
        _run(binaries / "pg_ctl", "-D", data, "-l", root / "server.log", "-o", options, "-w", "start")
        try:
            yield PostgresCluster(root)
        finally:
            _run(binaries / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _run(program: Path, *args: str | Path) -> None:
    """Run a PostgreSQL program, as `nobody` when we are root; its output in the error if it fails."""
    command = [str(program), *map(str, args)]
    if os.geteuid() == 0:
        command = ["runuser", "-u", "nobody", "--", *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
