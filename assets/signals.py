"""Stage 4: one partition of scores per trading day."""

import dagster as dg

from krnn_core.signals.scoring import SIGNALS_TABLE, score_days, write_signals
from krnn_signals.partitions import partition_days
from krnn_signals.resources import PipelineResource

TOP_SHOWN = 10


def signals(context: dg.AssetExecutionContext, pipeline: PipelineResource) -> dg.MaterializeResult:
    """A KRNN score and rank per universe member and trading day, stamped with its model version.

    Partitioned by trading day: weekdays less the exchange's holidays. Dagster's partition panel says "Daily ...
    End offsetted by 1 partition": a day's partition exists from its start, so the 18:00 schedule can run it.
    """
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


def build_signals(trading_days: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    """The signals asset over the code location's trading days."""
    return dg.asset(
        partitions_def=trading_days,
        deps=["alpha360_features", "krnn_model"],
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool="duckdb",
        kinds={"duckdb"},
        group_name="signals",
    )(signals)
