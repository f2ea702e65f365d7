"""Measure DuckDB layouts for Alpha360 rows: storage size, full read into float32, one-day read.

    .venv/bin/python bench/bench_layout.py --provider DIR [--market csi300]

Layouts: `wide` (360 FLOAT columns), `wide_pk` (wide with a PRIMARY KEY (datetime, instrument)
index), `array` (one FLOAT[360] column), `array_uncompressed` (the same, written with DuckDB's float
compression off) and `array_named` (the array plus 360 virtual generated columns named like Qlib's).
Rows are inserted sorted by (datetime, instrument), in one INSERT streamed chunk by chunk as the
feature store writes them, and checkpointed.
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
import pyarrow as pa

from krnn_core.alpha360 import ALPHA360_COLUMNS, alpha360_chunks, load_panel

_WIDE = ", ".join(f"{name} FLOAT" for name in ALPHA360_COLUMNS)
LAYOUTS = {
    "wide": f"CREATE TABLE t (datetime DATE NOT NULL, instrument VARCHAR NOT NULL, {_WIDE})",
    "wide_pk": f"CREATE TABLE t (datetime DATE, instrument VARCHAR, {_WIDE}, PRIMARY KEY (datetime, instrument))",
    "array": "CREATE TABLE t (datetime DATE NOT NULL, instrument VARCHAR NOT NULL, x FLOAT[360])",
    "array_uncompressed": "CREATE TABLE t (datetime DATE NOT NULL, instrument VARCHAR NOT NULL, x FLOAT[360]);"
    "SET force_compression = 'uncompressed'",
    "array_named": "CREATE TABLE t (datetime DATE NOT NULL, instrument VARCHAR NOT NULL, x FLOAT[360], "
    + ", ".join(f"{name} FLOAT AS (x[{j + 1}])" for j, name in enumerate(ALPHA360_COLUMNS))
    + ")",
}


def arrow_rows(index, x: np.ndarray, layout: str) -> pa.Table:
    """Rows of one chunk as an Arrow table in the layout's columns."""
    keys = {"datetime": pa.array(index.get_level_values(0).date), "instrument": pa.array(index.get_level_values(1))}
    if layout.startswith("array"):
        return pa.table(keys | {"x": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), len(ALPHA360_COLUMNS))})
    columns = np.ascontiguousarray(x.T)  # each column contiguous: zero-copy Arrow arrays
    return pa.table(keys | {name: pa.array(columns[j]) for j, name in enumerate(ALPHA360_COLUMNS)})


def iter_batches(tables: list[pa.Table]):
    """The record batches of the tables, in order."""
    for table in tables:
        yield from table.to_batches()


def values_sql(layout: str) -> str:
    """The select list of the 360 values in the layout."""
    return "x" if layout.startswith("array") else ", ".join(ALPHA360_COLUMNS)


def full_read(con: duckdb.DuckDBPyConnection, layout: str) -> np.ndarray:
    """Every stored row as a (rows, 360) float32 array, in (datetime, instrument) order."""
    if layout.startswith("array"):
        table = con.sql("SELECT x FROM t ORDER BY datetime, instrument").to_arrow_table()
        return table.column("x").combine_chunks().values.to_numpy(zero_copy_only=False).reshape(-1, 360)
    table = con.sql(f"SELECT {values_sql(layout)} FROM t ORDER BY datetime, instrument").to_arrow_table()
    out = np.empty((table.num_rows, len(ALPHA360_COLUMNS)), dtype=np.float32)
    for j, column in enumerate(table.columns):
        out[:, j] = column.to_numpy()
    return out


def measure(path: Path, layout: str, chunks: list, day) -> dict[str, float]:
    """Write the chunks into a fresh file in `layout` and time the reads."""
    with duckdb.connect(str(path)) as con:
        con.execute(LAYOUTS[layout])
        started = time.perf_counter()
        tables = [arrow_rows(index, x, layout) for index, x in chunks]
        con.register("chunks", pa.RecordBatchReader.from_batches(tables[0].schema, iter_batches(tables)))
        con.execute("INSERT INTO t BY NAME SELECT * FROM chunks")
        con.execute("CHECKPOINT")
        write_s = time.perf_counter() - started
    with duckdb.connect(str(path), read_only=True) as con:
        started = time.perf_counter()
        x = full_read(con, layout)
        full_s = time.perf_counter() - started
        started = time.perf_counter()
        con.sql(
            f"SELECT datetime, instrument, {values_sql(layout)} FROM t WHERE datetime = $day", params={"day": day}
        ).to_arrow_table()
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
    day = panel.calendar[len(panel.calendar) // 2].date()
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for layout in LAYOUTS:
            results[layout] = measure(Path(folder) / f"{layout}.duckdb", layout, chunks, day)
            print(layout, results[layout], flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
