"""The idempotent writers: whole reports replace each other in one transaction."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from krnn_core.warehouse import connect, replace_tables


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
