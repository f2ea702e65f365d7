"""Warehouse rows read into pandas as Qlib indexes its data: by `datetime` (nanosecond Timestamps) and instrument."""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pandas as pd

QLIB_INDEX = ("datetime", "instrument")


def read_indexed(
    con: duckdb.DuckDBPyConnection, sql: str, params: list | dict, index: Sequence[str] = QLIB_INDEX
) -> pd.DataFrame:
    """The rows of `sql`, with its `datetime` column as Timestamps (DuckDB gives dates), indexed by `index`."""
    frame = con.execute(sql, params).df()
    frame["datetime"] = pd.to_datetime(frame["datetime"]).astype("datetime64[ns]")
    return frame.set_index(list(index))
