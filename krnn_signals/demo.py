"""Materialize the whole chain through Dagster up to a day: what `make demo` and the tests run."""

from __future__ import annotations

import dagster as dg
import pandas as pd

from assets.resources import PipelineResource
from krnn_core.config import PipelineConfig
from krnn_core.data.market_data import last_closed_session
from krnn_signals.definitions import CONFIG, defs

RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
_QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}  # no per-step DEBUG events on the terminal


def trading_days_between(first: str, last: str) -> list[str]:
    """The trading-day partition keys in [first, last]."""
    trading_days = defs.resolve_assets_def("signals").partitions_def
    return [key for key in trading_days.get_partition_keys() if first <= key <= last]


def demo_last_day(config: PipelineConfig) -> str:
    """The end of the test segment, or the last closed session when the segment is open-ended."""
    test_end = config.task.dataset.segments.test[1]
    last = min(pd.Timestamp(test_end or last_closed_session()), last_closed_session())
    return trading_days_between(str(config.start_time), str(last.date()))[-1]


def run_demo() -> PipelineConfig:
    """The whole chain of the code location's config up to its last demo day, in the Dagster instance; its config."""
    with dg.DagsterInstance.get() as instance:
        materialize_chain(instance, demo_last_day(CONFIG), CONFIG)
    return CONFIG


def run_model_search(period: str) -> PipelineConfig:
    """krnn_model_search_job for one retraining period in the Dagster instance: the search, then the period's model."""
    periods = defs.resolve_assets_def("krnn_model").partitions_def.get_partition_keys()
    if period not in periods:
        raise SystemExit(f"{period} is not a retraining period; they are {', '.join(periods)}")
    with dg.DagsterInstance.get() as instance:
        run_job("krnn_model_search_job", instance, CONFIG, partition_key=period)
    return CONFIG


def materialize_chain(instance: dg.DagsterInstance, last_day: str, config: PipelineConfig) -> None:
    """Market data for every day, one model per retraining period, test-segment signals, reports."""
    days = trading_days_between(str(config.start_time), last_day)
    test_days = [day for day in days if day >= str(config.task.dataset.segments.test[0])]
    run_job("market_data_job", instance, config, tags={RANGE_START: days[0], RANGE_END: days[-1]})
    for period in defs.resolve_assets_def("krnn_model").partitions_def.get_partition_keys():
        if period <= last_day:
            run_job("krnn_model_job", instance, config, partition_key=period)
    run_job("signals_job", instance, config, tags={RANGE_START: test_days[0], RANGE_END: test_days[-1]})
    run_job("reports_job", instance, config)


def run_job(job_name: str, instance: dg.DagsterInstance, config: PipelineConfig, **kwargs) -> None:
    """Run one of the code location's jobs in this process on `config`, recorded in `instance`; fail loudly."""
    print(f"== {job_name} {kwargs.get('partition_key') or kwargs.get('tags') or ''}", flush=True)
    result = defs.resolve_job_def(job_name).execute_in_process(
        instance=instance,
        resources={"pipeline": PipelineResource(config)},
        run_config=_QUIET,
        raise_on_error=False,
        **kwargs,
    )
    if not result.success:
        raise RuntimeError(f"{job_name} failed (run {result.run_id}): see its events in the Dagster UI")
