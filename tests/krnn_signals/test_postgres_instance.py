"""The pipeline on a team's engines: the Dagster instance of dagster_home_postgres/ and a DuckLake warehouse, both in
a real PostgreSQL cluster (tests/postgres.py)."""

import copy
import json
import shutil

import dagster as dg
import pandas as pd
import yaml

from assets.names import LocationNames
from krnn_core.config import load_config, warehouse_location
from krnn_core.signals.queries import signal_days, top_signals
from krnn_core.signals.read_snapshot import open_snapshot
from krnn_signals.definitions import build_definitions
from krnn_signals.demo import materialize_chain, trading_days_between
from tests.conftest import TEST_CONFIG
from tests.fixtures import REPO_ROOT

# the whole chain of 30 names over six months: one model version of two epochs, the signals of one week
TINY = {
    "source": {"kind": "synthetic", "seed": 5, "n_instruments": 30, "n_members": 20},
    "end_time": "2021-07-09",
    "task": {
        "model": {"class": "KRNN", "kwargs": {"n_epochs": 2, "early_stop": 2, "batch_size": 800, "seed": 3}},
        "dataset": {
            "segments": {
                "train": ["2021-04-01", "2021-05-31"],
                "valid": ["2021-06-01", "2021-06-30"],
                "test": ["2021-07-01", "2021-07-09"],
            }
        },
    },
    "port_analysis_config": {"strategy": {"class": "TopkDropoutStrategy", "kwargs": {"topk": 10, "n_drop": 2}}},
}
ASSETS = ["alpha360_features", "alpha360_labels", "backtest_report", "ic_report", "krnn_model", "qlib_market_data"]
ASSETS = sorted([*ASSETS, "signals"])


def _tiny_lake_config(root, catalog: str):
    """The tiny market's config, its warehouse a DuckLake whose catalog is `catalog`."""
    raw = copy.deepcopy(TEST_CONFIG) | TINY
    del raw["duckdb_path"]
    raw["warehouse"] = {"kind": "ducklake", "catalog": catalog, "data_path": "lake", "schema": "tiny"}
    (root / "config.yaml").write_text(yaml.safe_dump(raw))
    return load_config(root / "config.yaml")


def test_the_chain_runs_on_the_postgres_instance_and_writes_the_ducklake(postgres, tmp_path, monkeypatch):
    config = _tiny_lake_config(tmp_path, postgres.create_database("tiny_lake"))
    postgres.create_database("dagster")
    monkeypatch.setenv("DAGSTER_PG_URL", postgres.url("dagster"))
    (tmp_path / "instance").mkdir()
    shutil.copy(REPO_ROOT / "dagster_home_postgres" / "dagster.yaml", tmp_path / "instance")
    location = build_definitions(config)
    with dg.DagsterInstance.from_config(str(tmp_path / "instance")) as instance:
        queue = instance.get_concurrency_config().run_queue_config
        materialize_chain(instance, "2021-07-09", config, location)
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    assert (queue.max_concurrent_runs, queue.tag_concurrency_limits) == (4, [{"key": "dagster/backfill", "limit": 2}])

    runs = postgres.execute("dagster", "SELECT pipeline_name, status FROM runs ORDER BY create_timestamp")
    jobs = ("market_data_job", "krnn_model_job", "signals_job", "reports_job")
    assert runs == [(LocationNames.of(config).named(job), "SUCCESS") for job in jobs]
    materialized = postgres.execute(
        "dagster", "SELECT DISTINCT asset_key FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'"
    )
    assert sorted(json.loads(key)[-1] for (key,) in materialized) == ASSETS
    # one verdict per check and trading day of a range run, one for an unpartitioned check
    checks = postgres.execute(
        "dagster",
        "SELECT check_name, string_agg(DISTINCT execution_status, ',') FROM asset_check_executions "
        "WHERE execution_status <> 'PLANNED' GROUP BY 1",
    )
    test_days = trading_days_between("2021-07-01", "2021-07-09", location)
    passed = ["bars_are_consistent", "calendar_is_valid", "model_is_recent", "no_unexplained_jumps"]
    passed += ["signals_are_spread", "signals_cover_universe"]
    # both warn: two epochs make a weak model, and the synthetic index lists members before their first bar
    failed = ["rank_ic_holds_up", "universe_is_covered"]
    statuses = {name: set(status.split(",")) for name, status in checks}
    assert sorted(statuses) == sorted(passed + failed)
    assert all(statuses[name] == {"SUCCEEDED"} for name in passed), statuses
    assert all("FAILED" in statuses[name] for name in failed), statuses

    with open_snapshot(warehouse_location(config)) as con:  # the DuckLake, as the CLI reads it
        assert signal_days(con).strftime("%Y-%m-%d").tolist() == test_days
        top = top_signals(con, None, 3)
    assert top["datetime"].tolist() == [pd.Timestamp("2021-07-09")] * 3 and top["rank"].tolist() == [1, 2, 3]
    assert list((tmp_path / "lake").rglob("*.parquet")), "the lake's data files belong under its data_path"
