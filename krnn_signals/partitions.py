"""Partitions, built once per code location from its loaded config: trading days, and retraining periods."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pandas as pd

from krnn_core.config import PipelineConfig, SyntheticSourceConfig, market_source
from krnn_core.data.market_data import EXCHANGE_TIMEZONE
from krnn_core.data.sources.qlib_folder import QlibFolderSource

WEEKENDS = ["0 0 * * 6", "0 0 * * 0"]
_PERIOD_CRON = {"monthly": "0 0 1 * *", "quarterly": "0 0 1 */3 *", "yearly": "0 0 1 1 *"}


def holidays(config: PipelineConfig) -> list[dt.datetime]:
    """Weekdays without a session between the start of the data and the last session the calendar knows.

    Later weekdays stay partitions: a refresh of one refuses it until the source has its data.
    """
    sessions = known_sessions(config)
    start = pd.Timestamp(config.start_time)
    closed = pd.bdate_range(start, sessions[-1]).difference(sessions) if len(sessions) else []
    return [day.to_pydatetime() for day in closed]


def known_sessions(config: PipelineConfig) -> pd.DatetimeIndex:
    """The sessions of the pipeline's own Qlib folder; before its first refresh, those the config alone gives.

    The source is never read here: a broken feed must fail its refresh run, not the code location.
    """
    folder = config.qlib_init.provider_uri
    if (folder / "calendars" / "day.txt").exists():
        return QlibFolderSource(folder).trading_days()  # day.txt, then day_future.txt after it
    if isinstance(config.source, SyntheticSourceConfig):
        return market_source(config).trading_days()  # a rule of dates: no data is generated
    return pd.DatetimeIndex([])


def period_start(config: PipelineConfig) -> dt.date:
    """First day of the retraining period that holds the start of the test segment."""
    test_start = config.task.dataset.segments.test[0]
    month = {"monthly": test_start.month, "quarterly": 3 * ((test_start.month - 1) // 3) + 1, "yearly": 1}
    return dt.date(test_start.year, month[config.rolling.step], 1)


def build_trading_days(config: PipelineConfig) -> dg.DailyPartitionsDefinition:
    """One partition per trading day from `start_time`: weekdays less the known holidays, through `end_time` if set."""
    # end_offset=1: a day's partition exists from its start, so the 18:00 schedule can run that same day;
    # the refresh refuses a day whose session has not closed (dagster#33551 makes the next one exist early)
    end = config.end_time and config.end_time + dt.timedelta(days=1)  # Dagster's end_date is exclusive
    return dg.DailyPartitionsDefinition(
        start_date=str(config.start_time),
        end_date=end and str(end),
        timezone=EXCHANGE_TIMEZONE,
        end_offset=1,
        exclusions=[*WEEKENDS, *holidays(config)],
    )


def build_retraining_periods(config: PipelineConfig) -> dg.TimeWindowPartitionsDefinition:
    """One partition per retraining period (`rolling.step`), from the one that holds the test segment's start."""
    # end_offset=2: the next period's model can be trained on the last trading day of the current one
    return dg.TimeWindowPartitionsDefinition(
        cron_schedule=_PERIOD_CRON[config.rolling.step],
        start=str(period_start(config)),
        fmt="%Y-%m-%d",
        timezone=EXCHANGE_TIMEZONE,
        end_offset=2,
    )
