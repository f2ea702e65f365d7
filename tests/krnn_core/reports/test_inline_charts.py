"""Inline charts: SVG markdown that stays under Dagster's 1,000-character inline limit and draws the values."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from krnn_core.reports.inline_charts import HEIGHT, LEFT, MARKDOWN_LIMIT, TOP, WIDTH, bar_chart, line_chart

PREFIX = "![chart](<data:image/svg+xml,"
SVG = "{http://www.w3.org/2000/svg}"


def _svg(markdown: str) -> ET.Element:
    """The SVG inside the markdown image, undoing the link destination's escapes."""
    assert markdown.startswith(PREFIX) and markdown.endswith(">)")
    body = markdown[len(PREFIX) : -2]
    assert not re.search(r"(?<!\\)[<>]", body), "an unescaped < or > would end the destination"
    return ET.fromstring(body.replace("\\<", "<").replace("\\>", ">").replace("%25", "%"))


def _texts(svg: ET.Element) -> list[str]:
    """Each text and text span of the SVG."""
    return [element.text for element in svg.iter() if element.tag in (f"{SVG}text", f"{SVG}tspan") and element.text]


def _line(svg: ET.Element) -> str:
    return next(path.get("d") for path in svg.iter(f"{SVG}path") if path.get("fill") == "none")


def test_a_two_point_line_runs_from_the_zero_row_to_the_top_right() -> None:
    days = pd.bdate_range("2024-07-01", periods=2)
    svg = _svg(line_chart("Cumulative", pd.Series([0.0, 0.25], days), lambda v: f"{v:.0%}"))
    assert _line(svg) == f"M{LEFT} {TOP + HEIGHT}l{WIDTH}-{HEIGHT}"
    assert {"Cumulative", "0%", "25%", "2024-07-01", "2024-07-02"} <= set(_texts(svg))


def test_six_years_of_days_are_thinned_to_fit_and_keep_the_last_day() -> None:
    days = pd.bdate_range("2015-01-05", periods=1500)
    walk = pd.Series(np.random.default_rng(3).normal(0.001, 0.01, len(days)), days).cumsum()
    markdown = line_chart("Cumulative excess return after costs", walk, lambda v: f"{v:.1%}")
    assert len(markdown) < MARKDOWN_LIMIT
    svg = _svg(markdown)
    assert {f"{walk.iloc[-1]:.1%}", f"{days[-1]:%Y-%m-%d}", f"{days[0]:%Y-%m-%d}"} <= set(_texts(svg))
    steps = [int(n) for n in re.findall(r"-?\d+", _line(svg).split("l")[1])]
    assert sum(steps[::2]) == WIDTH  # the thinned line still spans the plot area to the last day
    assert 40 < len(steps) // 2 < 300


def test_a_line_that_starts_late_starts_at_its_first_value() -> None:
    days = pd.bdate_range("2024-07-01", periods=5)
    svg = _svg(line_chart("20-day mean Rank IC", pd.Series([np.nan, np.nan, 1.0, 1.0, 1.0], days), str))
    assert _line(svg) == f"M{LEFT} {TOP}l{WIDTH // 2} 0 {WIDTH // 2} 0"
    assert "2024-07-03" in _texts(svg)


def test_a_line_of_one_day_is_a_dot_at_its_value() -> None:
    # the 20-day mean Rank IC has one value on the 20th day of IC: the reports of that day must not fail
    days = pd.bdate_range("2024-07-01", periods=3)
    svg = _svg(line_chart("20-day mean Rank IC", pd.Series([np.nan, np.nan, 0.5], days), str))
    (dot,) = svg.iter(f"{SVG}circle")
    assert (dot.get("cx"), dot.get("cy")) == (str(LEFT), str(TOP))
    assert {"0.5", "2024-07-03"} <= set(_texts(svg))


def test_bars_stand_on_the_zero_line_up_and_down_to_their_values() -> None:
    bars = pd.Series([-10.0, 30.0], index=["Q1 -10.0", "Q2 +30.0"])
    svg = _svg(bar_chart("Quantiles", bars, lambda v: f"{v:+.1f}"))
    zero = round(TOP + HEIGHT * 0.75)  # 30 above zero, 10 below
    strokes = next(path.get("d") for path in svg.iter(f"{SVG}path") if path.get("stroke-width"))
    assert re.findall(r"M\d+ (\d+)V(\d+)", strokes) == [(str(zero), str(TOP + HEIGHT)), (str(zero), str(TOP))]
    assert {"Q1 -10.0", "Q2 +30.0", "-10.0", "+30.0"} <= set(_texts(svg))


def test_many_bars_are_captioned_by_the_first_last_and_the_index_name() -> None:
    bars = pd.Series(np.linspace(0.1, 0.01, 10), index=pd.RangeIndex(1, 11, name="horizon h"))
    texts = _texts(_svg(bar_chart("Rank IC decay", bars, lambda v: f"{v:.2f}")))
    assert {"1", "10", "horizon h"} <= set(texts) and "5" not in texts


def test_a_bar_chart_too_large_to_show_inline_is_refused() -> None:
    bars = pd.Series(np.arange(1.0, 150.0), index=pd.RangeIndex(149, name="horizon"))
    with pytest.raises(ValueError, match="does not fit in 1000"):
        bar_chart("IC decay", bars, lambda v: f"{v:.2f}")
