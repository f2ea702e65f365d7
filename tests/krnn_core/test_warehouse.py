"""The idempotent writers: whole reports replace each other in one transaction; processes take turns."""

from __future__ import annotations

import multiprocessing
import re
import subprocess
import sys
import textwrap
import time
from itertools import pairwise
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from krnn_core.warehouse import connect, read_indexed, replace_tables
from tests.fixtures import REPO_ROOT


@pytest.fixture
def con(tmp_path):
    with connect(tmp_path / "warehouse.duckdb") as con:
        con.execute("CREATE TABLE ic_daily (datetime DATE, ic DOUBLE)")
        con.execute("CREATE TABLE ic_summary (metric VARCHAR, value DOUBLE)")
        yield con


def _report(ic: float) -> dict[str, pd.DataFrame]:
    days = pd.to_datetime(["2022-05-09", "2022-05-10"]).date
    return {
        "ic_daily": pd.DataFrame({"datetime": days, "ic": [ic, ic / 2]}),
        "ic_summary": pd.DataFrame({"metric": ["ic"], "value": [ic * 0.75]}),
    }


def _contents(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    tables = ("ic_daily", "ic_summary")
    return {table: con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall() for table in tables}


def test_a_second_report_replaces_every_table_of_the_first(con) -> None:
    replace_tables(con, _report(0.04))
    replace_tables(con, _report(0.02))
    assert _contents(con) == {
        "ic_daily": [(pd.Timestamp("2022-05-09").date(), 0.02), (pd.Timestamp("2022-05-10").date(), 0.01)],
        "ic_summary": [("ic", 0.015)],
    }


def test_a_failure_on_a_later_table_keeps_the_previous_report_in_every_table(con) -> None:
    replace_tables(con, _report(0.04))
    before = _contents(con)
    broken = _report(0.02) | {"ic_summary": pd.DataFrame({"no_such_column": [1.0]})}
    with pytest.raises(duckdb.Error, match="no_such_column"):
        replace_tables(con, broken)
    assert _contents(con) == before


PROCESSES, ROUNDS = 6, 5


def _write_then_read(database: Path, process: int) -> list[tuple[str, float, float]]:
    """One process's part: each round appends the next sequence number, then reads the table back."""
    spans = []
    for _ in range(ROUNDS):
        with connect(database) as con:
            entered = time.monotonic()
            (last,) = con.execute("SELECT coalesce(max(seq), 0) FROM log").fetchone()
            time.sleep(0.01)  # a writer that was not alone would now lose or duplicate a number
            con.execute("INSERT INTO log VALUES (?, ?)", [last + 1, process])
            spans.append(("write", entered, time.monotonic()))
        with connect(database, read_only=True) as con:
            entered = time.monotonic()
            rows, top = con.execute("SELECT count(*), max(seq) FROM log").fetchone()
            assert rows == top, (rows, top)
            spans.append(("read", entered, time.monotonic()))
    return spans


def test_processes_writing_and_reading_at_once_take_turns_and_never_fail(tmp_path):
    database = tmp_path / "warehouse.duckdb"
    with connect(database) as con:
        con.execute("CREATE TABLE log (seq INTEGER, process INTEGER)")
    # spawn: a forked child would inherit this process's DuckDB state
    with multiprocessing.get_context("spawn").Pool(PROCESSES) as pool:
        parts = pool.starmap(_write_then_read, [(database, process) for process in range(PROCESSES)])
    spans = [span for part in parts for span in part]
    writes = sorted((entered, left) for kind, entered, left in spans if kind == "write")
    reads = [(entered, left) for kind, entered, left in spans if kind == "read"]
    assert len(writes) == len(reads) == PROCESSES * ROUNDS
    assert all(left <= next_entered for (_, left), (next_entered, _) in pairwise(writes))  # one at a time
    assert not [read for read in reads for write in writes if read[0] < write[1] and write[0] < read[1]]  # nor beside
    with connect(database, read_only=True) as con:
        log = con.execute("SELECT seq, process FROM log ORDER BY seq").df()
    assert log["seq"].tolist() == list(range(1, PROCESSES * ROUNDS + 1))
    assert log["process"].value_counts().sort_index().tolist() == [ROUNDS] * PROCESSES


WRITER = textwrap.dedent(
    """
    import sys
    from krnn_core.warehouse import connect

    print("connecting", flush=True)
    with connect(sys.argv[1]) as con:
        con.execute("INSERT INTO log VALUES (1, 1)")
    """
)
READER = textwrap.dedent(
    """
    import sys
    from krnn_core.warehouse import connect

    with connect(sys.argv[1], read_only=True) as con:
        con.execute("SELECT count(*) FROM log").fetchall()
    """
)


def test_a_writer_waits_for_the_readers_which_share_the_file(tmp_path):
    database = tmp_path / "warehouse.duckdb"
    with connect(database) as con:
        con.execute("CREATE TABLE log (seq INTEGER, process INTEGER)")
    with connect(database, read_only=True):
        other_reader = subprocess.run([sys.executable, "-c", READER, str(database)], cwd=REPO_ROOT, timeout=60)
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(database)], cwd=REPO_ROOT, stdout=subprocess.PIPE)
        assert writer.stdout.readline() == b"connecting\n"
        time.sleep(1.0)
        assert writer.poll() is None, "the writer should wait for the readers, not fail"
    assert writer.wait(timeout=60) == 0
    assert other_reader.returncode == 0
    with connect(database, read_only=True) as con:
        assert con.execute("SELECT * FROM log").fetchall() == [(1, 1)]


def test_a_second_connection_inside_the_first_raises_instead_of_waiting_on_itself(tmp_path):
    database = tmp_path / "warehouse.duckdb"
    with connect(database), pytest.raises(RuntimeError, match="already holds .*warehouse.duckdb.lock"):
        with connect(database, read_only=True):
            pass


def test_rows_come_back_indexed_by_timestamp_and_instrument():
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE t AS SELECT * FROM (VALUES (DATE '2024-01-03', 'SH600000', 1.5), "
        "(DATE '2024-01-02', 'SZ000001', -2.0)) v(datetime, instrument, score)"
    )
    frame = read_indexed(con, "SELECT * FROM t WHERE score > ? ORDER BY ALL", [-5])
    assert frame.index.names == ["datetime", "instrument"]
    assert frame.index.get_level_values("datetime").dtype == "datetime64[ns]"
    assert frame["score"].to_dict() == {
        (pd.Timestamp("2024-01-02"), "SZ000001"): -2.0,
        (pd.Timestamp("2024-01-03"), "SH600000"): 1.5,
    }
    assert read_indexed(con, "SELECT datetime, score FROM t WHERE score > ?", [0], ["datetime"]).index.tolist() == [
        pd.Timestamp("2024-01-03")
    ]


def test_a_file_duckdb_cannot_open_is_named_in_the_error(tmp_path):
    broken = tmp_path / "krnn_signals.duckdb"
    broken.write_bytes(b"written by something else" * 200)

    with pytest.raises(duckdb.IOException, match=f"^{re.escape(str(broken))}: "):
        with connect(broken):
            pass
