"""Stage 4: one partition of scores per trading day, and its checks: coverage, spread and model age."""

import dagster as dg

from assets.names import LocationNames
from assets.partitions import daily_check_result, partition_days, trading_day_asset, trading_day_check
from assets.placement import ON_CPU_NODE
from assets.resources import Pipeline
from krnn_core.signals.scoring import (
    SIGNALS_TABLE,
    model_age_problems,
    read_signals,
    score_days,
    signal_day_stats,
    signal_universe_problems,
    spread_problems,
    write_signals,
)

TOP_SHOWN = 10
COVERAGE_CHECK = "signals_cover_universe"
SPREAD_CHECK = "signals_are_spread"
MODEL_AGE_CHECK = "model_is_recent"


def signals(context: dg.AssetExecutionContext, pipeline: Pipeline) -> dg.MaterializeResult:
    """A KRNN score and rank per universe member and trading day, stamped with its model version."""
    start, end = partition_days(context)
    with pipeline.duckdb() as con:
        frame = score_days(con, start, end)
        rows = write_signals(con, frame, start, end)
    last_day = frame[frame["datetime"] == frame["datetime"].max()].head(TOP_SHOWN)
    return dg.MaterializeResult(
        metadata={
            "table": SIGNALS_TABLE,
            "rows": rows,
            "days": int(frame["datetime"].nunique()),
            "model_versions": ", ".join(sorted(frame["model_version"].unique())),
            f"top_{TOP_SHOWN}_last_day": dg.MetadataValue.md(last_day.to_markdown(index=False)),
        }
    )


def build_signals(trading_days: dg.PartitionsDefinition, names: LocationNames) -> dg.AssetsDefinition:
    """The signals asset over the code location's trading days."""
    return trading_day_asset(
        signals,
        trading_days,
        key=names.key("signals"),
        deps=[names.key("alpha360_features"), names.key("krnn_model")],
        pool=names.named("duckdb"),
        kinds={"duckdb"},
        group_name=names.named("signals"),
        op_tags=ON_CPU_NODE,
    )


def signals_cover_universe(context: dg.AssetCheckExecutionContext, pipeline: Pipeline) -> dg.AssetCheckResult:
    """Each day has exactly one finite score per universe member with a bar, and no score for the others."""
    config = pipeline.config
    start, end = partition_days(context)
    with pipeline.snapshot() as con:
        stored = read_signals(con, start, end)
    return daily_check_result(
        context, pipeline, signal_universe_problems(stored, config.qlib_init.provider_uri, config.market, start, end)
    )


def signals_are_spread(context: dg.AssetCheckExecutionContext, pipeline: Pipeline) -> dg.AssetCheckResult:
    """Each day's scores have a cross-sectional spread above the floor: a collapsed model is caught."""
    floor = pipeline.config.monitoring.min_score_std
    with pipeline.snapshot() as con:
        stats = signal_day_stats(con, *partition_days(context))
    return daily_check_result(
        context,
        pipeline,
        spread_problems(stats, floor),
        min_score_std=float(stats["score_std"].min()) if len(stats) else 0.0,
        floor=floor,
    )


def model_is_recent(context: dg.AssetCheckExecutionContext, pipeline: Pipeline) -> dg.AssetCheckResult:
    """The model behind each day's scores saw labels no older than the configured limit."""
    limit = pipeline.config.monitoring.max_model_age_days
    with pipeline.snapshot() as con:
        stats = signal_day_stats(con, *partition_days(context))
    return daily_check_result(
        context, pipeline, model_age_problems(stats, limit), dg.AssetCheckSeverity.WARN, limit_days=limit
    )


def build_signal_checks(trading_days: dg.PartitionsDefinition, names: LocationNames) -> list[dg.AssetChecksDefinition]:
    """The checks on each day's signals over the code location's trading days."""
    on_signals = dict(asset=names.key("signals"))
    return [
        trading_day_check(signals_cover_universe, trading_days, **on_signals, name=COVERAGE_CHECK, blocking=True),
        trading_day_check(signals_are_spread, trading_days, **on_signals, name=SPREAD_CHECK, blocking=True),
        trading_day_check(model_is_recent, trading_days, **on_signals, name=MODEL_AGE_CHECK),
    ]
