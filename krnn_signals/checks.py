"""Asset checks: the market data is sound before features are built, and the signals cover the universe."""

import dagster as dg

from krnn_core.data import qlib_store
from krnn_core.data.market_checks import (
    bar_problems,
    calendar_problems,
    coverage_problems,
    jump_problems,
    listed_members,
    members_without_data,
)
from krnn_core.data.market_data import last_closed_session
from krnn_core.features.alpha360 import load_panel
from krnn_core.signals.scoring import read_signals, signal_universe_problems
from krnn_signals.partitions import partition_days
from krnn_signals.resources import PipelineResource

CALENDAR_CHECK = "calendar_is_valid"
BARS_CHECK = "bars_are_consistent"
COVERAGE_CHECK = "signals_cover_universe"
JUMP_CHECK = "no_unexplained_jumps"
UNIVERSE_CHECK = "universe_is_covered"
# trading days searched back for a member's last close before a suspension: a move after a longer
# suspension is not checked, and a daily run reads a year of bars instead of the whole history
JUMP_LOOKBACK = 250


@dg.asset_check(asset="qlib_market_data", name=CALENDAR_CHECK, blocking=True)
def calendar_is_valid(pipeline: PipelineResource) -> dg.AssetCheckResult:
    """The calendar is strictly increasing, without duplicates or days whose session has not closed."""
    calendar = qlib_store.read_calendar(pipeline.config.qlib_init.provider_uri)
    problems = calendar_problems(calendar, last_closed_session())
    return dg.AssetCheckResult(
        passed=not problems, metadata={"problems": "; ".join(problems) or "none", "days": len(calendar)}
    )


def bars_are_consistent(context: dg.AssetCheckExecutionContext, pipeline: PipelineResource) -> dg.AssetCheckResult:
    """Every member's bar of the refreshed days is whole, positive and OHLC-consistent."""
    config = pipeline.config
    start, end = partition_days(context)
    panel = load_panel(config.qlib_init.provider_uri, config.market, start, end)  # only the refreshed days
    problems = bar_problems(panel, 0, len(panel.calendar) - 1)
    return dg.AssetCheckResult(passed=not problems, metadata={"problems": "; ".join(problems) or "none"})


def no_unexplained_jumps(context: dg.AssetCheckExecutionContext, pipeline: PipelineResource) -> dg.AssetCheckResult:
    """Warn when a member's close moves beyond `monitoring.max_day_move` while its factor stays the same."""
    config = pipeline.config
    start, end = partition_days(context)
    panel = load_panel(config.qlib_init.provider_uri, config.market, start, end, history=JUMP_LOOKBACK)
    factor = qlib_store.read_field_window(config.qlib_init.provider_uri, panel.codes, "factor", panel.calendar)
    problems = jump_problems(
        panel, factor, panel.day_index(start), panel.day_index(end), config.monitoring.max_day_move
    )
    return _warning(problems)


def universe_is_covered(context: dg.AssetCheckExecutionContext, pipeline: PipelineResource) -> dg.AssetCheckResult:
    """Warn when too few index members have a bar on a day, or when members have no data at all."""
    config = pipeline.config
    provider = config.qlib_init.provider_uri
    start, end = partition_days(context)
    panel = load_panel(provider, config.market, start, end)
    spans = qlib_store.read_instruments(provider, config.market)
    listed = listed_members(panel, spans)
    problems = coverage_problems(panel, listed, 0, len(panel.calendar) - 1, config.monitoring.min_coverage)
    listed_codes = [code for j, code in enumerate(panel.codes) if listed[:, j].any()]
    without_data = members_without_data(provider, spans, qlib_store.read_calendar(provider), listed_codes)
    if without_data:
        problems.append(f"{len(without_data)} members have no data at all: {', '.join(without_data)}")
    return _warning(problems)


def _warning(problems: list[str]) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=not problems, severity=dg.AssetCheckSeverity.WARN, metadata={"problems": "; ".join(problems) or "none"}
    )


def signals_cover_universe(context: dg.AssetCheckExecutionContext, pipeline: PipelineResource) -> dg.AssetCheckResult:
    """Each day has exactly one finite score per universe member with a bar, and no score for the others."""
    config = pipeline.config
    start, end = partition_days(context)
    with pipeline.snapshot() as con:
        stored = read_signals(con, start, end)
    problems = signal_universe_problems(stored, config.qlib_init.provider_uri, config.market, start, end)
    return dg.AssetCheckResult(passed=not problems, metadata={"problems": "; ".join(problems) or "none"})


def build_checks(trading_days: dg.PartitionsDefinition) -> list[dg.AssetChecksDefinition]:
    """The market-data and signal-coverage checks, the partitioned ones over the code location's trading days."""
    daily = dict(partitions_def=trading_days)
    return [
        calendar_is_valid,
        dg.asset_check(asset="qlib_market_data", name=BARS_CHECK, blocking=True, **daily)(bars_are_consistent),
        dg.asset_check(asset="qlib_market_data", name=JUMP_CHECK, **daily)(no_unexplained_jumps),
        dg.asset_check(asset="qlib_market_data", name=UNIVERSE_CHECK, **daily)(universe_is_covered),
        dg.asset_check(asset="signals", name=COVERAGE_CHECK, blocking=True, **daily)(signals_cover_universe),
    ]
