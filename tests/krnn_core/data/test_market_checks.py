import numpy as np
import pandas as pd

from krnn_core.data import qlib_store
from krnn_core.data.market_checks import (
    bar_problems,
    calendar_problems,
    coverage_problems,
    jump_problems,
    listed_members,
    members_without_data,
    universe_problems,
)
from krnn_core.data.quarantine import BAR_FIELDS, screen_bars
from krnn_core.features.alpha360 import FIELDS, MarketPanel

DAYS = pd.bdate_range("2024-01-02", periods=4)


def _panel() -> MarketPanel:
    bar = {"close": 10.0, "open": 9.8, "high": 10.3, "low": 9.7, "vwap": 10.0, "volume": 1e5}
    values = np.tile(np.array([bar[f] for f in FIELDS], np.float32), (len(DAYS), 2, 1))  # (days, 2 codes, fields)
    return MarketPanel(DAYS, ["SH600000", "SZ000001"], values, np.ones((len(DAYS), 2), dtype=bool))


def _failed(problems: dict) -> dict:
    """The days with problems, by date."""
    return {str(day.date()): found for day, found in problems.items() if found}


def test_a_clean_panel_has_no_problem_on_any_day():
    assert bar_problems(_panel(), 0, len(DAYS) - 1) == {day: [] for day in DAYS}


def test_each_bad_bar_is_reported_with_instrument_and_day():
    panel = _panel()
    panel.values[1, 0, FIELDS.index("high")] = 9.0  # high below open and close
    panel.values[2, 1, FIELDS.index("volume")] = np.nan  # a partial bar
    panel.values[3, 1, :] = np.nan  # a whole missing bar is a suspension, not a problem
    problems = _failed(bar_problems(panel, 0, len(DAYS) - 1))
    assert problems == {
        "2024-01-03": [
            "low above open, close or high: 1 bars, e.g. SH600000 2024-01-03",
            "high below open or close: 1 bars, e.g. SH600000 2024-01-03",
        ],
        "2024-01-04": ["missing or not finite while the bar exists: 1 bars, e.g. SZ000001 2024-01-04"],
    }


def test_the_check_finds_the_bars_the_quarantine_screens_out_for_the_same_reasons():
    panel = _panel()
    panel.values[0, 0, FIELDS.index("open")] = 0.0  # non-positive, and below low
    panel.values[1, 1, FIELDS.index("volume")] = -5.0
    panel.values[2, 0, FIELDS.index("high")] = np.inf  # not finite
    panel.values[3, 1, FIELDS.index("low")] = 10.1  # above open and close
    screened = set()
    for j, code in enumerate(panel.codes):
        bars = {name: panel.values[:, j, FIELDS.index(name)].copy() for name in BAR_FIELDS}
        screened |= {(row.reason, f"{code} {row.datetime.date()}") for row in screen_bars(code, DAYS, bars, "panel")}
    reported = set()
    for day_problems in bar_problems(panel, 0, len(DAYS) - 1).values():
        for problem in day_problems:  # "<reason>: <n> bars, e.g. <code> <day>, ..."
            reason, bars = problem.split(": ", 1)
            reported |= {(reason, where) for where in bars.split(", e.g. ")[1].split(", ")}
    assert len(screened) == 5 and reported == screened


def test_problems_outside_the_window_or_of_non_members_are_ignored():
    panel = _panel()
    panel.values[0, 0, FIELDS.index("close")] = -1.0
    panel.values[2, 1, FIELDS.index("close")] = -1.0
    panel.member[2, 1] = False
    assert bar_problems(panel, 1, 3) == {day: [] for day in DAYS[1:]}
    problems = _failed(bar_problems(panel, 0, 3))
    assert list(problems) == ["2024-01-02"]
    assert "non-positive price: 1 bars, e.g. SH600000 2024-01-02" in problems["2024-01-02"]


def test_calendar_duplicates_disorder_and_future_days_are_reported():
    calendar = pd.DatetimeIndex(["2024-01-02", "2024-01-03", "2024-01-03", "2024-01-02", "2024-01-09"])
    problems = calendar_problems(calendar, pd.Timestamp("2024-01-05"))
    assert problems == [
        "duplicate calendar day 2024-01-03",
        "calendar goes back in time at 2024-01-02",
        "calendar holds future day 2024-01-09 (today is 2024-01-05)",
    ]
    assert calendar_problems(DAYS, DAYS[-1]) == []


def test_a_jump_warns_unless_the_factor_changed_and_a_suspension_is_skipped_over():
    panel = _panel()
    close = FIELDS.index("close")
    panel.values[1:, 0, close] = 12.0  # SH600000 +20% on day 1, factor unchanged
    panel.values[1:, 1, close] = 5.0  # SZ000001 -50% on day 1: a split, its factor doubles
    factor = np.ones((len(DAYS), 2), np.float32)
    factor[1:, 1] = 2.0
    problems = jump_problems(panel, factor, 1, 3, 0.11)
    assert list(problems) == list(DAYS[1:])
    assert _failed(problems) == {
        "2024-01-03": ["close moved more than 11% without a factor change: 1 bars, e.g. SH600000 2024-01-03 +20.0%"]
    }
    panel.values[1, 0, :] = np.nan  # suspended on day 1: day 2 is measured against day 0's close
    assert _failed(jump_problems(panel, factor, 1, 3, 0.11)) == {
        "2024-01-04": ["close moved more than 11% without a factor change: 1 bars, e.g. SH600000 2024-01-04 +20.0%"]
    }


def test_coverage_counts_listed_members_without_a_bar():
    panel = _panel()
    panel.values[2, 1, :] = np.nan
    listed = listed_members(panel, {"SH600000": [(DAYS[0], DAYS[-1])], "SZ000001": [(DAYS[1], DAYS[2])]})
    assert listed[:, 1].tolist() == [False, True, True, False]
    assert coverage_problems(panel, listed, 0, 3, 0.9) == {
        **{day: [] for day in DAYS},
        DAYS[2]: ["members with a bar: 50% of the index, below 90%"],
    }
    assert _failed(coverage_problems(panel, listed, 0, 3, 0.5)) == {}


def test_a_share_just_below_the_floor_never_reads_as_the_floor():
    codes = [f"SH60000{i}" for i in range(9)]
    values = np.full((len(DAYS), len(codes), len(FIELDS)), 10.0, np.float32)
    values[0, 0, :] = np.nan  # 8 of 9 members with a bar: 88.89%
    panel = MarketPanel(DAYS, codes, values, np.ones((len(DAYS), len(codes)), dtype=bool))
    listed = listed_members(panel, {code: [(DAYS[0], DAYS[-1])] for code in codes})
    assert _failed(coverage_problems(panel, listed, 0, 3, 0.889)) == {
        "2024-01-02": ["members with a bar: 88.8% of the index, below 88.9%"]
    }


def test_members_without_data_are_those_whose_closes_miss_every_listed_day(tmp_path):
    calendar = pd.bdate_range("2024-01-02", periods=10)
    qlib_store.write_field(tmp_path, "SH600000", "close", np.full(4, 10.0, np.float32), start_index=0)  # days 0-3
    qlib_store.write_field(tmp_path, "SH600001", "close", np.full(4, 10.0, np.float32), start_index=0)  # days 0-3
    qlib_store.write_field(tmp_path, "SH600002", "close", np.zeros(0, np.float32), start_index=5)  # a header only
    spans = {
        "SH600000": [(calendar[3], calendar[9])],  # listed from day 3: its closes cover day 3
        "SH600001": [(calendar[4], calendar[9])],  # listed from day 4: its closes ended on day 3
        "SH600002": [(calendar[0], calendar[9])],
        "SZ000001": [(calendar[0], calendar[9])],  # no close file
    }
    assert members_without_data(tmp_path, spans, calendar, sorted(spans)) == ["SH600001", "SH600002", "SZ000001"]
    # listed from a Saturday: the span starts on the next trading day
    saturday = {"SH600000": [(pd.Timestamp("2024-01-06"), calendar[9])]}
    assert members_without_data(tmp_path, saturday, calendar, ["SH600000"]) == ["SH600000"]


def test_a_member_without_any_data_is_a_problem_on_the_day_the_index_lists_it(tmp_path):
    qlib_store.write_calendar(tmp_path, DAYS)
    spans = {"SH600000": [(DAYS[0], DAYS[3])], "SZ000001": [(DAYS[2], DAYS[3])]}
    qlib_store.write_instruments(tmp_path, "csi300", spans)
    for field in FIELDS:  # SZ000001 has no file at all
        qlib_store.write_field(tmp_path, "SH600000", field, np.full(4, 10.0, np.float32), start_index=0)
    lacking = "1 members listed from this day have no data at all: SZ000001"
    problems = universe_problems(tmp_path, "csi300", DAYS[0], DAYS[3], 0.4)
    assert problems == {DAYS[0]: [], DAYS[1]: [], DAYS[2]: [lacking], DAYS[3]: []}
    below = "members with a bar: 50% of the index, below 90%"
    assert _failed(universe_problems(tmp_path, "csi300", DAYS[1], DAYS[2], 0.9)) == {"2024-01-04": [below, lacking]}
    # a daily run of a later day: the member is still listed, without data, but that is no news
    assert universe_problems(tmp_path, "csi300", DAYS[3], DAYS[3], 0.4) == {DAYS[3]: []}


def test_a_member_without_data_listed_again_after_a_gap_is_news_again(tmp_path):
    qlib_store.write_calendar(tmp_path, DAYS)
    # SZ000001 leaves the index on day 2 and is listed again on day 3; SZ000002's two ranges touch
    spans = {
        "SH600000": [(DAYS[0], DAYS[3])],
        "SZ000001": [(DAYS[0], DAYS[1]), (DAYS[3], DAYS[3])],
        "SZ000002": [(DAYS[0], DAYS[1]), (DAYS[2], DAYS[3])],
    }
    qlib_store.write_instruments(tmp_path, "csi300", spans)
    for field in FIELDS:
        qlib_store.write_field(tmp_path, "SH600000", field, np.full(4, 10.0, np.float32), start_index=0)
    problems = universe_problems(tmp_path, "csi300", DAYS[0], DAYS[3], 0.0)
    both = "2 members listed from this day have no data at all: SZ000001, SZ000002"
    again = "1 members listed from this day have no data at all: SZ000001"
    assert problems == {DAYS[0]: [both], DAYS[1]: [], DAYS[2]: [], DAYS[3]: [again]}
