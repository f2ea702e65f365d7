"""The demo: materialize the whole chain through Dagster on the configured window, then show the result."""

from __future__ import annotations

import dagster as dg
import pandas as pd

from krnn_core.market_data import last_closed_session
from krnn_signals.config import load_config
from krnn_signals.definitions import defs
from krnn_signals.partitions import retraining_periods, trading_days

RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def demo_days() -> tuple[list[str], list[str]]:
    """All trading-day partitions up to the end of the test segment, and those of the test segment."""
    config = load_config()
    test_start, test_end = config.task.dataset.segments.test
    last = min(pd.Timestamp(test_end or last_closed_session()), last_closed_session())
    days = [key for key in trading_days.get_partition_keys() if pd.Timestamp(key) <= last]
    return days, [key for key in days if pd.Timestamp(key) >= pd.Timestamp(test_start)]


def run_demo(instance: dg.DagsterInstance) -> None:
    """Market data and features for every day, one model per retraining period, signals, reports."""
    days, test_days = demo_days()
    _run("market_data_job", instance, tags={RANGE_START: days[0], RANGE_END: days[-1]})
    for period in retraining_periods.get_partition_keys():
        if period <= test_days[-1]:
            _run("krnn_model_job", instance, partition_key=period)
    _run("signals_job", instance, tags={RANGE_START: test_days[0], RANGE_END: test_days[-1]})
    _run("reports_job", instance)


def _run(job_name: str, instance: dg.DagsterInstance, **kwargs) -> None:
    print(f"== {job_name} {kwargs.get('partition_key') or kwargs.get('tags') or ''}", flush=True)
    result = defs.resolve_job_def(job_name).execute_in_process(instance=instance, **kwargs)
    if not result.success:
        raise SystemExit(f"{job_name} failed: see the run in the Dagster UI")
