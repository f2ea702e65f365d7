"""Time one new trading day of the CSI300 snapshot through Dagster's daily job, launched as the daemon does.

    .venv/bin/python bench/bench_daily.py [--source ../shared/data/cn_csi300_2015_2019]

Prior state, built with krnn_core directly and not timed: the pipeline's Qlib folder imported from the
snapshot through its second-to-last day, the features and labels of that whole history, one KRNN
version for the last year (a short setup: `SETUP_EPOCHS` epoch on 2018Q3, validated on 2018Q4) and
that year's signals up to the day before. A copy of that state is kept for the reference.
Timed: one run of `daily_signals_job` for the snapshot's last day (refresh, features, labels, signals
and every check on them) launched through the instance's run launcher (bench/dagster_runs.py);
`daily_s` is the run's wall time from its creation to its end. Reference, in the same bench run: the
same day's work done by krnn_core alone on the copy (`engines_s`: refresh, features, labels, signals).
The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from dagster_runs import ROOT, bench_config, code_server, launch, load_average, remove, run_env, wait_for_run
from krnn_core.config import PipelineConfig, load_config, market_source, segments
from krnn_core.data import qlib_store
from krnn_core.features.store import materialize_features, materialize_labels
from krnn_core.signals.read_snapshot import publish_snapshot, snapshot_path
from krnn_core.signals.scoring import score_days, write_signals
from krnn_core.warehouse import connect
from shared_data import CSI300_2015_2019

# the model only has to exist: one epoch on a quarter, validated on the next, keeps the setup to seconds
SETUP_EPOCHS = 1
SEGMENTS = {"train": ["2018-07-02", "2018-09-28"], "valid": ["2018-10-08", "2018-12-28"], "test": ["2019-01-02"]}
TIMEOUT_S = 600
PROJECT_CONFIG = ROOT / "configs" / "csi300_2015_2019.yaml"


def setup_changes(source: Path) -> dict:
    """The config keys the bench changes: a short training setup, the test segment through the source's last day."""
    model = yaml.safe_load(PROJECT_CONFIG.read_text())["task"]["model"]
    model["kwargs"] |= {"n_epochs": SETUP_EPOCHS, "early_stop": 1}
    test = [SEGMENTS["test"][0], str(qlib_store.read_calendar(source)[-1].date())]
    return {"task": {"model": model, "dataset": {"segments": SEGMENTS | {"test": test}}}}


def prior_state(config: PipelineConfig) -> pd.Timestamp:
    """The pipeline's state the evening before the last day; returns that last day."""
    import torch

    # setup on one thread: this machine's cores are shared, and torch's two threads on KRNN's small
    # matrices spin against the other tenants (a year of scores: 120 s on two threads under load, 18 s on
    # one); the reference and the timed run keep torch's default
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _prior_state(config)
    finally:
        torch.set_num_threads(threads)


def _prior_state(config: PipelineConfig) -> pd.Timestamp:
    from krnn_core.model.retraining import load_training_data, rolling_windows, scratch_folder, train_model_version
    from krnn_core.model.versions import record_model_versions

    calendar = market_source(config).trading_days()
    day_before, provider = calendar[-2], config.qlib_init.provider_uri
    market_source(config).refresh(provider, day_before)
    windows = rolling_windows(calendar, pd.Timestamp(SEGMENTS["test"][0]), segments(config), config.rolling.rtype)
    with connect(config.duckdb_path) as con:
        materialize_features(con, provider, config.market, calendar[0], day_before)
        materialize_labels(con, provider, config.market, calendar[0], day_before)
        kwargs = config.task.model.kwargs.model_dump()
        with scratch_folder(config.model_dir) as scratch:
            train, valid = load_training_data(con, windows, scratch)
            row = train_model_version(train, valid, config.model_dir, windows, kwargs, log=_quiet)
        record_model_versions(con, [row])
        test_start = calendar[calendar.searchsorted(pd.Timestamp(SEGMENTS["test"][0]))]
        write_signals(con, score_days(con, test_start, day_before), test_start, day_before)
        publish_snapshot(con, snapshot_path(config.duckdb_path))
    return calendar[-1]


def _quiet(message: str) -> None:
    """Training's log lines are not the bench's output."""


def engines(config: PipelineConfig, day: pd.Timestamp) -> float:
    """The day's refresh, features, labels and signals by krnn_core alone."""
    started = time.perf_counter()
    market_source(config).refresh(config.qlib_init.provider_uri, day)
    with connect(config.duckdb_path) as con:
        materialize_features(con, config.qlib_init.provider_uri, config.market, day, day)
        materialize_labels(con, config.qlib_init.provider_uri, config.market, day, day)
        write_signals(con, score_days(con, day, day), day, day)
    return time.perf_counter() - started


def copy_state(state: Path, copy: Path) -> Path:
    """A copy of the prepared state (symlinks kept), with its config pointing into the copy."""
    shutil.copytree(state, copy, symlinks=True, ignore=shutil.ignore_patterns("dagster_home", "*.sock"))
    text = (copy / "config.yaml").read_text().replace(str(state), str(copy))
    (copy / "config.yaml").write_text(text)
    return copy / "config.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=CSI300_2015_2019)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-daily-"))
    config_file = bench_config(scratch / "dagster", args.source, **setup_changes(args.source))
    started = time.perf_counter()
    day = prior_state(load_config(config_file))
    setup_s = time.perf_counter() - started
    reference = load_config(copy_state(scratch / "dagster", scratch / "engines"))
    env = run_env(scratch / "dagster", config_file)
    load_before = load_average()
    with code_server(scratch / "dagster", env) as workspace:
        run_id = launch(workspace, env, "daily_signals_job", {"dagster/partition": str(day.date())})
        run = wait_for_run(env, run_id, TIMEOUT_S)
    if run["status"] != "SUCCESS":
        raise RuntimeError(f"daily_signals_job ended {run['status']}: see {scratch / 'dagster' / 'dagster_home'}")
    engines_s = engines(reference, day)
    print(f"steps {json.dumps({key: round(s, 2) for key, s in run['steps_s'].items()})}", file=sys.stderr)
    remove(scratch)
    print(
        json.dumps(
            {
                "daily_s": round(run["wall_s"], 1),
                "engines_s": round(engines_s, 2),
                "steps_s": round(sum(run["steps_s"].values()), 1),
                "steps": len(run["steps_s"]),
                "day": str(day.date()),
                "setup_s": round(setup_s, 1),
                "load_avg": f"{load_before} -> {load_average()}",
            }
        )
    )


if __name__ == "__main__":
    main()
