"""Signal checks run with the signals of a day; thresholds come from the config."""

import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import yaml

from assets.signals import MODEL_AGE_CHECK, SPREAD_CHECK
from krnn_core.alerts import record_alert
from krnn_core.config import load_config
from krnn_core.signals.read_snapshot import open_snapshot
from krnn_signals.demo import run_job
from tests.fixtures import REPO_ROOT

DAY = "2022-06-15"


def _config_with(test_config_path: Path, tmp_path: Path, **monitoring) -> Path:
    raw = yaml.safe_load(test_config_path.read_text())
    base = test_config_path.parent
    for key in ("duckdb_path", "model_dir"):
        raw[key] = str(base / raw[key])
    raw["qlib_init"]["provider_uri"] = str(base / raw["qlib_init"]["provider_uri"])
    raw["monitoring"] = monitoring
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _check_results(config: Path) -> dict[str, dg.AssetCheckEvaluation]:
    with dg.DagsterInstance.ephemeral() as instance:
        try:
            run_job("signals_job", instance, load_config(config), partition_key=DAY)
        except RuntimeError:
            pass  # a failed blocking check fails the run; its evaluation is still recorded
        records = instance.get_records_for_run(
            run_id=instance.get_runs()[0].run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        ).records
    evaluations = [record.event_log_entry.dagster_event.event_specific_data for record in records]
    return {evaluation.check_name: evaluation for evaluation in evaluations}


def test_signal_checks_pass_on_a_healthy_day(pipeline, test_config_path, tmp_path):
    results = _check_results(_config_with(test_config_path, tmp_path))
    assert results[SPREAD_CHECK].passed and results[MODEL_AGE_CHECK].passed
    assert results[SPREAD_CHECK].metadata["min_score_std"].value > 1e-4


def test_collapsed_scores_fail_the_blocking_check_and_an_old_model_warns(pipeline, test_config_path, tmp_path):
    config = _config_with(test_config_path, tmp_path, min_score_std=10.0, max_model_age_days=30)
    results = _check_results(config)
    assert not results[SPREAD_CHECK].passed
    assert results[SPREAD_CHECK].partition == DAY and results[SPREAD_CHECK].metadata["failed_days"].value == 1
    assert results[SPREAD_CHECK].metadata["problems"].value.startswith(f"{DAY}: score std ")
    assert not results[MODEL_AGE_CHECK].passed and results[MODEL_AGE_CHECK].severity == dg.AssetCheckSeverity.WARN


def test_an_alert_waits_for_the_writer_and_reaches_the_snapshot(tmp_path):
    database = tmp_path / "pipeline.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from krnn_core.warehouse import connect\n"
            "with connect(sys.argv[1]): print('held', flush=True); time.sleep(4)",
            str(database),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    started = time.monotonic()
    record_alert(
        database,
        {"source": "run_failure", "run_id": "r1", "job_name": "daily_signals_job", "partition": DAY, "message": "boom"},
    )
    assert time.monotonic() - started > 1  # it had to wait for the other process to let go
    holder.wait()
    with open_snapshot(database) as con:
        assert con.execute("SELECT job_name, partition, message FROM alerts").fetchall() == [
            ("daily_signals_job", DAY, "boom")
        ]
