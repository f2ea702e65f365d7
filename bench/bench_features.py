"""Qlib's Alpha360 handler against ours on a Qlib folder: time, peak memory, one-day time, agreement.

    .venv/bin/python bench/bench_features.py [--provider DIR] [--market csi300] [--start S] [--end E]

Each side runs in its own child process, which reports its wall time and its own peak RSS:
Qlib = `init_qlib` + `Alpha360(...).fetch(col_set="feature")` without processors; ours = read the
folder + compute + write into a fresh DuckDB file, then the last day again alone (`one_day_s`).
Both read the same folder: the source imported first with our importer (`QlibFolderSource`: lower-case
instrument folders, suspensions as missing bars), as the pipeline's refresh writes it.
The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from shared_data import CSI300_2015_2019

ROOT = Path(__file__).resolve().parents[1]


def imported(source: Path, target: Path) -> Path:
    """The source folder imported through its last day as the pipeline's refresh does it."""
    from krnn_core.data import qlib_store
    from krnn_core.data.sources.qlib_folder import QlibFolderSource

    QlibFolderSource(source).refresh(target, qlib_store.read_calendar(source)[-1])
    return target


def peak_gib() -> float:
    """Peak resident memory of this process so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def run_qlib(provider: Path, market: str, start: pd.Timestamp, end: pd.Timestamp, work: Path) -> dict:
    """Qlib's handler over the range; its frame is pickled for the comparison after the clock stops."""
    from qlib.contrib.data.handler import Alpha360

    from krnn_core.data.qlib_runtime import init_qlib

    started = time.perf_counter()
    init_qlib(provider)
    handler = Alpha360(instruments=market, start_time=start, end_time=end, infer_processors=[], learn_processors=[])
    frame = handler.fetch(col_set="feature")
    seconds = time.perf_counter() - started
    frame.to_pickle(work / "qlib.pkl")
    return {"seconds": seconds, "peak_gib": peak_gib(), "rows": len(frame)}


def run_ours(provider: Path, market: str, start: pd.Timestamp, end: pd.Timestamp, work: Path) -> dict:
    """Ours over the range into a fresh DuckDB file, then the last day alone as a daily run does it."""
    from krnn_core.features.store import materialize_features
    from krnn_core.warehouse import connect

    started = time.perf_counter()
    with connect(work / "ours.duckdb") as con:
        rows = materialize_features(con, provider, market, start, end)
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    with connect(work / "ours.duckdb") as con:
        materialize_features(con, provider, market, end, end)
    one_day = time.perf_counter() - started
    return {"seconds": seconds, "peak_gib": peak_gib(), "rows": rows, "one_day_s": one_day}


def compare(work: Path, start: pd.Timestamp, end: pd.Timestamp) -> tuple[float, bool]:
    """(max |ours - Qlib's| over rows of both, whether the row sets and NaN masks are identical)."""
    from krnn_core.features.store import read_features
    from krnn_core.warehouse import connect

    theirs = pd.read_pickle(work / "qlib.pkl")
    with connect(work / "ours.duckdb", read_only=True) as con:
        ours = read_features(con, start, end)
    common = ours.index.intersection(theirs.index)
    x = ours.x[ours.index.get_indexer(common)]
    expected = theirs.to_numpy(np.float32)[theirs.index.get_indexer(common)]
    same = len(common) == len(ours.index) == len(theirs) and np.array_equal(np.isnan(x), np.isnan(expected))
    return float(np.nanmax(np.abs(x - expected))), same


def child(side: str, args: argparse.Namespace, provider: Path, work: Path) -> dict:
    """Run one side in a fresh Python process and return what it reported."""
    command = [sys.executable, __file__, "--side", side, "--provider", str(provider), "--market", args.market]
    command += ["--start", args.start, "--end", args.end, "--work", str(work)]
    subprocess.run(command, check=True, cwd=ROOT)
    return json.loads((work / f"{side}.json").read_text())


def main() -> None:
    """Parse the arguments; as the parent, run both children and print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--provider", type=Path, default=CSI300_2015_2019)
    parser.add_argument("--market", default="csi300")
    parser.add_argument("--start")
    parser.add_argument("--end")
    parser.add_argument("--side", choices=("qlib", "ours"), help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        run = run_qlib if args.side == "qlib" else run_ours
        report = run(args.provider, args.market, pd.Timestamp(args.start), pd.Timestamp(args.end), args.work)
        (args.work / f"{args.side}.json").write_text(json.dumps(report))
        return
    with tempfile.TemporaryDirectory(prefix="bench-features-") as folder:
        print(json.dumps(summary(args, Path(folder))))


def summary(args: argparse.Namespace, work: Path) -> dict:
    """Both sides on the normalized folder over [start, end] (default: its whole calendar)."""
    from krnn_core.data import qlib_store

    provider = imported(args.provider, work / "qlib_data")
    calendar = qlib_store.read_calendar(provider)
    args.start, args.end = args.start or str(calendar[0].date()), args.end or str(calendar[-1].date())
    qlib, ours = child("qlib", args, provider, work), child("ours", args, provider, work)
    print(f"qlib {qlib}\nours {ours}", file=sys.stderr)
    max_abs_diff, same = compare(work, pd.Timestamp(args.start), pd.Timestamp(args.end))
    if not same or qlib["rows"] != ours["rows"]:
        print("row sets or NaN masks differ between Qlib and ours", file=sys.stderr)
    return {
        "qlib_s": round(qlib["seconds"], 2),
        "ours_s": round(ours["seconds"], 2),
        "speedup": round(qlib["seconds"] / ours["seconds"], 1),
        "qlib_peak_gib": round(qlib["peak_gib"], 2),
        "ours_peak_gib": round(ours["peak_gib"], 2),
        "one_day_s": round(ours["one_day_s"], 3),
        "rows": ours["rows"],
        "max_abs_diff": max_abs_diff,
        "nan_masks_equal": same,
    }


if __name__ == "__main__":
    main()
