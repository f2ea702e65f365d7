"""Alpha360 computed by numpy sliding windows (ours) and by DuckDB window functions, from the same panel.

    .venv/bin/python bench/bench_alpha360_engines.py [--provider DIR] [--market csi300]

The folder is imported with our importer first. Both engines start from the same (day, instrument,
field) panel in memory and stop at the rows in memory, so the figure is the engine alone: reading the
folder and writing DuckDB are the same for both. DuckDB reads the panel as a long table of
(position, instrument, 6 fields, member) and builds each row's 60-day lists with
`list(f) OVER (PARTITION BY instrument ORDER BY position ROWS 59 PRECEDING)`. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from krnn_core.features.alpha360 import FIELDS, LAGS, alpha360_chunks, load_panel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_features import imported  # noqa: E402  the same import of the folder as the feature bench
from shared_data import CSI300_2015_2019  # noqa: E402

_WINDOW = f"(PARTITION BY instrument ORDER BY position ROWS {LAGS - 1} PRECEDING)"
# a lag before the instrument's first stored day is missing: pad the window to 60 on the old side
_LAGGED = ", ".join(
    f"list_concat(list_resize([]::FLOAT[], {LAGS} - count(*) OVER w, 'NaN'::FLOAT), list({f}) OVER w) AS {f}_w"
    for f in FIELDS
)
_DIVIDED = ", ".join(
    f"list_transform({f}_w, lambda v: v / close)"
    if f != "volume"
    else "list_transform(volume_w, lambda v: v / (volume + 1e-12))"
    for f in FIELDS
)
SQL = f"""
SELECT position, instrument, flatten([{_DIVIDED}])::FLOAT[{LAGS * len(FIELDS)}] AS x
FROM (SELECT position, instrument, member, close, volume, {_LAGGED} FROM panel WINDOW w AS {_WINDOW})
WHERE member ORDER BY position, instrument
"""


def numpy_engine(panel) -> tuple[float, np.ndarray]:
    """Seconds and the (rows, 360) array of our numpy engine over the whole panel."""
    started = time.perf_counter()
    x = np.concatenate([x for _, x in alpha360_chunks(panel, 0, len(panel.calendar) - 1)])
    return time.perf_counter() - started, x


def duckdb_engine(panel) -> tuple[float, np.ndarray]:
    """Seconds and the (rows, 360) array of the window-function query over the same panel."""
    days, codes = panel.values.shape[:2]
    long = {"position": np.repeat(np.arange(days, dtype=np.int32), codes), "instrument": np.tile(panel.codes, days)}
    long |= {f: panel.values[:, :, j].ravel() for j, f in enumerate(FIELDS)}
    long["member"] = panel.member.ravel()
    table = pa.table(long)
    con = duckdb.connect()
    con.register("panel", table)
    started = time.perf_counter()
    result = con.sql(SQL).to_arrow_table()
    seconds = time.perf_counter() - started
    flat = result["x"].combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return seconds, flat.astype(np.float32).reshape(len(result), -1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--provider", type=Path, default=CSI300_2015_2019)
    parser.add_argument("--market", default="csi300")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-engines-") as folder:
        panel = load_panel(imported(args.provider, Path(folder) / "qlib_data"), args.market)
    numpy_s, ours = numpy_engine(panel)
    duckdb_s, theirs = duckdb_engine(panel)
    same_nan = ours.shape == theirs.shape and np.array_equal(np.isnan(ours), np.isnan(theirs))
    scale = np.maximum(np.abs(ours), 1e-6)
    relative = float(np.nanmax(np.abs(ours - theirs) / scale)) if same_nan else float("nan")
    result = {"numpy_s": round(numpy_s, 3), "duckdb_s": round(duckdb_s, 3), "rows": len(ours)}
    print(json.dumps(result | {"nan_masks_equal": same_nan, "max_rel_diff": relative}))


if __name__ == "__main__":
    main()
