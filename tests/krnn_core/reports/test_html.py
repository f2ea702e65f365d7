"""The self-contained HTML report, written from the read-only snapshot the CLI reads."""

from __future__ import annotations

import base64
import datetime as dt
import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import sync_playwright

from krnn_core.reports.html import write_html_report
from krnn_core.signals.read_snapshot import open_snapshot

IMAGE = re.compile(r'<img alt="([^"]+)" src="data:image/png;base64,([A-Za-z0-9+/=]+)">')


@pytest.fixture(scope="module")
def report_file(pipeline, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("html") / "report.html"
    with open_snapshot(pipeline.duckdb_path) as con:
        assert write_html_report(con, None, None, path) == path
    return path


@pytest.fixture(scope="module")
def full_report(report_file: Path) -> str:
    return report_file.read_text(encoding="utf-8")


def test_the_report_inlines_its_four_charts_as_png(full_report: str) -> None:
    images = IMAGE.findall(full_report)
    assert [title for title, _ in images] == ["cumulative excess return", "IC series", "quantile returns", "IC decay"]
    assert all(base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n" for _, data in images)
    assert not re.search(r"(src|href)=\"(?!data:)", full_report)


def test_the_report_shows_the_stored_summary_numbers(pipeline, full_report: str) -> None:
    with open_snapshot(pipeline.duckdb_path) as con:
        ic, rank_icir, long_short, start, end = con.execute(
            "SELECT ic, rank_icir, long_short, start_date, end_date FROM ic_summary"
        ).fetchone()
        backtest = dict(con.execute("SELECT metric, value FROM backtest_summary").fetchall())
    for value in (
        ic,
        rank_icir,
        long_short,
        backtest["excess_return_with_cost.information_ratio"],
        backtest["excess_return_without_cost.max_drawdown"],
    ):
        assert f"<td>{value:.4f}</td>" in full_report
    assert f"Signal days {start} to {end}" in full_report


def test_a_window_summarizes_only_its_days(pipeline, tmp_path) -> None:
    start, end = dt.date(2022, 5, 2), dt.date(2022, 5, 31)
    with open_snapshot(pipeline.duckdb_path) as con:
        ic, first, last = con.execute(
            "SELECT avg(ic), min(datetime), max(datetime) FROM ic_daily WHERE datetime BETWEEN ? AND ?", [start, end]
        ).fetchone()
        text = write_html_report(con, start, end, tmp_path / "may.html").read_text(encoding="utf-8")
    assert f"Signal days {first} to {last}" in text
    assert f"<td>{ic:.4f}</td>" in text
    assert first > start  # the synthetic calendar's May Day holidays


def test_a_window_without_signals_is_refused(pipeline, tmp_path) -> None:
    with open_snapshot(pipeline.duckdb_path) as con, pytest.raises(ValueError, match="no signals between 2023-01-02"):
        write_html_report(con, dt.date(2023, 1, 2), None, tmp_path / "none.html")


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (.ci/run installs it)")
def test_the_report_renders_its_charts_in_headless_chromium(report_file: Path, full_report: str, tmp_path) -> None:
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900}, device_scale_factor=1)
        page.goto(report_file.as_uri(), wait_until="load")
        shown = page.evaluate(
            """() => Array.from(document.images).map(i => {
                const r = i.getBoundingClientRect();
                return {alt: i.alt, complete: i.complete, width: i.naturalWidth, height: i.naturalHeight,
                        x: r.x + window.scrollX, y: r.y + window.scrollY, w: r.width, h: r.height};
            })"""
        )
        page.screenshot(path=tmp_path / "report.png", full_page=True)
        browser.close()

    embedded = {title: Image.open(io.BytesIO(base64.b64decode(data))) for title, data in IMAGE.findall(full_report)}
    assert [image["alt"] for image in shown] == list(embedded)
    screenshot = np.asarray(Image.open(tmp_path / "report.png").convert("RGB"), dtype=np.int16)
    for image in shown:
        png = embedded[image["alt"]]
        assert image["complete"] and (image["width"], image["height"]) == png.size
        assert (image["w"], image["h"]) == png.size  # drawn at natural size, so pixels compare one to one
        expected = np.asarray(png.convert("RGB"), dtype=np.int16)
        # layout positions are fractional: compare at the nearest whole-pixel offsets and keep the best
        drawn, error = min(
            ((crop, np.abs(crop - expected).mean()) for crop in _crops(screenshot, image, png.size)),
            key=lambda pair: pair[1],
        )
        assert error < 2.0, image["alt"]  # the chart itself, not a broken-image box
        assert (np.abs(drawn - 255).sum(axis=2) > 60).mean() > 0.02, image["alt"]  # and it has ink on it


def _crops(screenshot: np.ndarray, image: dict, size: tuple[int, int]):
    """Screenshot regions of the image's size at the whole-pixel offsets around its layout position."""
    width, height = size
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            x, y = int(image["x"]) + dx, int(image["y"]) + dy
            crop = screenshot[y : y + height, x : x + width]
            if crop.shape[:2] == (height, width):
                yield crop
