"""Measure DuckDB layouts for Alpha360 rows: storage size, full read into float32, one-day read.

    .venv/bin/python bench/bench_layout.py --provider DIR [--market csi300]

Layouts: `wide` (360 FLOAT columns), `wide_pk` (wide with a PRIMARY KEY (datetime, instrument)
index), `array` (one FLOAT[360] column), `array_uncompressed` (the feature store's own table and
write: `ensure_schema` and `write_features`, DuckDB's float compression off) and `array_named` (the
array plus 360 virtual generated columns named like Qlib's).
Rows are inserted sorted by (datetime, instrument), in one INSERT streamed chunk by chunk as the
feature store writes them (`warehouse.replace_rows_streamed`), and checkpointed. The full read of an
array layout is the feature store's `read_features` (which also builds the (datetime, instrument)
index); a wide layout's stitches its 360 columns.
DIR is a Qlib folder as the pipeline writes it, e.g. data/csi300_2015_2019/qlib_data after
`make demo CONFIG=configs/csi300_2015_2019.yaml`.
The last line is JSON: layout -> {"mib", "write_s", "full_read_s", "one_day_read_s"}.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from krnn_core.features.alpha360 import ALPHA360_COLUMNS, alpha360_chunks, load_panel
from krnn_core.features.store import FEATURES_TABLE, arrow_rows, ensure_schema, read_features, write_features
from krnn_core.warehouse import replace_rows_streamed

STORE = "array_uncompressed"  # the feature store's layout
_KEYS = "datetime DATE NOT NULL, instrument VARCHAR NOT NULL"
_WIDE = ", ".join(f"{name} FLOAT" for name in ALPHA360_COLUMNS)
LAYOUTS = {
    "wide": f"CREATE TABLE {FEATURES_TABLE} ({_KEYS}, {_WIDE})",
    "wide_pk": f"CREATE TABLE {FEATURES_TABLE} ({_KEYS}, {_WIDE}, PRIMARY KEY (datetime, instrument))",
    "array": f"CREATE TABLE {FEATURES_TABLE} ({_KEYS}, x FLOAT[360])",
    STORE: None,  # ensure_schema
    "array_named": f"CREATE TABLE {FEATURES_TABLE} ({_KEYS}, x FLOAT[360], "
    + ", ".join(f"{name} FLOAT AS (x[{j + 1}])" for j, name in enumerate(ALPHA360_COLUMNS))
    + ")",
}


def wide_rows(index: pd.MultiIndex, x: np.ndarray) -> pa.Table:
    """Rows of one chunk as an Arrow table of the keys and 360 FLOAT columns."""
    keys = arrow_rows(index, x).select(["datetime", "instrument"])
    columns = np.ascontiguousarray(x.T)  # each column contiguous: zero-copy Arrow arrays
    values = [pa.array(column) for column in columns]
    return pa.Table.from_arrays([*keys.columns, *values], names=[*keys.column_names, *ALPHA360_COLUMNS])


def write(con: duckdb.DuckDBPyConnection, layout: str, chunks: list, days: tuple[pd.Timestamp, pd.Timestamp]) -> None:
    """The chunks streamed into one INSERT: the feature store's own write for its layout."""
    if layout == STORE:
        write_features(con, chunks, *days)
        return
    to_rows = arrow_rows if layout.startswith("array") else wide_rows
    replace_rows_streamed(con, FEATURES_TABLE, (to_rows(index, x) for index, x in chunks), "true")


def full_read(con: duckdb.DuckDBPyConnection, layout: str, days: tuple[pd.Timestamp, pd.Timestamp]) -> np.ndarray:
    """Every stored row as a (rows, 360) float32 array, in (datetime, instrument) order."""
    if layout.startswith("array"):
        return read_features(con, *days).x
    sql = f"SELECT {', '.join(ALPHA360_COLUMNS)} FROM {FEATURES_TABLE} ORDER BY datetime, instrument"
    table = con.sql(sql).to_arrow_table()
    out = np.empty((table.num_rows, len(ALPHA360_COLUMNS)), dtype=np.float32)
    for j, column in enumerate(table.columns):
        out[:, j] = column.to_numpy()
    return out


def measure(path: Path, layout: str, chunks: list, days: tuple[pd.Timestamp, pd.Timestamp], day) -> dict[str, float]:
    """Write the chunks into a fresh file in `layout` and time the reads."""
    with duckdb.connect(str(path)) as con:
        if layout == STORE:
            ensure_schema(con)
        else:
            con.execute(LAYOUTS[layout])
        started = time.perf_counter()
        write(con, layout, chunks, days)
        con.execute("CHECKPOINT")
        write_s = time.perf_counter() - started
    with duckdb.connect(str(path), read_only=True) as con:
        started = time.perf_counter()
        x = full_read(con, layout, days)
        full_s = time.perf_counter() - started
        started = time.perf_counter()
        values = "x" if layout.startswith("array") else ", ".join(ALPHA360_COLUMNS)
        sql = f"SELECT datetime, instrument, {values} FROM {FEATURES_TABLE} WHERE datetime = $day"
        con.sql(sql, params={"day": day}).to_arrow_table()
        day_s = time.perf_counter() - started
    assert x.shape[0] == sum(len(c[1]) for c in chunks)
    mib = path.stat().st_size / 2**20
    return {
        "mib": round(mib, 1),
        "write_s": round(write_s, 2),
        "full_read_s": round(full_s, 2),
        "one_day_read_s": round(day_s, 4),
    }


def main() -> None:
    """Compute the folder's features once, then measure every layout on them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--provider", required=True)
    parser.add_argument("--market", default="csi300")
    args = parser.parse_args()
    panel = load_panel(args.provider, args.market)
    chunks = list(alpha360_chunks(panel, 0, len(panel.calendar) - 1))
    days = (panel.calendar[0], panel.calendar[-1])
    day = panel.calendar[len(panel.calendar) // 2].date()
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for layout in LAYOUTS:
            results[layout] = measure(Path(folder) / f"{layout}.duckdb", layout, chunks, days, day)
            print(layout, results[layout], flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
