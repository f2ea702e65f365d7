"""When a session has closed, and what the pipeline's Qlib folder holds (its sources live in `data.sources`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from krnn_core.data import qlib_store

EXCHANGE_TIMEZONE = "Asia/Shanghai"
SESSION_CLOSE_HOUR = 15
# the market's clock pinned to a date-time (Shanghai time unless it has an offset): a test or a replay of past days
CLOCK_ENV = "KRNN_NOW"


class MarketDataNotAvailable(ValueError):
    """The asked day has no market data yet (it is in the future or its session is still open)."""


@dataclass(frozen=True)
class FolderSummary:
    """What a Qlib folder holds for a window of days."""

    last_day: pd.Timestamp
    days: int
    instruments: int  # market members with a bar on the last day of the window
    rows: int  # non-missing bars of market members in the window


def market_now(wall: pd.Timestamp | None = None) -> pd.Timestamp:
    """The market's time in Shanghai: $KRNN_NOW where set, else `wall` (by default the wall clock)."""
    pinned = os.environ.get(CLOCK_ENV)
    if not pinned:
        return (wall or pd.Timestamp.now(tz=EXCHANGE_TIMEZONE)).tz_convert(EXCHANGE_TIMEZONE)
    try:
        now = pd.Timestamp(pinned)
    except ValueError:
        now = pd.NaT
    if pd.isna(now):
        raise ValueError(f"{CLOCK_ENV}={pinned!r} is not a date-time such as 2024-05-31T16:00")
    return now.tz_localize(EXCHANGE_TIMEZONE) if now.tzinfo is None else now.tz_convert(EXCHANGE_TIMEZONE)


def last_closed_session(now: pd.Timestamp | None = None) -> pd.Timestamp:
    """The latest date whose session has closed at `now` (the market's clock): today from 15:00, else yesterday."""
    now = (now or market_now()).tz_convert(EXCHANGE_TIMEZONE)
    closed = now.normalize() if now.hour >= SESSION_CLOSE_HOUR else now.normalize() - pd.Timedelta(days=1)
    return closed.tz_localize(None)


def summarize(provider_uri: Path, market: str, start: pd.Timestamp, end: pd.Timestamp) -> FolderSummary:
    """Count the days, members and bars the folder holds in [start, end]; refuse a missing day."""
    calendar = qlib_store.read_calendar(provider_uri)
    for day in (start, end):
        if day not in calendar:
            raise MarketDataNotAvailable(f"{day.date()} is not in {provider_uri}/calendars/day.txt")
    window = calendar[(calendar >= start) & (calendar <= end)]
    codes, member = _members(qlib_store.read_instruments(provider_uri, market), window)
    close = qlib_store.read_fields(provider_uri, codes, ["close"], window)[:, :, 0]  # only the window's days
    has_bar = np.isfinite(close) & member
    return FolderSummary(calendar[-1], len(window), int(has_bar[-1].sum()), int(has_bar.sum()))


def _members(spans: qlib_store.Spans, window: pd.DatetimeIndex) -> tuple[list[str], np.ndarray]:
    """The codes that are members on some day of the window, and (days, codes) whether they are that day."""
    # from each range's positions, not day by day: a backfill's window is thousands of days
    codes = sorted(spans)
    member = np.zeros((len(window), len(codes)), dtype=bool)
    for j, code in enumerate(codes):
        for first, last in qlib_store.listed_positions(window, spans[code]):
            member[first : last + 1, j] = first <= last
    listed = member.any(axis=0)
    return [code for code, keep in zip(codes, listed, strict=True) if keep], member[:, listed]
