"""Time a backfill of market_data_job over the whole CSI300 snapshot through Dagster against the engines alone.

    .venv/bin/python bench/bench_backfill.py [--source ../shared/data/cn_csi300_2015_2019]

Dagster: a fresh pipeline folder and warehouse, the code location served by its gRPC server, and one
run of `market_data_job` over every trading day (a single-run backfill's range tags) launched through
the instance's run launcher (bench/dagster_runs.py); `backfill_s` is the run's wall time from its
creation to its end. Engines, in the same bench run and afterwards: krnn_core alone imports the same
snapshot into a fresh folder and computes and writes the same features and labels into a fresh DuckDB
file (`engines_s` = import + features + labels). Both stores must hold the same rows.
The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from dagster_runs import bench_config, code_server, launch, load_average, remove, run_env, wait_for_run
from krnn_core.data import qlib_store
from krnn_core.features.store import FEATURES_TABLE, LABELS_TABLE, materialize_features, materialize_labels
from krnn_core.warehouse import connect
from shared_data import CSI300_2015_2019

RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
TIMEOUT_S = 1800


def engines(source: Path, folder: Path) -> dict[str, float]:
    """krnn_core's own import, features and labels of the whole snapshot, each timed."""
    from krnn_core.data.sources.qlib_folder import QlibFolderSource

    calendar = qlib_store.read_calendar(source)
    provider, seconds = folder / "qlib_data", {}
    started = time.perf_counter()
    QlibFolderSource(source).refresh(provider, calendar[-1])
    seconds["import_s"] = time.perf_counter() - started
    with connect(folder / "engines.duckdb") as con:
        started = time.perf_counter()
        materialize_features(con, provider, "csi300", calendar[0], calendar[-1])
        seconds["features_s"] = time.perf_counter() - started
        started = time.perf_counter()
        materialize_labels(con, provider, "csi300", calendar[0], calendar[-1])
        seconds["labels_s"] = time.perf_counter() - started
    return seconds


def row_counts(database: Path) -> dict[str, int]:
    """Rows of the feature and label tables."""
    with connect(database, read_only=True) as con:
        tables = (FEATURES_TABLE, LABELS_TABLE)
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
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-backfill-"))
    load_before = load_average()
    os.sync()  # each side starts with no other side's writes still going to disk (each writes ~0.5 GB)
    run = backfill(args.source, scratch / "dagster")
    os.sync()
    own = engines(args.source, scratch / "engines")
    counts = row_counts(scratch / "dagster" / "krnn_signals.duckdb"), row_counts(scratch / "engines" / "engines.duckdb")
    remove(scratch)
    print(f"steps {json.dumps({key: round(s, 2) for key, s in run['steps_s'].items()})}", file=sys.stderr)
    if counts[0] != counts[1]:
        raise RuntimeError(f"the backfill stored {counts[0]} rows, the engines {counts[1]}")
    engines_s = sum(own.values())
    print(
        json.dumps(
            {
                "backfill_s": round(run["wall_s"], 1),
                "engines_s": round(engines_s, 1),
                "ratio": round(run["wall_s"] / engines_s, 2),
                "steps_s": round(sum(run["steps_s"].values()), 1),
                **{f"engines_{key}": round(value, 1) for key, value in own.items()},
                "feature_rows": counts[1][FEATURES_TABLE],
                "label_rows": counts[1][LABELS_TABLE],
                "load_avg": f"{load_before} -> {load_average()}",
            }
        )
    )


if __name__ == "__main__":
    main()
