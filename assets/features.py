"""Stage 2: Alpha360 features and their labels, stored raw in DuckDB."""

import dagster as dg

from assets.names import LocationNames
from assets.partitions import partition_days, trading_day_asset
from assets.placement import ON_CPU_NODE
from assets.resources import Pipeline
from krnn_core.features.store import FEATURES_TABLE, LABELS_TABLE, materialize_features, materialize_labels


def alpha360_features(context: dg.AssetExecutionContext, pipeline: Pipeline) -> dg.MaterializeResult:
    """Qlib's 360 Alpha360 columns of every universe member, one row per (trading day, instrument)."""
    config = pipeline.config
    start, end = partition_days(context)
    with pipeline.duckdb(publish=False) as con:  # alpha360_features is not in the readers' snapshot
        rows = materialize_features(con, config.qlib_init.provider_uri, config.market, start, end)
    return dg.MaterializeResult(metadata={"table": FEATURES_TABLE, "rows": rows, "first_day": str(start.date())})


def alpha360_labels(context: dg.AssetExecutionContext, pipeline: Pipeline) -> dg.MaterializeResult:
    """Labels Ref($close,-2)/Ref($close,-1)-1 that mature on the partition's day: those of two trading days before."""
    config = pipeline.config
    start, end = partition_days(context)
    with pipeline.duckdb() as con:
        written = materialize_labels(con, config.qlib_init.provider_uri, config.market, start, end)
    metadata = {"table": LABELS_TABLE, "rows": written.rows}
    if written.rows:
        metadata |= {"label_days": f"{written.first.date()}..{written.last.date()}"}
    return dg.MaterializeResult(metadata=metadata)


def build_feature_assets(trading_days: dg.PartitionsDefinition, names: LocationNames) -> list[dg.AssetsDefinition]:
    """alpha360_features and alpha360_labels over the code location's trading days."""
    # both tables are written per trading day from the Qlib folder; a backfill range runs as one pass
    common = dict(
        deps=[names.key("qlib_market_data")],
        pool=names.named("duckdb"),  # the market's own warehouse
        kinds={"duckdb"},
        group_name=names.named("features"),
        op_tags=ON_CPU_NODE,
    )
    return [
        trading_day_asset(alpha360_features, trading_days, key=names.key("alpha360_features"), **common),
        trading_day_asset(alpha360_labels, trading_days, key=names.key("alpha360_labels"), **common),
    ]
