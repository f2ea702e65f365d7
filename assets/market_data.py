"""Stage 1: the pipeline's Qlib data folder, refreshed one trading day at a time."""

import dagster as dg

from krnn_core.market_data import refresh_synthetic, summarize
from krnn_signals.config import synthetic_market
from krnn_signals.partitions import partition_days, trading_days
from krnn_signals.resources import PipelineResource


@dg.asset(
    partitions_def=trading_days,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool="qlib_data",
    kinds={"qlib"},
    group_name="market_data",
)
def qlib_market_data(context: dg.AssetExecutionContext, pipeline: PipelineResource) -> dg.MaterializeResult:
    """The Qlib folder (calendar, instruments, .day.bin fields) brought up to the partition's day."""
    config = pipeline.config
    start, end = partition_days(context)
    provider = config.qlib_init.provider_uri
    refresh_synthetic(provider, synthetic_market(config), end)
    summary = summarize(provider, config.market, start, end)
    return dg.MaterializeResult(
        metadata={
            "provider_uri": dg.MetadataValue.path(str(provider)),
            "rows": summary.rows,
            "instruments": summary.instruments,
            "days": summary.days,
            "last_date": str(summary.last_day.date()),
        }
    )
