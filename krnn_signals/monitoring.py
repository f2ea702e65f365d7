"""Monitoring: checks on each day's signals, their freshness, IC drift, and alerts on failed runs."""

import dagster as dg
import pandas as pd

from krnn_core.alerts import record_alert
from krnn_core.data.market_data import EXCHANGE_TIMEZONE
from krnn_core.signals.scoring import signal_day_stats
from krnn_signals.config import Monitoring
from krnn_signals.partitions import partition_days
from krnn_signals.resources import PipelineResource

SPREAD_CHECK = "signals_are_spread"
MODEL_AGE_CHECK = "model_is_recent"
IC_DRIFT_CHECK = "rank_ic_holds_up"
ROLLING_DAYS = 20


def _days_listed(days: pd.Series) -> str:
    return ", ".join(str(day.date()) for day in pd.to_datetime(days)[:10]) or "none"


def signals_are_spread(context: dg.AssetCheckExecutionContext, pipeline: PipelineResource) -> dg.AssetCheckResult:
    """Each day's scores have a cross-sectional spread above the floor: a collapsed model is caught."""
    floor = pipeline.config.monitoring.min_score_std
    with pipeline.snapshot() as con:
        stats = signal_day_stats(con, *partition_days(context))
    collapsed = stats[stats["score_std"] < floor]
    return dg.AssetCheckResult(
        passed=collapsed.empty and not stats.empty,
        metadata={
            "min_score_std": float(stats["score_std"].min()) if len(stats) else 0.0,
            "floor": floor,
            "collapsed_days": _days_listed(collapsed["datetime"]),
        },
    )


def model_is_recent(context: dg.AssetCheckExecutionContext, pipeline: PipelineResource) -> dg.AssetCheckResult:
    """The model behind each day's scores saw labels no older than the configured limit."""
    limit = pipeline.config.monitoring.max_model_age_days
    with pipeline.snapshot() as con:
        stats = signal_day_stats(con, *partition_days(context))
    age = (pd.to_datetime(stats["datetime"]) - pd.to_datetime(stats["label_end"])).dt.days
    stale = stats[age > limit]
    return dg.AssetCheckResult(
        passed=stale.empty,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "max_age_days": int(age.max()) if len(age) else 0,
            "limit_days": limit,
            "stale_days": _days_listed(stale["datetime"]),
        },
    )


@dg.asset_check(asset="ic_report", name=IC_DRIFT_CHECK)
def rank_ic_holds_up(pipeline: PipelineResource) -> dg.AssetCheckResult:
    """The rolling 20-day Rank IC stays above the floor; below it the model may have stopped working."""
    floor = pipeline.config.monitoring.rank_ic_floor
    with pipeline.snapshot() as con:
        daily = con.execute("SELECT datetime, rank_ic FROM ic_daily ORDER BY datetime").df()
    recent = float(daily["rank_ic"].tail(ROLLING_DAYS).mean())
    return dg.AssetCheckResult(
        passed=len(daily) >= ROLLING_DAYS and recent >= floor,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"rank_ic_20d": recent, "floor": floor, "days": len(daily)},
    )


@dg.run_failure_sensor(
    name="run_failure_alerts",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every failed run of any job: logged, and appended to the DuckDB alerts table with its error.",
)
def run_failure_alerts(context: dg.RunFailureSensorContext, pipeline: PipelineResource) -> None:
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
    record_alert(pipeline.config.duckdb_path, alert)


def _failure_message(context: dg.RunFailureSensorContext) -> str:
    """The run's failure, then the error behind each failed step: what a reader of `alerts` needs to act."""
    causes = []
    for event in context.get_step_failure_events():
        error = event.step_failure_data.error
        while error is not None and error.cause is not None:  # past Dagster's "Error occurred while executing"
            error = error.cause
        causes.append(f"{event.step_key}: {error.message.strip() if error else 'failed'}")
    return "\n".join([context.failure_event.message or "run failed", *causes])


def build_signal_checks(trading_days: dg.PartitionsDefinition) -> list[dg.AssetChecksDefinition]:
    """The checks on each day's signals over the code location's trading days, and the IC drift check."""
    daily = dict(partitions_def=trading_days)
    return [
        dg.asset_check(asset="signals", name=SPREAD_CHECK, blocking=True, **daily)(signals_are_spread),
        dg.asset_check(asset="signals", name=MODEL_AGE_CHECK, **daily)(model_is_recent),
        rank_ic_holds_up,
    ]


def build_freshness(monitoring: Monitoring) -> tuple[list[dg.AssetChecksDefinition], dg.SensorDefinition]:
    """The signals' freshness checks at the configured deadline, and the sensor that runs them."""
    signals_freshness_checks = dg.build_time_partition_freshness_checks(
        assets=["signals"], deadline_cron=monitoring.signals_deadline_cron, timezone=EXCHANGE_TIMEZONE
    )
    signals_freshness_sensor = dg.build_sensor_for_freshness_checks(
        freshness_checks=signals_freshness_checks,
        name="signals_freshness_sensor",
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    return list(signals_freshness_checks), signals_freshness_sensor
