"""Stage 1: the pipeline's Qlib data folder, refreshed one trading day at a time from the config's source."""

import dagster as dg

from krnn_core.data.market_data import MarketDataNotAvailable, last_closed_session, summarize
from krnn_core.data.quarantine import write_quarantine
from krnn_signals.config import market_source
from krnn_signals.partitions import partition_days
from krnn_signals.resources import PipelineResource


def qlib_market_data(context: dg.AssetExecutionContext, pipeline: PipelineResource) -> dg.MaterializeResult:
    """The Qlib folder (calendar, instruments, .day.bin fields) brought up to the partition's day.

    Partitioned by trading day: weekdays less the exchange's holidays. Dagster's partition panel says "Daily ...
    End offsetted by 1 partition": a day's partition exists from its start, so the 18:00 schedule can run it.
    """
    config = pipeline.config
    start, end = partition_days(context)
    if end > last_closed_session():
        raise MarketDataNotAvailable(f"no market data for {end.date()} yet: its session has not closed")
    provider = config.qlib_init.provider_uri
    report = market_source(config).refresh(provider, end)
    if report.first_added is not None:  # a re-run that adds nothing keeps the quarantine rows it found before
        with pipeline.duckdb() as con:
            write_quarantine(con, report.quarantined, report.first_added)
    summary = summarize(provider, config.market, start, end)
    notes = {
        key: value if isinstance(value, (int, str)) else ", ".join(value) or "none"
        for key, value in report.notes.items()
    }
    return dg.MaterializeResult(
        metadata={
            "provider_uri": dg.MetadataValue.path(str(provider)),
            "source": config.source.kind,
            "rows": summary.rows,
            "instruments": summary.instruments,
            "days": summary.days,
            "days_added": report.days_added,
            "instruments_written": report.instruments_written,
            "quarantined_values": len(report.quarantined),
            "last_date": str(summary.last_day.date()),
            **notes,
        }
    )


def build_qlib_market_data(trading_days: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    """The refresh asset over the code location's trading days."""
    return dg.asset(
        partitions_def=trading_days,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool="qlib_data",
        kinds={"qlib"},
        group_name="market_data",
    )(qlib_market_data)
