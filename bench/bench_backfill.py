"""Time a backfill of market_data_job over the whole CSI300 snapshot through Dagster against the engines alone.

    .venv/bin/python bench/bench_backfill.py [--source ../shared/data/cn_csi300_2015_2019]

Dagster: a fresh pipeline folder and warehouse, the code location served by its gRPC server, and one
run of `market_data_job` over every trading day (a single-run backfill's range tags) launched through
the instance's run launcher (bench/dagster_runs.py); `backfill_s` is the run's wall time from its
creation to its end. Engines, in the same bench run and afterwards: krnn_core alone does the job's
work: imports the same snapshot into a fresh folder (with the refresh step's quarantine rows, readers'
snapshot and summary), computes the market-data checks' verdicts over the range (the rules the job's
four checks call) and computes and writes the same features and labels into a fresh DuckDB file
(`engines_s` = import + checks + features + labels; `ratio_without_checks` leaves the rules out). Both
stores must hold the same rows. The two sides alternate `--repeats` times, in turn first, each on a
fresh folder removed before the other starts; the figures are medians (this machine's timings vary by
a second run to run).
The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from dagster_runs import ROOT, bench_config, code_server, launch, load_average, remove, run_env, wait_for_run
from krnn_core.config import load_config
from krnn_core.data import qlib_store
from krnn_core.data.market_checks import (
    calendar_problems,
    folder_bar_problems,
    folder_jump_problems,
    universe_problems,
)
from krnn_core.data.market_data import last_closed_session, summarize
from krnn_core.data.quarantine import write_quarantine
from krnn_core.features.store import FEATURES_TABLE, LABELS_TABLE, materialize_features, materialize_labels
from krnn_core.signals.read_snapshot import publish_for_readers
from krnn_core.warehouse import connect
from shared_data import CSI300_2015_2019

RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
TIMEOUT_S = 1800


def engines(source: Path, folder: Path) -> dict[str, float]:
    """krnn_core's own import, check verdicts, features and labels of the whole snapshot, each timed."""
    from krnn_core.data.sources.qlib_folder import QlibFolderSource

    calendar = qlib_store.read_calendar(source)
    provider, warehouse, seconds = folder / "qlib_data", folder / "engines.duckdb", {}
    start, end = calendar[0], calendar[-1]
    with connect(warehouse) as con:
        started = time.perf_counter()
        report = QlibFolderSource(source).refresh(provider, end)
        write_quarantine(con, report.quarantined, report.first_added)  # as qlib_market_data does
        publish_for_readers(con, warehouse)
        summarize(provider, "csi300", start, end)
        seconds["import_s"] = time.perf_counter() - started
        started = time.perf_counter()
        check_verdicts(provider, "csi300", start, end)
        seconds["checks_s"] = time.perf_counter() - started
        started = time.perf_counter()
        materialize_features(con, provider, "csi300", start, end)
        seconds["features_s"] = time.perf_counter() - started
        started = time.perf_counter()
        materialize_labels(con, provider, "csi300", start, end)
        publish_for_readers(con, warehouse)  # as alpha360_labels does
    seconds["labels_s"] = time.perf_counter() - started  # the connection's close (its checkpoint) included
    return seconds


def check_verdicts(provider: Path, market: str, start: pd.Timestamp, end: pd.Timestamp) -> None:
    """Find the problems the market-data checks find over [start, end], by the rules and lookback they call."""
    limits = load_config(ROOT / "configs" / "csi300_2015_2019.yaml").monitoring  # the config the backfill runs
    calendar_problems(qlib_store.read_calendar(provider), last_closed_session())
    folder_bar_problems(provider, market, start, end)
    folder_jump_problems(provider, market, start, end, limits.max_day_move)
    universe_problems(provider, market, start, end, limits.min_coverage)


def row_counts(database: Path) -> dict[str, int]:
    """Rows of the feature, label and quarantine tables."""
    with connect(database, read_only=True) as con:
        tables = (FEATURES_TABLE, LABELS_TABLE, "quarantine")
        return {table: con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in tables}


def backfill(source: Path, scratch: Path) -> dict:
    """market_data_job over the source's whole calendar through the code location's server."""
    calendar = qlib_store.read_calendar(source)
    env = run_env(scratch, bench_config(scratch, source))
    with code_server(scratch, env) as workspace:
        tags = {RANGE_START: str(calendar[0].date()), RANGE_END: str(calendar[-1].date())}
        run = wait_for_run(env, launch(workspace, env, "market_data_job", tags), TIMEOUT_S)
    if run["status"] != "SUCCESS":
        raise RuntimeError(f"market_data_job ended {run['status']}: see {scratch / 'dagster_home'}")
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=CSI300_2015_2019)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    load_before = load_average()
    runs, owns = [], []
    for round_ in range(args.repeats):
        run, own = one_round(args.source, engines_first=round_ % 2 == 1)  # neither side always first
        runs.append(run["wall_s"])
        owns.append(own)
        print(f"steps {json.dumps({key: round(s, 2) for key, s in run['steps_s'].items()})}", file=sys.stderr)
    backfill_s = statistics.median(runs)
    engines_s = statistics.median(sum(own.values()) for own in owns)
    without_checks = statistics.median(sum(own.values()) - own["checks_s"] for own in owns)
    print(
        json.dumps(
            {
                "backfill_s": round(backfill_s, 1),
                "engines_s": round(engines_s, 1),
                "ratio": round(backfill_s / engines_s, 2),
                "ratio_without_checks": round(backfill_s / without_checks, 2),
                **{f"engines_{key}": round(statistics.median(own[key] for own in owns), 1) for key in owns[0]},
                "backfill_runs_s": [round(wall, 1) for wall in runs],
                "engines_runs_s": [round(sum(own.values()), 1) for own in owns],
                "feature_rows": run["rows"][FEATURES_TABLE],
                "label_rows": run["rows"][LABELS_TABLE],
                "load_avg": f"{load_before} -> {load_average()}",
            }
        )
    )


def one_round(source: Path, engines_first: bool) -> tuple[dict, dict[str, float]]:
    """The Dagster run and the engines, each on a fresh folder removed before the other starts; both must
    store the same rows."""
    results, counts = {}, {}
    for side in ("engines", "dagster") if engines_first else ("dagster", "engines"):
        folder = Path(tempfile.mkdtemp(prefix=f"bench-backfill-{side}-"))
        try:
            os.sync()  # the side starts with no other side's writes (each writes ~0.5 GB) or removal pending
            if side == "dagster":
                results[side], database = backfill(source, folder), folder / "krnn_signals.duckdb"
            else:
                results[side], database = engines(source, folder), folder / "engines.duckdb"
            counts[side] = row_counts(database)
        finally:
            # every side starts after a removal: here, writing the Qlib folder's 3,000 files just after
            # others were deleted takes up to 3x as long (0.5 -> 1.6 s)
            remove(folder)
    if counts["dagster"] != counts["engines"]:
        raise RuntimeError(f"the backfill stored {counts['dagster']} rows, the engines {counts['engines']}")
    return results["dagster"] | {"rows": counts["engines"]}, results["engines"]


if __name__ == "__main__":
    main()
