"""Monitoring of the running pipeline: the signals' freshness by their deadline, and alerts on failed runs."""

import warnings

import dagster as dg

from assets.names import LocationNames
from assets.resources import Pipeline
from krnn_core.alerts import record_alert
from krnn_core.config import PipelineConfig
from krnn_core.data.market_data import EXCHANGE_TIMEZONE
from krnn_signals.sensors import RUN_STATUS_INTERVAL_S


def build_run_failure_alerts(names: LocationNames) -> dg.SensorDefinition:
    """The sensor that records every failed run of the code location's jobs in its warehouse's `alerts`."""
    return dg.run_failure_sensor(
        name=names.named("run_failure_alerts"),
        minimum_interval_seconds=RUN_STATUS_INTERVAL_S,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Every failed run of any job: logged, and appended to the DuckDB alerts table with its error.",
    )(run_failure_alerts)


def run_failure_alerts(context: dg.RunFailureSensorContext, pipeline: Pipeline) -> None:
    """Log every failed run and append it to the `alerts` table."""
    run = context.dagster_run
    message = _failure_message(context)
    context.log.error(f"run {run.run_id} of {run.job_name} failed: {message}")
    alert = {
        "source": "run_failure",
        "run_id": run.run_id,
        "job_name": run.job_name,
        "partition": run.tags.get("dagster/partition"),
        "message": message,
    }
    record_alert(pipeline.warehouse, alert)


def _failure_message(context: dg.RunFailureSensorContext) -> str:
    """The run's failure, then the error behind each failed step: what a reader of `alerts` needs to act."""
    causes = []
    for event in context.get_step_failure_events():
        error = event.step_failure_data.error
        while error is not None and error.cause is not None:  # past Dagster's "Error occurred while executing"
            error = error.cause
        causes.append(f"{event.step_key}: {error.message.strip() if error else 'failed'}")
    return "\n".join([context.failure_event.message or "run failed", *causes])


def build_freshness(
    config: PipelineConfig, names: LocationNames
) -> tuple[list[dg.AssetChecksDefinition], list[dg.SensorDefinition]]:
    """The signals' freshness checks at the configured deadline and the sensor that runs them; none for a finished
    market (`end_time` set), where no day is ever late."""
    if config.end_time:
        return [], []
    # FreshnessPolicy, which supersedes these, measures the time since the last materialization: it would call
    # every exchange holiday late. These checks ask for the latest trading-day partition, so holidays pass.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=dg.SupersessionWarning)
        checks = dg.build_time_partition_freshness_checks(
            assets=[names.key("signals")],
            deadline_cron=config.monitoring.signals_deadline_cron,
            timezone=EXCHANGE_TIMEZONE,
        )
        sensor = dg.build_sensor_for_freshness_checks(
            freshness_checks=checks,
            name=names.named("signals_freshness_sensor"),
            default_status=dg.DefaultSensorStatus.RUNNING,
        )
    return list(checks), [sensor]
