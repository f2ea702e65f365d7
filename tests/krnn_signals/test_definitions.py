import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import yaml

from assets.names import LocationNames
from assets.resources import PipelineResource
from krnn_core.config import ConfigError, load_config
from krnn_core.data import qlib_store
from krnn_core.data.sources.csv_feed import CsvSource
from krnn_core.signals.read_snapshot import open_snapshot
from krnn_signals.definitions import CONFIG, build_definitions, defs
from tests.fixtures import REPO_ROOT

NAMES = LocationNames.of(CONFIG)  # conftest.py's test config: those of the CSV feeds below too

DAYS = pd.bdate_range("2021-03-01", "2021-03-12")
HEADER, ROW = b"date,open,high,low,close,volume\n", b"2021-03-01,10,10.5,9.5,10,1000\n"
BAD_BYTE_ROW = b"2021-03-02,10,10.5,9.5,1\xff0,1000\n"
# file written into a good feed, its bytes, and what the refresh's error says; (None, None): the feed folder is gone
BROKEN_FEEDS = {
    "bad bytes": ("SH600003.csv", HEADER + ROW + BAD_BYTE_ROW, "SH600003.csv: not UTF-8 text"),
    "missing columns": ("SH600003.csv", b"date,open,close\n" + ROW, "SH600003.csv line 1: missing columns high, low"),
    "bad file name": ("SH600003 (1).csv", HEADER + ROW, "SH600003 (1).csv: the file name 'SH600003 (1)' is not an"),
    "header only": ("SH600003.csv", HEADER, "SH600003.csv line 2: no rows after the header"),
    "missing folder": (None, None, "csv: the CSV source folder does not exist"),
}
# the code location's load and a run of its refresh with load_config counted: once per code location
COUNTED_LOAD = """
import dagster as dg
import krnn_core.config as config
calls, load = [], config.load_config
config.load_config = lambda *args, **kwargs: calls.append(args) or load(*args, **kwargs)
from krnn_signals.definitions import defs
with dg.DagsterInstance.ephemeral() as instance:
    run = defs.resolve_job_def("csi300_market_data_job").execute_in_process(
        partition_key="2021-03-08", instance=instance, raise_on_error=False
    )
print("refresh failed on the broken feed:", not run.success)
print("load_config calls:", len(calls))
"""


def _feed_config(root: Path) -> Path:
    """A CSV feed of two instruments over DAYS, its pipeline folder refreshed through DAYS[4]: yesterday."""
    (root / "csv").mkdir()
    for code in ("SH600001", "SH600002"):
        close = np.linspace(10, 11, len(DAYS))
        bars = {"open": close, "high": close * 1.01, "low": close * 0.99, "close": close, "volume": 1e4}
        pd.DataFrame(bars, index=DAYS.rename("date")).to_csv(root / "csv" / f"{code}.csv", date_format="%Y-%m-%d")
    raw = yaml.safe_load(Path(os.environ["KRNN_CONFIG"]).read_text())  # conftest.py's test config
    raw |= {
        "source": {"kind": "csv", "path": "csv"},
        "qlib_init": {"provider_uri": "qlib_data"},
        "start_time": str(DAYS[0].date()),
        "duckdb_path": "w.duckdb",
    }
    (root / "config.yaml").write_text(yaml.safe_dump(raw))
    CsvSource(root / "csv").refresh(root / "qlib_data", DAYS[4])
    return root / "config.yaml"


def _break(feed: Path, name: str | None, data: bytes | None) -> None:
    if name is None:
        feed.rename(feed.with_name("csv_gone"))
    else:
        (feed / name).write_bytes(data)


def _alert_after(instance: dg.DagsterInstance, run: dg.DagsterRun, config_file: Path) -> None:
    """Evaluate the run-failure sensor on `run`, as the daemon does."""
    failure = instance.get_records_for_run(run_id=run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records[0]
    context = dg.build_run_status_sensor_context(
        sensor_name=NAMES.named("run_failure_alerts"),
        dagster_event=failure.event_log_entry.dagster_event,
        dagster_instance=instance,
        dagster_run=run,
        resources={"pipeline": PipelineResource(load_config(config_file))},
    ).for_run_failure()
    defs.resolve_sensor_def(NAMES.named("run_failure_alerts"))(context)


def _schedule_tick(location: dg.Definitions, instance: dg.DagsterInstance, day: pd.Timestamp) -> list[dg.RunRequest]:
    """What the daily schedule requests at 18:00 Shanghai on `day`."""
    # the context opens its own instance from `instance`'s ref: closed with it, or the next repository built
    # would find Dagster's storage of a closed instance
    with dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=(day + pd.Timedelta(hours=18)).tz_localize("Asia/Shanghai"),
        repository_def=location.get_repository_def(),
    ) as context:
        schedule = location.resolve_schedule_def(NAMES.named("daily_signals_schedule"))
        return schedule.evaluate_tick(context).run_requests


@pytest.mark.parametrize("case", BROKEN_FEEDS)
def test_a_broken_feed_fails_only_its_refresh_run_and_raises_an_alert(case, tmp_path):
    config_file = _feed_config(tmp_path)
    name, data, error = BROKEN_FEEDS[case]
    _break(tmp_path / "csv", name, data)
    location = build_definitions(load_config(config_file))
    dg.Definitions.validate_loadable(location)
    with dg.DagsterInstance.local_temp() as instance:  # the schedule reads its runs: it needs an instance with a ref
        day = str(DAYS[5].date())
        result = location.resolve_job_def(NAMES.named("daily_signals_job")).execute_in_process(
            partition_key=day, instance=instance, raise_on_error=False
        )
        _alert_after(instance, result.dagster_run, config_file)
        requests = _schedule_tick(location, instance, DAYS[6])
    failure = result.failure_data_for_node(NAMES.step("qlib_market_data"))
    assert not result.success and error in failure.error.cause.message
    assert result.get_asset_materialization_events() == []  # nothing downstream ran over yesterday's data
    assert qlib_store.read_calendar(tmp_path / "qlib_data")[-1] == DAYS[4]
    with open_snapshot(tmp_path / "w.duckdb") as con:
        [(job, partition, message)] = con.execute("SELECT job_name, partition, message FROM alerts").fetchall()
    assert (job, partition) == (NAMES.named("daily_signals_job"), day) and error in message
    assert [request.partition_key for request in requests] == [str(DAYS[6].date())]  # tomorrow is still scheduled


def test_the_location_loads_its_config_once_and_dagster_validates_it_over_a_broken_feed(tmp_path):
    config_file = _feed_config(tmp_path)
    for number, (name, data, _) in enumerate(BROKEN_FEEDS.values()):
        if name:  # every broken file at once, each under a name of its own
            _break(tmp_path / "csv", name.replace("SH600003", f"SH60010{number}"), data)
    env = os.environ | {"KRNN_CONFIG": str(config_file), "DAGSTER_HOME": str(tmp_path)}
    counted = subprocess.run(
        [sys.executable, "-c", COUNTED_LOAD], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert counted.returncode == 0, counted.stderr[-3000:]
    assert counted.stdout.splitlines()[-2:] == ["refresh failed on the broken feed: True", "load_config calls: 1"]
    dagster = Path(sys.executable).parent / "dagster"
    validate = [str(dagster), "definitions", "validate", "-m", "krnn_signals.definitions"]
    result = subprocess.run(validate, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr


def _workspace_command(*command: str) -> subprocess.CompletedProcess:
    """A dagster command on the repository's workspace.yaml, as `make validate` and `make serve` load it."""
    env = os.environ | {"DAGSTER_HOME": str(REPO_ROOT / "dagster_home")}
    executable = Path(sys.executable).parent / command[0]
    workspace = [str(executable), *command[1:], "-w", "workspace.yaml"]
    return subprocess.run(workspace, cwd=REPO_ROOT, env=env, capture_output=True, text=True)


def test_dagster_validates_the_workspace_of_two_markets():
    result = _workspace_command("dagster", "definitions", "validate")
    assert result.returncode == 0, result.stdout + result.stderr
    for location in ("krnn_signals.definitions", "krnn_signals.markets:synthetic_csi500"):
        assert f"Validation successful for code location {location}" in result.stdout + result.stderr


def test_the_workspace_lists_each_markets_assets_under_its_own_keys():
    query = "{ assetNodes { assetKey { path } jobNames repository { location { name } } } }"
    result = _workspace_command("dagster-graphql", "-t", query)
    assert result.returncode == 0, result.stderr
    # Dagster keeps one location's asset of a key that two define, and only warns
    assert "in multiple code locations" not in result.stderr
    (answer,) = [line for line in result.stdout.splitlines() if line.startswith("{")]  # among the code servers' logs
    nodes = json.loads(answer)["data"]["assetNodes"]
    listed = {(node["repository"]["location"]["name"], "/".join(node["assetKey"]["path"])) for node in nodes}
    stages = ("qlib_market_data", "alpha360_features", "alpha360_labels", "krnn_model_search", "krnn_model", "signals")
    stages += ("ic_report", "backtest_report")
    # the default location runs conftest.py's config here, whose market is csi300 as configs/default.yaml's
    assert listed == {("krnn_signals.definitions", f"csi300/{stage}") for stage in stages} | {
        ("krnn_signals.markets:synthetic_csi500", f"csi500/{stage}") for stage in stages
    }
    signals_jobs = {job for node in nodes if node["assetKey"]["path"][1] == "signals" for job in node["jobNames"]}
    assert {"csi300_daily_signals_job", "csi500_daily_signals_job"} <= signals_jobs


def test_a_location_s_import_time_objects_are_kept_out_of_a_run_s_garbage_collections():
    for module, attribute in (("krnn_signals.definitions", "defs"), ("krnn_signals.markets", "synthetic_csi500")):
        code = f"import gc, {module}; {module}.{attribute}; print(gc.get_freeze_count(), len(gc.get_objects()))"
        done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
        frozen, tracked = map(int, done.stdout.split())
        assert frozen > 100_000 and tracked < frozen / 10, module  # Dagster's, pandas' and the location's


def test_a_market_location_is_its_config_in_configs_named_by_the_attribute():
    from krnn_signals import markets

    config = load_config(REPO_ROOT / "configs" / "synthetic_csi500.yaml")
    keys = markets.synthetic_csi500.resolve_asset_graph().get_all_asset_keys()
    assert {key.path[0] for key in keys} == {"csi500"} and len(keys) == 8
    assert (config.market, config.benchmark, config.source.skip_largest) == ("csi500", "SH000905", 300)
    assert config.duckdb_path != CONFIG.duckdb_path and config.duckdb_path.parent.name == "synthetic_csi500"
    with pytest.raises(ConfigError, match=r"configs/csi1000\.yaml: cannot read config"):
        markets.csi1000  # noqa: B018


def test_every_stage_is_an_asset_and_the_daily_job_ends_with_signals():
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys == {
        "csi300/qlib_market_data",
        "csi300/alpha360_features",
        "csi300/alpha360_labels",
        "csi300/krnn_model_search",
        "csi300/krnn_model",
        "csi300/signals",
        "csi300/ic_report",
        "csi300/backtest_report",
    }
    job = defs.resolve_job_def("csi300_daily_signals_job")
    steps = {node.name for node in job.graph.node_defs}
    assert steps >= {"csi300__qlib_market_data", "csi300__alpha360_features", "csi300__signals"}


def test_a_model_trains_each_seed_as_its_own_step_in_the_gpu_pool():
    model = defs.resolve_assets_def(dg.AssetKey(["csi300", "krnn_model"]))
    steps = {node.name: node for node in model.node_def.node_defs}
    assert list(steps) == ["training_plan", "train_seed_0", "record_version"]  # the test config: one seed
    assert steps["train_seed_0"].pool == "gpu"
    assert {key.to_user_string() for key in model.dependency_keys} >= {
        "csi300/alpha360_labels",
        "csi300/krnn_model_search",
    }
    search_job = defs.resolve_job_def("csi300_krnn_model_search_job")
    assert {node.name for node in search_job.graph.node_defs} == {"csi300__krnn_model_search", "csi300__krnn_model"}
