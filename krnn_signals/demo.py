"""Materialize the whole chain through Dagster up to a day: what `make demo` and the tests run."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path

import dagster as dg
import pandas as pd

# in-process runs the way execute_in_process makes them, but recorded as runs of the code location
from dagster._core.definitions.job_base import InMemoryJob
from dagster._core.execution.api import execute_run
from dagster._core.execution.build_resources import wrap_resources_for_execution
from dagster._core.execution.execute_in_process import merge_run_tags
from dagster._core.remote_origin import RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.workspace.load import location_origins_from_yaml_paths

from assets.names import LocationNames
from assets.resources import PipelineResource
from krnn_core.config import PipelineConfig
from krnn_core.data.market_data import last_closed_session
from krnn_signals.definitions import CONFIG, defs

RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
WORKSPACE = Path(__file__).resolve().parents[1] / "workspace.yaml"  # the code locations `make serve` serves
_QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}  # no per-step DEBUG events on the terminal


def trading_days_between(first: str, last: str, location: dg.Definitions = defs) -> list[str]:
    """The trading-day partition keys in [first, last] of a code location, by default the default one."""
    trading_days = location.resolve_assets_def(_names(location).key("signals")).partitions_def
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
    periods = defs.resolve_assets_def(_names(defs).key("krnn_model")).partitions_def.get_partition_keys()
    if period not in periods:
        raise SystemExit(f"{period} is not a retraining period; they are {', '.join(periods)}")
    with dg.DagsterInstance.get() as instance:
        run_job("krnn_model_search_job", instance, CONFIG, partition_key=period)
    return CONFIG


def materialize_chain(
    instance: dg.DagsterInstance, last_day: str, config: PipelineConfig, location: dg.Definitions = defs
) -> None:
    """Market data for every day, one model per retraining period, test-segment signals, reports: the jobs of
    `location` (by default the default code location) run on `config`."""
    days = trading_days_between(str(config.start_time), last_day, location)
    test_days = [day for day in days if day >= str(config.task.dataset.segments.test[0])]
    run = partial(run_job, instance=instance, config=config, location=location)
    run("market_data_job", tags={RANGE_START: days[0], RANGE_END: days[-1]})
    periods = location.resolve_assets_def(_names(location).key("krnn_model")).partitions_def
    for period in periods.get_partition_keys():
        if period <= last_day:
            run("krnn_model_job", partition_key=period)
    run("signals_job", tags={RANGE_START: test_days[0], RANGE_END: test_days[-1]})
    run("reports_job")


def run_job(
    job_name: str,
    instance: dg.DagsterInstance,
    config: PipelineConfig,
    partition_key: str | None = None,
    tags: Mapping[str, str] | None = None,
    location: dg.Definitions = defs,
) -> None:
    """Run a job of a code location (`market_data_job`, ..., as krnn_signals.jobs names them) in this process on
    `config`, recorded in `instance`; fail loudly.

    A run of the default location carries its origin, as a run launched from the UI does: without it the UI's
    timeline leaves the run out (execute_in_process records none).
    """
    print(f"== {job_name} {partition_key or tags or ''}", flush=True)
    location_job = location.resolve_job_def(_names(location).named(job_name))
    resources = wrap_resources_for_execution({"pipeline": PipelineResource(config)})
    job = InMemoryJob(location_job.as_ephemeral_job(resource_defs=resources, input_values={}))
    run = instance.create_run_for_job(
        job.get_definition(),
        run_config=_QUIET,
        tags=merge_run_tags(location_job, partition_key, tags, None, instance, _QUIET),
        remote_job_origin=_default_location_job_origin(location_job.name) if location is defs else None,
    )
    if not execute_run(job, run, instance).success:
        raise RuntimeError(f"{location_job.name} failed (run {run.run_id}): see its events in the Dagster UI")


def _names(location: dg.Definitions) -> LocationNames:
    """The names of a code location's definitions: its config's."""
    return LocationNames.of(location.resources["pipeline"].config)


def _default_location_job_origin(job_name: str) -> RemoteJobOrigin:
    """Where the UI finds the job: in the repository of workspace.yaml's krnn_signals.definitions."""
    (location,) = [
        origin
        for origin in location_origins_from_yaml_paths([str(WORKSPACE)])
        if origin.loadable_target_origin.module_name == "krnn_signals.definitions"
    ]
    return RemoteJobOrigin(RemoteRepositoryOrigin(location, defs.get_repository_def().name), job_name)
