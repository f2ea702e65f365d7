"""Stage 1: the pipeline's Qlib data folder, refreshed one trading day at a time from the config's source,
and its checks: the market data is sound before features are built."""

import dagster as dg

from assets.names import LocationNames
from assets.partitions import daily_check_result, partition_days, trading_day_asset, trading_day_check
from assets.resources import Pipeline
from krnn_core.config import market_source
from krnn_core.data import qlib_store
from krnn_core.data.market_checks import (
    calendar_problems,
    folder_bar_problems,
    folder_jump_problems,
    universe_problems,
)
from krnn_core.data.market_data import MarketDataNotAvailable, last_closed_session, summarize
from krnn_core.data.quarantine import write_quarantine

CALENDAR_CHECK = "calendar_is_valid"
BARS_CHECK = "bars_are_consistent"
JUMP_CHECK = "no_unexplained_jumps"
UNIVERSE_CHECK = "universe_is_covered"


def qlib_market_data(context: dg.AssetExecutionContext, pipeline: Pipeline) -> dg.MaterializeResult:
    """The Qlib folder (calendar, instruments, .day.bin fields) brought up to the partition's day."""
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


def build_qlib_market_data(trading_days: dg.PartitionsDefinition, names: LocationNames) -> dg.AssetsDefinition:
    """The refresh asset over the code location's trading days."""
    return trading_day_asset(
        qlib_market_data,
        trading_days,
        key=names.key("qlib_market_data"),
        pool=names.named("qlib_data"),  # the market's own Qlib folder
        kinds={"qlib"},
        group_name=names.named("market_data"),
    )


def calendar_is_valid(pipeline: Pipeline) -> dg.AssetCheckResult:
    """The calendar is strictly increasing, without duplicates or days whose session has not closed."""
    calendar = qlib_store.read_calendar(pipeline.config.qlib_init.provider_uri)
    problems = calendar_problems(calendar, last_closed_session())
    return dg.AssetCheckResult(
        passed=not problems, metadata={"problems": "; ".join(problems) or "none", "days": len(calendar)}
    )


def bars_are_consistent(context: dg.AssetCheckExecutionContext, pipeline: Pipeline) -> dg.AssetCheckResult:
    """Every member's bar of the refreshed days is whole, positive and OHLC-consistent."""
    config = pipeline.config
    problems = folder_bar_problems(config.qlib_init.provider_uri, config.market, *partition_days(context))
    return daily_check_result(context, pipeline, problems)


def no_unexplained_jumps(context: dg.AssetCheckExecutionContext, pipeline: Pipeline) -> dg.AssetCheckResult:
    """Warn when a member's close moves beyond `monitoring.max_day_move` while its factor stays the same."""
    config = pipeline.config
    problems = folder_jump_problems(
        config.qlib_init.provider_uri, config.market, *partition_days(context), config.monitoring.max_day_move
    )
    return daily_check_result(context, pipeline, problems, dg.AssetCheckSeverity.WARN)


def universe_is_covered(context: dg.AssetCheckExecutionContext, pipeline: Pipeline) -> dg.AssetCheckResult:
    """Warn when too few index members have a bar on a day, or on the day the index lists a member without any data."""
    config = pipeline.config
    problems = universe_problems(
        config.qlib_init.provider_uri, config.market, *partition_days(context), config.monitoring.min_coverage
    )
    return daily_check_result(context, pipeline, problems, dg.AssetCheckSeverity.WARN)


def build_market_data_checks(
    trading_days: dg.PartitionsDefinition, names: LocationNames
) -> list[dg.AssetChecksDefinition]:
    """The market-data checks, the partitioned ones over the code location's trading days."""
    on_market_data = dict(asset=names.key("qlib_market_data"))
    return [
        dg.asset_check(**on_market_data, name=CALENDAR_CHECK, blocking=True)(calendar_is_valid),
        trading_day_check(bars_are_consistent, trading_days, **on_market_data, name=BARS_CHECK, blocking=True),
        trading_day_check(no_unexplained_jumps, trading_days, **on_market_data, name=JUMP_CHECK),
        trading_day_check(universe_is_covered, trading_days, **on_market_data, name=UNIVERSE_CHECK),
    ]
