"""Partitions, declared once: trading days, and the retraining periods of the model."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pandas as pd

from krnn_core.market_data import EXCHANGE_TIMEZONE
from krnn_signals.config import PipelineConfig, load_config, market_source

WEEKENDS = ["0 0 * * 6", "0 0 * * 0"]
_PERIOD_CRON = {"monthly": "0 0 1 * *", "quarterly": "0 0 1 */3 *", "yearly": "0 0 1 1 *"}


def holidays(config: PipelineConfig) -> list[dt.datetime]:
    """Weekdays without a session between the start of the data and the source's last known session.

    Later weekdays stay partitions: a refresh of one refuses it until the source has its data.
    """
    sessions = source_trading_days(config)
    start = pd.Timestamp(config.start_time)
    closed = pd.bdate_range(start, sessions[-1]).difference(sessions) if len(sessions) else []
    return [day.to_pydatetime() for day in closed]


def source_trading_days(config: PipelineConfig) -> pd.DatetimeIndex:
    """The sessions of the config's source: its calendar (synthetic), calendar files (qlib_folder), dates (csv)."""
    return market_source(config).trading_days()


def period_start(config: PipelineConfig) -> dt.date:
    """First day of the retraining period that holds the start of the test segment."""
    test_start = config.task.dataset.segments.test[0]
    month = {"monthly": test_start.month, "quarterly": 3 * ((test_start.month - 1) // 3) + 1, "yearly": 1}
    return dt.date(test_start.year, month[config.rolling.step], 1)


def partition_days(
    context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext,
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last trading day of the partitions this run materializes (one, or a backfill range)."""
    keys = context.partition_key_range
    return pd.Timestamp(keys.start), pd.Timestamp(keys.end)


_config = load_config()

# end_offset=1: a day's partition exists from its start, so the 18:00 schedule can run that same day;
# the refresh refuses a day whose session has not closed (dagster#33551 makes the next one exist early)
trading_days = dg.DailyPartitionsDefinition(
    start_date=str(_config.start_time),
    timezone=EXCHANGE_TIMEZONE,
    end_offset=1,
    exclusions=[*WEEKENDS, *holidays(_config)],
)

# end_offset=2: the next period's model can be trained on the last trading day of the current one
retraining_periods = dg.TimeWindowPartitionsDefinition(
    cron_schedule=_PERIOD_CRON[_config.rolling.step],
    start=str(period_start(_config)),
    fmt="%Y-%m-%d",
    timezone=EXCHANGE_TIMEZONE,
    end_offset=2,
)
