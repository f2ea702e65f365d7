"""What each run of the code location costs before its steps' work: its processes, and what they import."""

import subprocess
import sys

from assets.names import LocationNames
from krnn_signals.definitions import CONFIG, defs
from tests.fixtures import REPO_ROOT


def test_trading_day_jobs_run_in_one_process():
    names = LocationNames.of(CONFIG)
    executors = {
        job.name.removeprefix(names.named("")): job.executor_def.name
        for job in defs.resolve_all_job_defs()
        if job.name != "__ASSET_JOB"
    }
    assert executors == {
        "market_data_job": "in_process",
        "daily_signals_job": "in_process",
        "signals_job": "in_process",
        "krnn_model_job": "multi_or_in_process_executor",
        "krnn_model_search_job": "multi_or_in_process_executor",
        "reports_job": "multi_or_in_process_executor",
    }


def test_trading_day_runs_print_no_debug_line_per_partition():
    for name in ("market_data_job", "daily_signals_job", "signals_job"):
        run_config = defs.resolve_job_def(
            LocationNames.of(CONFIG).named(name)
        ).partitioned_config.get_run_config_for_partition_key("2024-06-03")
        assert run_config["loggers"]["console"]["config"]["log_level"] == "INFO", name


def test_loading_the_code_location_does_not_import_torch():
    # a run worker loads the code location first: torch would add 1-3 s to every run, backfills included
    code = "import sys, krnn_signals.definitions; print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))"
    loaded = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
