"""Bring the pipeline's Qlib folder up to a trading day from its source, and say what it holds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from krnn_core import qlib_store
from krnn_core.synthetic import SyntheticMarket, write_market

EXCHANGE_TIMEZONE = "Asia/Shanghai"
SESSION_CLOSE_HOUR = 15


class MarketDataNotAvailable(ValueError):
    """The asked day has no market data yet (it is in the future or its session is still open)."""


@dataclass(frozen=True)
class FolderSummary:
    """What a Qlib folder holds for a window of days."""

    last_day: pd.Timestamp
    days: int
    instruments: int  # market members with a bar on the last day of the window
    rows: int  # non-missing bars of market members in the window


def last_closed_session(now: pd.Timestamp | None = None) -> pd.Timestamp:
    """The latest date whose session has closed in Shanghai: today after 15:00, else yesterday."""
    now = (now or pd.Timestamp.now(tz=EXCHANGE_TIMEZONE)).tz_convert(EXCHANGE_TIMEZONE)
    closed = now.normalize() if now.hour >= SESSION_CLOSE_HOUR else now.normalize() - pd.Timedelta(days=1)
    return closed.tz_localize(None)


def refresh_synthetic(
    provider_uri: Path, market: SyntheticMarket, end: pd.Timestamp, now: pd.Timestamp | None = None
) -> None:
    """Extend the synthetic folder through `end`; never shrink it, never fabricate an unclosed day."""
    available = last_closed_session(now)
    if end > available:
        raise MarketDataNotAvailable(
            f"no market data for {end.date()} yet: the last closed session is {available.date()}"
        )
    calendar_file = Path(provider_uri) / "calendars" / "day.txt"
    if calendar_file.exists() and qlib_store.read_calendar(provider_uri)[-1] >= end:
        return
    write_market(provider_uri, market, end)


def summarize(provider_uri: Path, market: str, start: pd.Timestamp, end: pd.Timestamp) -> FolderSummary:
    """Count the days, members and bars the folder holds in [start, end]; refuse a missing day."""
    calendar = qlib_store.read_calendar(provider_uri)
    for day in (start, end):
        if day not in calendar:
            raise MarketDataNotAvailable(f"{day.date()} is not in {provider_uri}/calendars/day.txt")
    window = calendar[(calendar >= start) & (calendar <= end)]
    spans = qlib_store.read_instruments(provider_uri, market)
    members = [set(qlib_store.members_on(spans, day)) for day in window]
    codes = sorted(set().union(*members))
    member = np.array([[code in today for code in codes] for today in members], dtype=bool)
    close = qlib_store.read_panel(provider_uri, codes, ["close"], calendar)[:, :, 0]
    lo, hi = calendar.get_loc(start), calendar.get_loc(end)
    has_bar = np.isfinite(close[lo : hi + 1]) & member
    return FolderSummary(calendar[-1], len(window), int(has_bar[-1].sum()), int(has_bar.sum()))
