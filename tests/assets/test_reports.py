"""The report assets show rounded figures, inline charts and tables in the Dagster UI's metadata."""

from __future__ import annotations

import dagster as dg

from assets.names import LocationNames
from assets.reports import build_report_assets
from assets.resources import PipelineResource
from krnn_core.config import load_config
from krnn_core.reports.inline_charts import MARKDOWN_LIMIT

SVG_IMAGE = "![chart](<data:image/svg+xml,\\<svg "


def _metadata(pipeline, config_path, report: str) -> dict:
    config = load_config(config_path)
    names = LocationNames.of(config)
    (asset,) = [asset for asset in build_report_assets(names) if asset.key == names.key(report)]
    result = dg.materialize([asset], resources={"pipeline": PipelineResource(config)})
    return result.asset_materializations_for_node(names.step(report))[0].metadata


def _assert_inline_chart(value: dg.MetadataValue) -> None:
    """A markdown SVG short enough for the UI to draw in place rather than behind "[Show Markdown]"."""
    assert isinstance(value, dg.MarkdownMetadataValue)
    assert value.value.startswith(SVG_IMAGE) and len(value.value) < MARKDOWN_LIMIT


def _decimals(value: float) -> int:
    return len(repr(value).split(".")[1]) if "." in repr(value) else 0


def test_ic_report_shows_rounded_figures_inline_charts_and_the_last_days(pipeline, test_config_path) -> None:
    metadata = _metadata(pipeline, test_config_path, "ic_report")
    figures = {"ic": 4, "rank_ic": 4, "rank_ic_20d": 4, "icir": 2, "rank_icir": 2}
    figures |= {"long_short_bp": 1, "turnover_pct": 1}
    for name, decimals in figures.items():
        assert isinstance(metadata[name], dg.FloatMetadataValue), name
        assert _decimals(metadata[name].value) <= decimals, (name, metadata[name].value)
    assert 0.0 < metadata["rank_ic"].value < 1.0 and 0.0 <= metadata["turnover_pct"].value <= 100.0
    for chart in ("ic_series", "quantile_returns", "ic_decay"):
        _assert_inline_chart(metadata[chart])
    last_days = metadata["last_10_days"]
    assert isinstance(last_days, dg.TableMetadataValue) and len(last_days.records) == 10
    assert metadata["window"].value.startswith("2022-04-01..")
    # only what changes from one materialization to the next is a number the UI plots
    plotted = (dg.FloatMetadataValue, dg.IntMetadataValue)
    numbers = {name for name, value in metadata.items() if isinstance(value, plotted)}
    assert numbers == set(figures)


def test_backtest_report_shows_returns_in_percent_its_chart_inline_and_both_costs(pipeline, test_config_path) -> None:
    metadata = _metadata(pipeline, test_config_path, "backtest_report")
    for name in ("excess_return_pct", "information_ratio", "max_drawdown_pct"):
        assert isinstance(metadata[name], dg.FloatMetadataValue), name
        assert _decimals(metadata[name].value) <= 2, (name, metadata[name].value)
    assert metadata["max_drawdown_pct"].value <= 0.0
    _assert_inline_chart(metadata["cumulative_excess_return"])
    table = metadata["excess_return"]
    assert [record.data["costs"] for record in table.records] == ["after", "before"]
    after, before = (record.data for record in table.records)
    assert after["annualized %"] == metadata["excess_return_pct"].value
    assert after["IR"] == metadata["information_ratio"].value
    assert before["annualized %"] >= after["annualized %"]  # costs only ever take from the return
