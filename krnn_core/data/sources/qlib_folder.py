"""An existing Qlib-format folder (a cn_data download, a shared snapshot) as the pipeline's source.

Real folders differ from what Qlib's reader and Alpha360 expect, and the import brings them in line:
- instrument folders in upper case are written in lower case (codes stay upper case in instruments/);
- `change` in percent becomes a fraction, as in Qlib's cn_data and its backtest's limit_threshold;
- a zero-volume bar (a suspension with carried prices) becomes a missing bar unless configured not to;
- vwap is derived from amount where the folder has one, else left absent and reported (`vwap: missing`);
- index members without any feature folder are listed in the notes, never a crash.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from krnn_core.data import qlib_store
from krnn_core.data.appender import DayBatch
from krnn_core.data.market_data import MarketDataNotAvailable
from krnn_core.data.quarantine import QuarantinedValue, screen_bars
from krnn_core.data.sources import RefreshReport, refresh_by_days
from krnn_core.data.sources.bars import blank_suspended, derive_vwap, vwap_outside_range


@dataclass(frozen=True)
class QlibFolderSource:
    """Days, bars and instrument files of the Qlib folder at `path`."""

    path: Path
    suspended_as_missing: bool = True
    change_in_percent: bool = True

    def trading_days(self) -> pd.DatetimeIndex:
        """day.txt, followed by the days of day_future.txt after it when the folder has one."""
        days = qlib_store.read_calendar(self.path)
        if (self.path / "calendars" / "day_future.txt").exists():
            future = qlib_store.read_calendar(self.path, future=True)
            days = days.append(future[future > days[-1]])
        return days

    def refresh(self, provider_uri: Path, end: pd.Timestamp) -> RefreshReport:
        """Import the folder through `end`, or sync the days after the pipeline folder's last one."""
        return refresh_by_days(self, provider_uri, end)

    def read_days(self, after: pd.Timestamp | None, end: pd.Timestamp) -> tuple[DayBatch, list[QuarantinedValue]]:
        """The screened bars of the folder's days in (after, end]."""
        calendar = qlib_store.read_calendar(self.path)
        if end > calendar[-1]:
            raise MarketDataNotAvailable(
                f"{self.path}/calendars/day.txt ends {calendar[-1].date()}: no data for {end.date()}"
            )
        lo = 0 if after is None else int(calendar.searchsorted(after, side="right"))
        hi = int(calendar.searchsorted(end, side="right"))
        days = calendar[lo:hi]
        if not (self.path / "features").is_dir():
            raise qlib_store.QlibDataError(f"{self.path / 'features'} does not exist: the folder has no bars")
        folders = {
            folder.name.upper(): folder for folder in sorted((self.path / "features").iterdir()) if folder.is_dir()
        }
        bars, quarantined, suspended, vwap_codes = {}, [], 0, 0
        for code, folder in folders.items():
            fields = self._window(folder, calendar, lo, hi)
            vwap_codes += derive_vwap(fields)
            suspended += blank_suspended(fields) if self.suspended_as_missing else 0
            quarantined += screen_bars(code, days, fields, str(folder))
            quarantined += vwap_outside_range(code, days, fields, str(folder))
            bars[code] = fields
        instruments = self._instruments(end)
        notes = {
            "vwap": "derived from amount"
            if vwap_codes == len(folders)
            else f"missing for {len(folders) - vwap_codes} instruments",
            "suspended_bars_as_missing": suspended,
            "members_without_data": sorted({code for spans in instruments.values() for code in spans} - set(folders)),
        }
        return DayBatch(days, bars, instruments, self.trading_days()[hi:], notes), quarantined

    def _window(self, folder: Path, calendar: pd.DatetimeIndex, lo: int, hi: int) -> dict[str, np.ndarray]:
        """Every field of one instrument over calendar positions [lo, hi), NaN outside its stored data."""
        fields = {}
        for path in sorted(folder.glob("*.day.bin")):
            values = np.full(hi - lo, np.nan, dtype=np.float32)
            qlib_store.read_bin_window(path, len(calendar), lo, values)
            fields[path.name.removesuffix(".day.bin")] = values
        if self.change_in_percent and "change" in fields:
            fields["change"] /= 100
        return fields

    def _instruments(self, end: pd.Timestamp) -> dict[str, qlib_store.Spans]:
        """Every instruments file of the folder, ranges cut at `end`, codes upper case."""
        markets = {}
        for path in sorted((self.path / "instruments").glob("*.txt")):
            spans = qlib_store.read_instruments(self.path, path.stem)
            markets[path.stem] = {
                code.upper(): [(start, min(stop, end)) for start, stop in ranges if start <= end]
                for code, ranges in spans.items()
                if any(start <= end for start, _ in ranges)
            }
        return markets
