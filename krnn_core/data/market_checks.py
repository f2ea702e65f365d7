"""Validation of a Qlib folder's calendar and bars; each problem is a sentence naming day and instrument.

A bad bar is what the quarantine screens out of a source (`quarantine.bad_bar_rules`), checked again on the folder.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from krnn_core.data import qlib_store
from krnn_core.data.quarantine import BAR_FIELDS, bad_bar_rules
from krnn_core.features.alpha360 import FIELDS, MarketPanel, load_panel

_MAX_LISTED = 5  # problems quoted per rule; the count says how many there are
# trading days searched back for a member's last close before a suspension: a move after a longer
# suspension is not checked, and a daily run reads a year of bars instead of the whole history
JUMP_LOOKBACK = 250
# each day checked, with the problems found on it: a day without any passed
ProblemsByDay = dict[pd.Timestamp, list[str]]


def calendar_problems(calendar: pd.DatetimeIndex, today: pd.Timestamp) -> list[str]:
    """Duplicates, days out of order and days after `today`."""
    problems = []
    steps = np.diff(calendar.asi8)
    if (steps == 0).any():
        problems.append(f"duplicate calendar day {calendar[1:][steps == 0][0].date()}")
    if (steps < 0).any():
        problems.append(f"calendar goes back in time at {calendar[1:][steps < 0][0].date()}")
    if len(calendar) and calendar[-1] > today:
        problems.append(f"calendar holds future day {calendar[-1].date()} (today is {today.date()})")
    return problems


def bar_problems(panel: MarketPanel, first: int, last: int) -> ProblemsByDay:
    """Each day in positions [first, last]: members' bars that the quarantine's rules call bad, one line per reason."""
    # vwap is left out: real feeds may lack it, and Alpha360 then reads it as missing
    bars = {name: panel.values[first : last + 1, :, FIELDS.index(name)] for name in BAR_FIELDS}
    member = panel.member[first : last + 1]
    bad_by_reason: dict[str, np.ndarray] = {}
    for _field, reason, bad in bad_bar_rules(bars):
        bad_by_reason[reason] = bad_by_reason.get(reason, np.zeros_like(member)) | (bad & member)
    return {
        panel.calendar[first + d]: [
            f"{reason}: {_bars(panel, first + d, bad[d])}" for reason, bad in bad_by_reason.items() if bad[d].any()
        ]
        for d in range(last - first + 1)
    }


def jump_problems(panel: MarketPanel, factor: np.ndarray, first: int, last: int, limit: float) -> ProblemsByDay:
    """Each day in positions [first, last]: members whose close moved more than `limit` from their previous close
    while the factor stayed put.

    `factor` is (days, instruments) like the panel, NaN where unknown (read as unchanged); a suspended
    day is skipped over, so the move is measured from the last close before it.
    """
    close = pd.DataFrame(panel.values[:, :, FIELDS.index("close")]).ffill().shift(1).to_numpy()
    known_factor = pd.DataFrame(factor).ffill()
    factor_moved = (known_factor != known_factor.shift(1)).to_numpy() & known_factor.shift(1).notna().to_numpy()
    today = panel.values[first : last + 1, :, FIELDS.index("close")]
    with np.errstate(invalid="ignore", divide="ignore"):
        move = np.abs(today / close[first : last + 1] - 1)
    bad = panel.member[first : last + 1] & (move > limit) & ~factor_moved[first : last + 1]
    return {
        panel.calendar[first + d]: (
            [f"close moved more than {limit:.0%} without a factor change: {_bars(panel, first + d, bad[d], move[d])}"]
            if bad[d].any()
            else []
        )
        for d in range(last - first + 1)
    }


def folder_bar_problems(provider_uri: str | Path, market: str, start: pd.Timestamp, end: pd.Timestamp) -> ProblemsByDay:
    """Each trading day in [start, end]: bar_problems of the members' bars the Qlib folder holds."""
    panel = load_panel(provider_uri, market, start, end)  # only the checked days
    return bar_problems(panel, 0, len(panel.calendar) - 1)


def folder_jump_problems(
    provider_uri: str | Path, market: str, start: pd.Timestamp, end: pd.Timestamp, limit: float
) -> ProblemsByDay:
    """Each trading day in [start, end]: jump_problems of the Qlib folder's closes and factors, a member's last
    close before a suspension searched up to JUMP_LOOKBACK trading days back."""
    panel = load_panel(provider_uri, market, start, end, history=JUMP_LOOKBACK)
    factor = qlib_store.read_fields(provider_uri, panel.codes, ["factor"], panel.calendar)[:, :, 0]
    return jump_problems(panel, factor, panel.day_index(start), panel.day_index(end), limit)


def coverage_problems(
    panel: MarketPanel, listed_member: np.ndarray, first: int, last: int, min_share: float
) -> ProblemsByDay:
    """Each day in positions [first, last]: its share of index members (as the market file lists them) with a bar,
    when below `min_share`."""
    has_bar = np.isfinite(panel.values[first : last + 1, :, FIELDS.index("close")]) & listed_member[first : last + 1]
    share = has_bar.sum(1) / np.maximum(listed_member[first : last + 1].sum(1), 1)
    return {
        panel.calendar[first + d]: (
            [f"members with a bar: {_floor_percent(share[d])} of the index, below {min_share * 100:g}%"]
            if share[d] < min_share
            else []
        )
        for d in range(last - first + 1)
    }


def universe_problems(
    provider_uri: str | Path, market: str, start: pd.Timestamp, end: pd.Timestamp, min_share: float
) -> ProblemsByDay:
    """Each trading day in [start, end]: too few index members with a bar, and members without any data that the
    index lists from that day."""
    panel = load_panel(provider_uri, market, start, end)
    spans = qlib_store.read_instruments(provider_uri, market)
    listed = listed_members(panel, spans)
    problems = coverage_problems(panel, listed, 0, len(panel.calendar) - 1, min_share)
    listed_codes = [code for j, code in enumerate(panel.codes) if listed[:, j].any()]
    calendar = qlib_store.read_calendar(provider_uri)
    without_data = members_without_data(provider_uri, spans, calendar, listed_codes)
    # news on the day the index lists such a member, not on every day after it: a source that never had a
    # delisted name's data (22 of CSI300's 2015-2019 members) would warn every day, and a warning every day is
    # read as none; the refresh's metadata names them all, and the coverage rule warns while too few have a bar
    joining = {code: _joining_days(calendar, spans[code]) for code in without_data}
    for day in panel.calendar:
        joined = [code for code in without_data if day in joining[code]]
        if joined:
            problems[day].append(f"{len(joined)} members listed from this day have no data at all: {', '.join(joined)}")
    return problems


def _floor_percent(share: float) -> str:
    """A share as a percentage rounded down to a tenth: 0.8999 reads 89.9%, never the 90% floor it missed."""
    return f"{math.floor(round(share * 1000, 6)) / 10:g}%"  # round first: 0.29 * 1000 is 289.99999999999997


def _joining_days(calendar: pd.DatetimeIndex, ranges: list[tuple[pd.Timestamp, pd.Timestamp]]) -> set[pd.Timestamp]:
    """The trading days on which one code's listing ranges start, less those that continue the previous day's."""
    positions = [(first, last) for first, last in qlib_store.listed_positions(calendar, ranges) if first <= last]
    ends = {last for _, last in positions}
    return {calendar[first] for first, _ in positions if first - 1 not in ends}


def _bars(panel: MarketPanel, position: int, bad: np.ndarray, move: np.ndarray | None = None) -> str:
    """'<n> bars, e.g. <code> <day>[ <move>], ...' for the instruments flagged in `bad` on one day of the panel."""
    flagged = np.flatnonzero(bad)
    day = panel.calendar[position].date()
    where = ", ".join(
        f"{panel.codes[j]} {day}" + ("" if move is None else f" {move[j]:+.1%}") for j in flagged[:_MAX_LISTED]
    )
    return f"{len(flagged)} bars, e.g. {where}"


def listed_members(panel: MarketPanel, spans: dict) -> np.ndarray:
    """(days, instruments) bool: the market file lists the instrument on the day, data or not."""
    listed = np.zeros(panel.member.shape, dtype=bool)
    for j, code in enumerate(panel.codes):
        for first, last in qlib_store.listed_positions(panel.calendar, spans.get(code, [])):
            listed[first : last + 1, j] = True
    return listed


def members_without_data(
    provider_uri: str | Path, spans: qlib_store.Spans, calendar: pd.DatetimeIndex, codes: list[str]
) -> list[str]:
    """Those of `codes` whose close file (read from its header only) holds no day the market file lists them on."""
    missing = []
    for code in codes:
        stored = qlib_store.data_range(provider_uri, code, calendar)
        listed = qlib_store.listed_positions(calendar, spans[code])
        if stored is None or not any(max(first, stored[0]) <= min(last, stored[1]) for first, last in listed):
            missing.append(code)
    return missing
