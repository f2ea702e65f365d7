"""The embedded synthetic market as a source: regenerated through the asked day, one version per refresh."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from krnn_core.data.market_data import MarketDataNotAvailable, last_closed_session
from krnn_core.data.sources import RefreshReport, folder_last_day
from krnn_core.data.synthetic import SyntheticMarket, write_market
from krnn_core.data.synthetic_calendar import trading_calendar
from krnn_core.data.versioned_folder import next_version

YEARS_AHEAD = 1  # the partitions reach to the end of next year


@dataclass(frozen=True)
class SyntheticSource:
    """The market `market` describes; it has a session on each of its calendar's days that has closed."""

    market: SyntheticMarket

    def trading_days(self) -> pd.DatetimeIndex:
        """The synthetic calendar from the market's start to the end of next year."""
        end = pd.Timestamp(year=pd.Timestamp.now().year + YEARS_AHEAD, month=12, day=31)
        return trading_calendar(self.market.start, end)

    def refresh(self, provider_uri: Path, end: pd.Timestamp, now: pd.Timestamp | None = None) -> RefreshReport:
        """Write the market through `end` as a new version; never shrink it, never write an unclosed day."""
        available = last_closed_session(now)
        if end > available:
            raise MarketDataNotAvailable(
                f"no market data for {end.date()} yet: the last closed session is {available.date()}"
            )
        last = folder_last_day(provider_uri)
        if last is not None and last >= end:
            return RefreshReport()
        with next_version(Path(provider_uri)) as folder:
            summary = write_market(folder, self.market, end)
        first = self.market.start if last is None else last + pd.Timedelta(days=1)
        added = trading_calendar(first, end)
        return RefreshReport(len(added), added[0] if len(added) else None, summary.instruments)
