"""After each day's signals: refresh the reports, and train the next period's model when a period ends."""

from collections.abc import Mapping

import dagster as dg
import pandas as pd

from assets.names import LocationNames
from krnn_signals.jobs import AssetJob

# seconds between evaluations of the run-status sensors (Dagster's default is 30): reports follow a day, and an
# alert a failure, within seconds; an evaluation reads only the run events since the last one
RUN_STATUS_INTERVAL_S = 10


def period_starting_after(
    day: str, trading_days: dg.TimeWindowPartitionsDefinition, retraining_periods: dg.TimeWindowPartitionsDefinition
) -> str | None:
    """The retraining period that begins with the trading day after `day`, if one does."""
    next_day = trading_days.get_next_partition_key(day)
    if next_day is None:
        return None
    period = retraining_periods.get_partition_key_for_timestamp(
        pd.Timestamp(next_day, tz=trading_days.timezone).timestamp()
    )
    this = retraining_periods.get_partition_key_for_timestamp(pd.Timestamp(day, tz=trading_days.timezone).timestamp())
    return period if period != this else None


def build_after_daily_signals(
    trading_days: dg.TimeWindowPartitionsDefinition,
    retraining_periods: dg.TimeWindowPartitionsDefinition,
    jobs: Mapping[str, AssetJob],
    names: LocationNames,
) -> dg.SensorDefinition:
    """The sensor over the code location's jobs (krnn_signals.jobs), trading days and retraining periods."""
    daily_signals_job, reports_job, krnn_model_job = (
        jobs[job] for job in ("daily_signals_job", "reports_job", "krnn_model_job")
    )

    @dg.run_status_sensor(
        name=names.named("after_daily_signals"),
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[daily_signals_job],
        request_jobs=[reports_job, krnn_model_job],
        minimum_interval_seconds=RUN_STATUS_INTERVAL_S,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"After each successful {daily_signals_job.name} run: refresh the reports and, on the last "
        "trading day of a retraining period, train the next period's model.",
    )
    def after_daily_signals(context: dg.RunStatusSensorContext) -> list[dg.RunRequest]:
        """Reports follow every successful daily run; the last day of a period also trains the next model."""
        run = context.dagster_run
        requests = [dg.RunRequest(job_name=reports_job.name, run_key=f"reports-after-{run.run_id}")]
        day = run.tags.get("dagster/partition")
        period = period_starting_after(day, trading_days, retraining_periods) if day else None
        if period:
            requests.append(
                dg.RunRequest(job_name=krnn_model_job.name, partition_key=period, run_key=f"krnn_model-{period}")
            )
        return requests

    return after_daily_signals
