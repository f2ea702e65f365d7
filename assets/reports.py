"""Stage 5: IC and backtest reports of the signals, in DuckDB and in the Dagster UI."""

import base64

import dagster as dg

from assets.features import alpha360_labels
from assets.signals import signals
from krnn_core.backtest import cumulative_excess_plot
from krnn_core.reports import signal_window, write_backtest_report, write_ic_report
from krnn_signals.config import backtest_config, report_bounds
from krnn_signals.resources import PipelineResource


@dg.asset(deps=[signals, alpha360_labels], pool="duckdb", kinds={"duckdb"}, group_name="reports")
def ic_report(context: dg.AssetExecutionContext, pipeline: PipelineResource) -> dg.MaterializeResult:
    """Daily IC and Rank IC of the signals against the realized label, with ICIR over the report window."""
    with pipeline.duckdb() as con:
        start, end = signal_window(con, *report_bounds(pipeline.config))
        daily, summary = write_ic_report(con, start, end)
    recent = daily.tail(20).rename_axis("datetime").reset_index()
    return dg.MaterializeResult(
        metadata={key: float(value) for key, value in summary.items()}
        | {"window": f"{daily.index.min().date()}..{daily.index.max().date()}",
           "last_20_days": dg.MetadataValue.md(recent.to_markdown(index=False, floatfmt=".4f"))}
    )


@dg.asset(deps=[signals], pool="duckdb", kinds={"qlib", "duckdb"}, group_name="reports")
def backtest_report(context: dg.AssetExecutionContext, pipeline: PipelineResource) -> dg.MaterializeResult:
    """Qlib's TopkDropout backtest of the signals against the benchmark, with trading costs."""
    config = pipeline.config
    with pipeline.duckdb() as con:
        start, end = signal_window(con, *report_bounds(config))
        daily, summary = write_backtest_report(con, config.qlib_init.provider_uri, start, end, backtest_config(config))
    png = base64.b64encode(cumulative_excess_plot(daily)).decode()
    numbers = {key: float(value) for key, value in summary.items() if isinstance(value, (int, float))}
    return dg.MaterializeResult(
        metadata=numbers
        | {"window": f"{daily.index.min().date()}..{daily.index.max().date()}",
           "cumulative_excess_return": dg.MetadataValue.md(f"![cumulative excess return](data:image/png;base64,{png})")}
    )

