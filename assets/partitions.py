"""The trading days a run of a daily-partitioned asset or check covers, and how such an asset is declared."""

import inspect
from collections.abc import Callable

import dagster as dg
import pandas as pd

# Dagster's partition panel calls these partitions "Daily ... End offsetted by 1 partition": say what they are
TRADING_DAYS_NOTE = (
    "Partitioned by trading day: weekdays less the exchange's holidays. Dagster's partition panel says \"Daily ... "
    "End offsetted by 1 partition\": a day's partition exists from its start, so the 18:00 schedule can run it."
)


def trading_day_asset(fn: Callable, trading_days: dg.PartitionsDefinition, **asset_kwargs) -> dg.AssetsDefinition:
    """`fn` as an asset partitioned by trading day, a backfill range run as one pass, described as such."""
    return dg.asset(
        partitions_def=trading_days,
        backfill_policy=dg.BackfillPolicy.single_run(),
        description=f"{inspect.cleandoc(fn.__doc__)}\n\n{TRADING_DAYS_NOTE}",
        **asset_kwargs,
    )(fn)


def partition_days(
    context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext,
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last trading day of the partitions this run materializes (one, or a backfill range)."""
    keys = context.partition_key_range
    return pd.Timestamp(keys.start), pd.Timestamp(keys.end)
