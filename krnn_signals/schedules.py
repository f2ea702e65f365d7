"""The daily schedule: 18:00 Shanghai on each trading day, for that day's partition."""

import dagster as dg

from krnn_signals.jobs import daily_signals_job

# the partitions exclude weekends and holidays, so the schedule requests nothing on those days
daily_signals_schedule = dg.build_schedule_from_partitioned_job(
    daily_signals_job, name="daily_signals_schedule", hour_of_day=18, minute_of_hour=0
)
