"""Stage 2: Alpha360 features and their labels, stored raw in DuckDB."""

import dagster as dg

from assets.market_data import qlib_market_data
from krnn_core.feature_store import FEATURES_TABLE, LABELS_TABLE, materialize_features, materialize_labels
from krnn_signals.partitions import partition_days, trading_days
from krnn_signals.resources import PipelineResource

# both tables are written per trading day from the Qlib folder; a backfill range runs as one pass
DAILY_FROM_MARKET_DATA = dict(
    partitions_def=trading_days,
    deps=[qlib_market_data],
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool="duckdb",
    kinds={"duckdb"},
    group_name="features",
)


@dg.asset(**DAILY_FROM_MARKET_DATA)
def alpha360_features(context: dg.AssetExecutionContext, pipeline: PipelineResource) -> dg.MaterializeResult:
    """Qlib's 360 Alpha360 columns of every universe member, one row per (trading day, instrument)."""
    config = pipeline.config
    start, end = partition_days(context)
    with pipeline.duckdb(publish=False) as con:  # alpha360_features is not in the readers' snapshot
        rows = materialize_features(con, config.qlib_init.provider_uri, config.market, start, end)
    return dg.MaterializeResult(metadata={"table": FEATURES_TABLE, "rows": rows, "first_day": str(start.date())})


@dg.asset(**DAILY_FROM_MARKET_DATA)
def alpha360_labels(context: dg.AssetExecutionContext, pipeline: PipelineResource) -> dg.MaterializeResult:
    """Labels Ref($close,-2)/Ref($close,-1)-1 that mature on the partition's day: those of two trading days before."""
    config = pipeline.config
    start, end = partition_days(context)
    with pipeline.duckdb() as con:
        written = materialize_labels(con, config.qlib_init.provider_uri, config.market, start, end)
    metadata = {"table": LABELS_TABLE, "rows": written.rows}
    if written.rows:
        metadata |= {"label_days": f"{written.first.date()}..{written.last.date()}"}
    return dg.MaterializeResult(metadata=metadata)
