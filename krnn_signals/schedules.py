"""The daily schedule: 18:00 Shanghai on each trading day, for that day's partition."""

import dagster as dg

from krnn_signals.jobs import daily_signals_job


def build_daily_signals_schedule(trading_days: dg.TimeWindowPartitionsDefinition) -> dg.ScheduleDefinition:
    """The schedule over the code location's trading days."""

    # not build_schedule_from_partitioned_job: on a holiday it requests the next trading day's partition,
    # which exists early with end_offset=1 (dagster#33551)
    # a live feed's schedule runs from the moment the daemon sees it; a finished market has no day left to run
    live = dg.DefaultScheduleStatus.RUNNING if trading_days.end is None else dg.DefaultScheduleStatus.STOPPED

    @dg.schedule(
        job=daily_signals_job,
        cron_schedule="0 18 * * 1-5",
        execution_timezone=trading_days.timezone,
        default_status=live,
    )
    def daily_signals_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        """Run the day's partition on a trading day; skip weekdays that are holidays."""
        day = context.scheduled_execution_time.strftime("%Y-%m-%d")
        if trading_days.end and context.scheduled_execution_time >= trading_days.end:
            return dg.SkipReason(f"the market ended before {trading_days.end.date()} (end_time): a finished snapshot")
        if day not in trading_days.get_partition_keys(current_time=context.scheduled_execution_time):
            return dg.SkipReason(f"{day} is not a trading day")
        return dg.RunRequest(partition_key=day, run_key=f"daily_signals_{day}")

    return daily_signals_schedule
