"""When the synthetic market trades (weekdays minus a fixed, China-like holiday rule) and rebalances.

The rule depends on the date alone, so any stretch of the calendar (a partition, the future
calendar Qlib's backtest needs) can be built without generating market data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# (month, first day, last day): New Year, a fixed Spring Festival week, Labour Day, National Day
HOLIDAYS = ((1, 1, 1), (2, 9, 15), (5, 1, 3), (10, 1, 7))


def is_holiday(days: pd.DatetimeIndex) -> np.ndarray:
    """Boolean mask of the dates that fall in one of the HOLIDAYS ranges."""
    closed = np.zeros(len(days), dtype=bool)
    for month, first, last in HOLIDAYS:
        closed |= (days.month == month) & (days.day >= first) & (days.day <= last)
    return closed


def trading_calendar(start: str | pd.Timestamp, end: str | pd.Timestamp) -> pd.DatetimeIndex:
    """Trading days in [start, end]: Monday to Friday, holidays left out."""
    weekdays = pd.bdate_range(pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize())
    return pd.DatetimeIndex(weekdays[~is_holiday(weekdays)])


def quarter_starts(days: pd.DatetimeIndex) -> list[int]:
    """Positions in `days` of the first trading day of each calendar quarter."""
    quarters = days.year * 4 + (days.month - 1) // 3
    return [0] + [i for i in range(1, len(days)) if quarters[i] != quarters[i - 1]]


def day_ranges(days: pd.DatetimeIndex, mask: np.ndarray) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """(first day, last day) of each run of True in `mask`, as an instruments file lists them."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [(days[lo], days[hi - 1]) for lo, hi in zip(edges[::2], edges[1::2], strict=True)]
