import duckdb
import pandas as pd

from krnn_core.warehouse_reads import read_indexed


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
