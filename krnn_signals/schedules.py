"""The daily schedule: at `schedule_cron` (Shanghai), the last closed trading day's partition, once."""

import dagster as dg
import pandas as pd

from assets.names import LocationNames
from krnn_core.data.market_data import last_closed_session, market_now
from krnn_signals.jobs import AssetJob

# a day whose run failed or was canceled is requested again at the next tick: a cron that ticks more
# often than daily retries it until the data is fixed
_RETRIED = (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)


def build_daily_signals_schedule(
    trading_days: dg.TimeWindowPartitionsDefinition,
    cron: str,
    daily_signals_job: AssetJob,
    names: LocationNames,
) -> dg.ScheduleDefinition:
    """The schedule of the location's daily job over its trading days, ticking at `cron` in the market's timezone."""

    # not build_schedule_from_partitioned_job: on a holiday it requests the next trading day's partition,
    # which exists early with end_offset=1 (dagster#33551)
    # a live feed's schedule runs from the moment the daemon sees it; a finished market has no day left to run
    live = dg.DefaultScheduleStatus.RUNNING if trading_days.end is None else dg.DefaultScheduleStatus.STOPPED

    @dg.schedule(
        name=names.named("daily_signals_schedule"),
        job=daily_signals_job,
        cron_schedule=cron,
        execution_timezone=trading_days.timezone,
        default_status=live,
    )
    def daily_signals_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        """Run the last closed session's partition on a trading day, unless it already ran; skip holidays."""
        now = market_now(pd.Timestamp(context.scheduled_execution_time))  # the tick, or the pinned $KRNN_NOW
        day = str(last_closed_session(now).date())
        if trading_days.end and now >= trading_days.end:
            return dg.SkipReason(f"the market ended before {trading_days.end.date()} (end_time): a finished snapshot")
        if day not in trading_days.get_partition_keys(current_time=now.to_pydatetime()):
            return dg.SkipReason(f"{day} is not a trading day")
        statuses = [status for status in dg.DagsterRunStatus if status not in _RETRIED]
        # by the job's name, the location's own: another market's run of the day is not this market's
        runs = context.instance.get_runs(
            dg.RunsFilter(job_name=daily_signals_job.name, tags={"dagster/partition": day}, statuses=statuses), limit=1
        )
        if runs:
            return dg.SkipReason(f"{day} already has run {runs[0].run_id} ({runs[0].status.value})")
        return dg.RunRequest(partition_key=day, run_key=f"daily_signals_{day}")

    return daily_signals_schedule
