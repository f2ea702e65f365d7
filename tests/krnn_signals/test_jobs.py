"""The trading-day jobs run their steps in the run's own process; the jobs that train or report keep the default."""

from krnn_signals.definitions import defs


def test_trading_day_jobs_run_in_one_process():
    executors = {job.name: job.executor_def.name for job in defs.resolve_all_job_defs() if job.name != "__ASSET_JOB"}
    assert executors == {
        "market_data_job": "in_process",
        "daily_signals_job": "in_process",
        "signals_job": "in_process",
        "krnn_model_job": "multi_or_in_process_executor",
        "reports_job": "multi_or_in_process_executor",
    }
