"""Readers query the published snapshot while another process writes: no failure, only committed states."""

import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from krnn_core.signals.read_snapshot import open_snapshot, publish_snapshot, snapshot_path
from tests.fixtures import REPO_ROOT

ROWS, VERSIONS = 300, 60

WRITER = textwrap.dedent(
    f"""
    import sys
    from pathlib import Path
    import duckdb, pandas as pd
    from krnn_core.signals.read_snapshot import publish_snapshot, snapshot_path
    from krnn_core.warehouse import replace_rows

    database = Path(sys.argv[1])
    con = duckdb.connect(str(database))
    for version in range(2, {VERSIONS} + 1):
        frame = pd.DataFrame({{"datetime": pd.Timestamp("2024-01-02"),
                               "instrument": [f"SH{{i:06d}}" for i in range({ROWS})], "score": float(version),
                               "rank": range(1, {ROWS} + 1), "model_version": f"v{{version}}"}})
        replace_rows(con, "signals", frame, "true")  # the backfill's transaction: delete the window, insert
        publish_snapshot(con, snapshot_path(database))
    """
)


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "pipeline.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(
            "CREATE TABLE signals AS SELECT DATE '2024-01-02' AS datetime, "
            "'SH' || lpad(i::VARCHAR, 6, '0') AS instrument, "
            f"1.0::DOUBLE AS score, (i + 1)::INTEGER AS rank, 'v1' AS model_version FROM range({ROWS}) t(i)"
        )
        con.execute(
            "CREATE VIEW latest_signals AS SELECT * FROM signals WHERE datetime = (SELECT max(datetime) FROM signals)"
        )
        publish_snapshot(con, snapshot_path(path))
    return path


def test_queries_during_a_backfill_never_fail_and_always_see_a_committed_state(database):
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(database)], cwd=REPO_ROOT)
    answers, failures = [], []
    while writer.poll() is None:
        try:
            with open_snapshot(database) as con:
                answers.append(
                    con.execute(
                        "SELECT count(*), min(score), max(score), count(DISTINCT model_version) FROM latest_signals"
                    ).fetchone()
                )
        except duckdb.Error as error:
            failures.append(error)
    assert writer.returncode == 0
    assert failures == []
    assert len(answers) >= 20
    # a committed state has all rows of one version: never a half-deleted or mixed window
    assert all(count == ROWS and low == high and versions == 1 for count, low, high, versions in answers)
    assert len({low for _, low, _, _ in answers}) >= 3, "the reader should have seen several versions go by"
    with open_snapshot(database) as con:
        assert con.execute("SELECT min(score) FROM signals").fetchone()[0] == VERSIONS


def test_the_raw_feature_store_is_not_copied_into_the_snapshot(tmp_path):
    path = tmp_path / "pipeline.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE alpha360_features AS SELECT 1 AS x")
        con.execute("CREATE TABLE signals AS SELECT 1 AS x")
        publish_snapshot(con, snapshot_path(path))
    with open_snapshot(path) as con:
        assert [name for (name,) in con.execute("SHOW TABLES").fetchall()] == ["signals"]


def test_a_publish_removes_the_staging_files_of_killed_publishers_and_no_live_ones(tmp_path):
    path = tmp_path / "pipeline.duckdb"
    target = snapshot_path(path)
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    gone = int(ended.stdout)  # a pid whose process has exited and been reaped
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        killed = [tmp_path / f".{target.name}.{gone}.tmp", tmp_path / f".{target.name}.{gone}.tmp.wal"]
        kept = [tmp_path / f".{target.name}.{alive.pid}.tmp", tmp_path / f".{target.name}.notes.tmp"]
        for file in killed + kept:
            file.write_bytes(b"half a snapshot")
        with duckdb.connect(str(path)) as con:
            con.execute("CREATE TABLE signals AS SELECT 1 AS x")
            publish_snapshot(con, target)
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, target.name] + [p.name for p in kept])
    finally:
        alive.kill()
        alive.wait()
