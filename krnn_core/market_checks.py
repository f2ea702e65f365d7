"""Validation of a Qlib folder's calendar and bars; each problem is a sentence naming day and instrument."""

from __future__ import annotations

import numpy as np
import pandas as pd

from krnn_core.alpha360 import FIELDS, MarketPanel

_MAX_LISTED = 5  # problems quoted per rule; the count says how many there are


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


def bar_problems(panel: MarketPanel, first: int, last: int) -> list[str]:
    """Partial bars, non-positive prices and OHLC inconsistencies of members in positions [first, last]."""
    bars = panel.values[first : last + 1]  # (D, N, 6)
    member = panel.member[first : last + 1]
    close, open_, high, low, _vwap, volume = (bars[..., i] for i in range(len(FIELDS)))
    # vwap is left out: real feeds may lack it, and Alpha360 then reads it as missing
    present = np.isfinite(bars[..., [FIELDS.index(f) for f in ("close", "open", "high", "low", "volume")]])
    rules = {
        "partial bar (some fields missing, or inf)": member & present.any(-1) & ~present.all(-1),
        "non-positive price": member & present.all(-1) & ((np.stack([close, open_, high, low], -1) <= 0).any(-1)),
        "negative volume": member & (volume < 0),
        "low above open/close/high": member & ((low > open_) | (low > close) | (low > high)),
        "high below open/close": member & ((high < open_) | (high < close)),
    }
    problems = []
    for rule, bad in rules.items():
        days, inst = np.nonzero(bad)
        if len(days):
            where = ", ".join(
                f"{panel.codes[j]} {panel.calendar[first + d].date()}" for d, j in zip(days[:_MAX_LISTED], inst)
            )
            problems.append(f"{rule}: {len(days)} bars, e.g. {where}")
    return problems
