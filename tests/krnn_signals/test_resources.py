"""Steps and checks of one run, each in its own process, use the warehouse at once and none fails on its lock.

The run goes through Dagster's multiprocess executor on a fresh instance (no dagster.yaml, so no pools):
two signal checks run beside two checks that write the warehouse over and over, as a backfill would.
"""

import os
import shutil
import time
from pathlib import Path

import dagster as dg
import yaml

from assets.names import LocationNames
from assets.resources import PipelineResource
from assets.signals import COVERAGE_CHECK, SPREAD_CHECK, build_signal_checks, build_signals
from krnn_core.config import load_config
from krnn_core.warehouse import connect
from krnn_signals.partitions import build_trading_days

DAY = "2022-06-15"
HAMMERS = ("hammer_a", "hammer_b")
ROUNDS = 5  # writes each hammer makes once both have started, at least
DEADLINE_S = 90


def _hammer(name: str, signals: dg.AssetKey) -> dg.AssetChecksDefinition:
    """A check that writes and reads the warehouse until every hammer has written ROUNDS rows."""

    @dg.asset_check(asset=signals, name=name)
    def hammer(pipeline: dg.ResourceParam[PipelineResource]) -> dg.AssetCheckResult:
        deadline, counts = time.monotonic() + DEADLINE_S, {}
        while time.monotonic() < deadline and min(counts.get(h, 0) for h in HAMMERS) < ROUNDS:
            with pipeline.duckdb() as con:
                con.execute("CREATE TABLE IF NOT EXISTS hammer_log (name VARCHAR)")
                con.execute("INSERT INTO hammer_log VALUES (?)", [name])
            with pipeline.reader() as con:
                counts = dict(con.execute("SELECT name, count(*) FROM hammer_log GROUP BY name").fetchall())
        return dg.AssetCheckResult(passed=True, metadata={"rows": counts.get(name, 0)})

    return hammer


def hammered_signals_job() -> dg.JobDefinition:
    """The signals of a day and their checks, with the hammers, in a process per step."""
    config = load_config(os.environ["KRNN_CONFIG"])
    trading_days, names = build_trading_days(config), LocationNames.of(config)
    signals = build_signals(trading_days, names)
    checks = [
        *(check for check in build_signal_checks(trading_days, names)
          if {key.name for key in check.check_keys} & {COVERAGE_CHECK, SPREAD_CHECK}),
        *(_hammer(hammer, signals.key) for hammer in HAMMERS),
    ]  # fmt: skip
    job = dg.define_asset_job(
        "hammered_signals_job",
        selection=dg.AssetSelection.assets(signals).without_checks() | dg.AssetSelection.checks(*checks),
        executor_def=dg.multiprocess_executor.configured({"max_concurrent": 8}),
    )
    resources = {"pipeline": PipelineResource(config)}
    return dg.Definitions(assets=[signals], asset_checks=checks, jobs=[job], resources=resources).resolve_job_def(
        job.name
    )


def _warehouse_copy(config_file: Path, tmp_path: Path) -> Path:
    """The test config with its warehouse copied into tmp_path: the hammers' rows stay out of the shared one."""
    raw, base = yaml.safe_load(config_file.read_text()), config_file.parent
    shutil.copy(base / raw["duckdb_path"], tmp_path / "warehouse.duckdb")
    raw |= {"duckdb_path": str(tmp_path / "warehouse.duckdb"), "model_dir": str(base / raw["model_dir"])}
    raw["qlib_init"]["provider_uri"] = str(base / raw["qlib_init"]["provider_uri"])
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    return tmp_path / "config.yaml"


def test_steps_in_separate_processes_take_turns_on_the_warehouse(pipeline, test_config_path, tmp_path, monkeypatch):
    config = _warehouse_copy(test_config_path, tmp_path)
    monkeypatch.setenv("KRNN_CONFIG", str(config))  # read again by each step's process
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.DagsterInstance.local_temp(str(home)) as instance:
        result = dg.execute_job(dg.reconstructable(hammered_signals_job), instance, tags={"dagster/partition": DAY})
        failures = [event.step_failure_data.error.message for event in result.all_events if event.is_step_failure]
        records = instance.get_records_for_run(
            run_id=result.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        ).records
    evaluations = [record.event_log_entry.dagster_event.event_specific_data for record in records]
    assert failures == [] and result.success
    assert not (home / "dagster.yaml").exists()
    assert {evaluation.check_name: evaluation.passed for evaluation in evaluations} == dict.fromkeys(
        ["signals_cover_universe", "signals_are_spread", *HAMMERS], True
    )
    with connect(tmp_path / "warehouse.duckdb", read_only=True) as con:
        counts = dict(con.execute("SELECT name, count(*) FROM hammer_log GROUP BY name").fetchall())
    assert min(counts.values()) >= ROUNDS and set(counts) == set(HAMMERS)
