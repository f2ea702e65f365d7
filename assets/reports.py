"""Stage 5: IC, factor and backtest reports of the signals, in DuckDB and in the Dagster UI."""

import dagster as dg
import pandas as pd

from krnn_core.backtest import cumulative_excess_plot
from krnn_core.plots import data_uri, ic_decay_plot, ic_series_plot, quantile_returns_plot
from krnn_core.reports import signal_window, write_backtest_report, write_ic_report
from krnn_signals.config import backtest_config, report_bounds
from krnn_signals.resources import PipelineResource


def _md_image(title: str, png: bytes) -> dg.MetadataValue:
    """A chart shown inline in the Dagster UI as a markdown image."""
    return dg.MetadataValue.md(f"![{title}]({data_uri(png)})")


def _md_table(frame: pd.DataFrame) -> dg.MetadataValue:
    return dg.MetadataValue.md(frame.to_markdown(floatfmt=".4f"))


@dg.asset(deps=["signals", "alpha360_labels"], pool="duckdb", kinds={"duckdb"}, group_name="reports")
def ic_report(context: dg.AssetExecutionContext, pipeline: PipelineResource) -> dg.MaterializeResult:
    """IC / Rank IC per day with rolling means, ICIR, IC decay, quantile returns and top-k turnover."""
    topk = backtest_config(pipeline.config).topk
    with pipeline.duckdb() as con:
        start, end = signal_window(con, *report_bounds(pipeline.config))
        report = write_ic_report(con, start, end, topk)
    daily = report.ic_daily
    return dg.MaterializeResult(
        metadata={key: float(value) for key, value in report.summary().items()}
        | {
            "window": f"{daily.index.min().date()}..{daily.index.max().date()}",
            "ic_series": _md_image("IC series", ic_series_plot(daily)),
            "quantile_returns": _md_image("quantile returns", quantile_returns_plot(report.quantile_daily)),
            "ic_decay": _md_image("IC decay", ic_decay_plot(report.decay())),
            "quantile_table": _md_table(report.quantile_means()),
            "ic_decay_table": _md_table(report.decay()),
            "last_20_days": _md_table(daily.tail(20)[["ic", "rank_ic", "n", "ic_mean_20", "rank_ic_mean_20"]]),
        }
    )


@dg.asset(deps=["signals"], pool="duckdb", kinds={"qlib", "duckdb"}, group_name="reports")
def backtest_report(context: dg.AssetExecutionContext, pipeline: PipelineResource) -> dg.MaterializeResult:
    """Qlib's TopkDropout backtest of the signals against the benchmark, with trading costs."""
    config = pipeline.config
    with pipeline.duckdb() as con:
        start, end = signal_window(con, *report_bounds(config))
        daily, summary = write_backtest_report(con, config.qlib_init.provider_uri, start, end, backtest_config(config))
    numbers = {key: float(value) for key, value in summary.items() if isinstance(value, (int, float))}
    return dg.MaterializeResult(
        metadata=numbers
        | {
            "window": f"{daily.index.min().date()}..{daily.index.max().date()}",
            "cumulative_excess_return": _md_image("cumulative excess return", cumulative_excess_plot(daily)),
        }
    )
