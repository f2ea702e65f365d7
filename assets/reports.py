"""Stage 5: IC, factor and backtest reports of the signals, in DuckDB and in the Dagster UI.

The UI shows each report's figures as numbers it can plot over materializations, its charts inline
(krnn_core.reports.inline_charts) and its small tables as tables; `krnn-signals report --html` draws them full size.
"""

import dagster as dg
import pandas as pd

from assets.names import LocationNames
from assets.resources import Pipeline
from krnn_core.config import backtest_config, report_bounds
from krnn_core.reports.report_tables import signal_window, write_backtest_report, write_ic_report
from krnn_core.reports.views import (
    backtest_chart,
    backtest_figures,
    backtest_table,
    ic_charts,
    ic_figures,
    recent_ic_table,
    window_text,
)

IC_DRIFT_CHECK = "rank_ic_holds_up"
ROLLING_DAYS = 20
_COLUMN_TYPES = {"i": "int", "f": "float"}  # by numpy dtype kind; the rest are strings


def _table(frame: pd.DataFrame) -> dg.TableMetadataValue:
    """A small frame as a table the UI shows in place, its columns typed from the frame's."""
    records = [dg.TableRecord(row) for row in frame.to_dict("records")]
    columns = [dg.TableColumn(name, _COLUMN_TYPES.get(dtype.kind, "string")) for name, dtype in frame.dtypes.items()]
    return dg.MetadataValue.table(records=records, schema=dg.TableSchema(columns=columns))


def ic_report(context: dg.AssetExecutionContext, pipeline: Pipeline) -> dg.MaterializeResult:
    """IC / Rank IC per day with rolling means, ICIR, IC decay, quantile returns and top-k turnover."""
    topk = backtest_config(pipeline.config).topk
    with pipeline.duckdb() as con:
        start, end = signal_window(con, *report_bounds(pipeline.config))
        report = write_ic_report(con, start, end, topk)
    charts = {name: dg.MetadataValue.md(markdown) for name, markdown in ic_charts(report).items()}
    return dg.MaterializeResult(
        metadata={"window": window_text(report.ic_daily.index)}
        | {name: dg.MetadataValue.float(value) for name, value in ic_figures(report).items()}
        | charts
        | {"last_10_days": _table(recent_ic_table(report.ic_daily))}
    )


def rank_ic_holds_up(pipeline: Pipeline) -> dg.AssetCheckResult:
    """The rolling 20-day Rank IC stays above the floor; below it the model may have stopped working."""
    floor = pipeline.config.monitoring.rank_ic_floor
    with pipeline.snapshot() as con:
        daily = con.execute("SELECT datetime, rank_ic FROM ic_daily ORDER BY datetime").df()
    recent = float(daily["rank_ic"].tail(ROLLING_DAYS).mean())
    return dg.AssetCheckResult(
        passed=len(daily) >= ROLLING_DAYS and recent >= floor,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"rank_ic_20d": recent, "floor": floor, "days": len(daily)},
    )


def backtest_report(context: dg.AssetExecutionContext, pipeline: Pipeline) -> dg.MaterializeResult:
    """Qlib's TopkDropout backtest of the signals against the benchmark, with trading costs."""
    config = pipeline.config
    with pipeline.duckdb() as con:
        start, end = signal_window(con, *report_bounds(config))
        daily, summary = write_backtest_report(con, config.qlib_init.provider_uri, start, end, backtest_config(config))
    return dg.MaterializeResult(
        metadata={"window": window_text(daily.index)}
        | {name: dg.MetadataValue.float(value) for name, value in backtest_figures(summary).items()}
        | {
            "cumulative_excess_return": dg.MetadataValue.md(backtest_chart(daily)),
            "excess_return": _table(backtest_table(summary)),
        }
    )


def build_report_assets(names: LocationNames) -> list[dg.AssetsDefinition]:
    """ic_report and backtest_report of the code location's signals."""
    common = dict(pool=names.named("duckdb"), group_name=names.named("reports"))
    return [
        dg.asset(
            key=names.key("ic_report"),
            deps=[names.key("signals"), names.key("alpha360_labels")],
            kinds={"duckdb"},
            **common,
        )(ic_report),
        dg.asset(key=names.key("backtest_report"), deps=[names.key("signals")], kinds={"qlib", "duckdb"}, **common)(
            backtest_report
        ),
    ]


def build_report_checks(names: LocationNames) -> list[dg.AssetChecksDefinition]:
    """The check on the code location's IC report."""
    return [dg.asset_check(asset=names.key("ic_report"), name=IC_DRIFT_CHECK)(rank_ic_holds_up)]
