"""The report assets show their charts and figures in the Dagster UI's metadata."""

from __future__ import annotations

import re

import dagster as dg

from assets.reports import ic_report
from krnn_signals.resources import PipelineResource

IMAGE_PREFIX = "data:image/png;base64,iVBORw0KGgo"  # base64 of the PNG signature


def test_ic_report_metadata_holds_the_summary_and_inline_charts(pipeline, test_config_path) -> None:
    result = dg.materialize([ic_report], resources={"pipeline": PipelineResource(config_path=str(test_config_path))})
    metadata = result.asset_materializations_for_node("ic_report")[0].metadata
    for chart in ("ic_series", "quantile_returns", "ic_decay"):
        assert IMAGE_PREFIX in metadata[chart].value
    assert {"ic", "icir", "rank_ic", "rank_icir", "long_short", "turnover"} <= set(metadata)
    assert re.search(r"^\|\s*horizon\s*\|\s*ic\s*\|\s*rank_ic\s*\|", metadata["ic_decay_table"].value)
