"""A folder of CSV files, one per instrument (`SH600000.csv`), appended day by day into the Qlib folder.

Columns: date, open, high, low, close, volume, and optionally vwap, amount, factor, comma-separated,
dates YYYY-MM-DD. The calendar is the union of the files' dates; an instrument is listed (in `all`
and the config's market) from its first row to its last, and a day without its row is a missing bar.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from krnn_core.market_data import MarketDataNotAvailable, last_closed_session
from krnn_core.qlib_appender import DayBatch
from krnn_core.quarantine import QuarantinedValue, screen_bars
from krnn_core.sources import RefreshReport, refresh_by_days
from krnn_core.sources.bars import derive_vwap, vwap_outside_range

REQUIRED = ("date", "open", "high", "low", "close", "volume")
OPTIONAL = ("vwap", "amount", "factor")
# the file name is the instrument code, as Qlib's instruments files and feature folders hold it
INSTRUMENT_CODE = re.compile(r"[A-Za-z0-9]+")


class CsvFeedError(ValueError):
    """A malformed CSV file; the message names the file and the line."""


@dataclass(frozen=True)
class CsvSource:
    """The CSV files of `path`, written under the markets `all` and `market`."""

    path: Path
    market: str = "all"

    def trading_days(self) -> pd.DatetimeIndex:
        """Every date that any file has a row for."""
        frames = self._frames()
        return pd.DatetimeIndex(sorted(set().union(*(frame.index for frame in frames.values()))))

    def refresh(self, provider_uri: Path, end: pd.Timestamp) -> RefreshReport:
        """Append the files' days after the pipeline folder's last one through `end`."""
        return refresh_by_days(self, provider_uri, end)

    def read_days(self, after: pd.Timestamp | None, end: pd.Timestamp) -> tuple[DayBatch, list[QuarantinedValue]]:
        """The screened bars of the files' days in (after, end]."""
        calendar = self.trading_days()
        if not len(calendar) or end > calendar[-1]:
            raise MarketDataNotAvailable(f"no CSV file in {self.path} has a row for {end.date()} or later")
        days = calendar[(calendar > (after or pd.Timestamp.min)) & (calendar <= end)]
        bars, quarantined, spans, without_vwap = {}, [], {}, []
        for code, frame in self._frames().items():
            rows = frame.reindex(days)
            fields = {name: rows[name].to_numpy(np.float32) for name in rows.columns}
            if not derive_vwap(fields):
                without_vwap.append(code)
            source_file = str(self.path / f"{code}.csv")
            quarantined += screen_bars(code, days, fields, source_file)
            quarantined += vwap_outside_range(code, days, fields, source_file)
            bars[code] = fields
            listed = frame.index[frame.index <= end]
            if len(listed):
                spans[code] = [(listed[0], listed[-1])]
        notes = {
            "vwap": f"missing for {len(without_vwap)} instruments" if without_vwap else "present",
            "files": len(bars),
        }
        return DayBatch(days, bars, {"all": spans, self.market: spans}, None, notes), quarantined

    def _frames(self) -> dict[str, pd.DataFrame]:
        """Each file's rows by instrument code; a missing folder, a bad name or a row of a future day is refused."""
        if not self.path.is_dir():
            raise CsvFeedError(f"{self.path}: the CSV source folder does not exist")
        frames, closed = {}, last_closed_session()
        for path in sorted(self.path.glob("*.csv")):
            if not INSTRUMENT_CODE.fullmatch(path.stem):
                raise CsvFeedError(f"{path}: the file name must be an instrument code of letters and digits")
            frame = read_feed_file(path, path.stat().st_mtime_ns, path.stat().st_size)
            if frame.index[-1] > closed:
                raise CsvFeedError(f"{path}: a row dated {frame.index[-1].date()}, after the last closed session")
            frames[path.stem.upper()] = frame
        return frames


@lru_cache(maxsize=4096)
def read_feed_file(path: Path, mtime_ns: int = 0, size: int = 0) -> pd.DataFrame:
    """One instrument's rows indexed by date; a malformed file is refused naming file and line.

    `mtime_ns` and `size` only key the cache, so a file changed on disk is read again.
    """
    text = _utf8_text(path)
    header = next(csv.reader(io.StringIO(text)), None)
    if not header or not any(cell.strip() for cell in header):
        raise CsvFeedError(f"{path} line 1: empty file, expected a header {','.join(REQUIRED)}")
    columns = [cell.strip().lower() for cell in header]
    if len(columns) == 1 and any(sep in columns[0] for sep in ";\t|"):
        raise CsvFeedError(f"{path} line 1: columns are not comma-separated: {header[0]!r}")
    missing = [name for name in REQUIRED if name not in columns]
    if missing:
        raise CsvFeedError(f"{path} line 1: missing columns {', '.join(missing)} (has {', '.join(columns)})")
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, skipinitialspace=True)
    except pd.errors.ParserError as error:
        raise CsvFeedError(f"{path}: {error}") from error
    if frame.empty:
        raise CsvFeedError(f"{path} line 2: no rows after the header")
    frame.columns = columns
    return _parse_rows(path, frame[[name for name in columns if name in REQUIRED + OPTIONAL]])


def _utf8_text(path: Path) -> str:
    """The file's text; a byte that is not UTF-8 is refused naming its line."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise CsvFeedError(f"{path} line {line}: byte {data[error.start]:#04x} is not UTF-8 text") from None


def _parse_rows(path: Path, frame: pd.DataFrame) -> pd.DataFrame:
    """Dates and numbers of the rows; the first bad one named by its line (the header is line 1)."""
    dates = pd.to_datetime(frame["date"].str.strip(), format="%Y-%m-%d", errors="coerce")
    if dates.isna().any():
        row = int(np.flatnonzero(dates.isna())[0])
        raise CsvFeedError(f"{path} line {row + 2}: date {frame['date'].iloc[row]!r} is not YYYY-MM-DD")
    if dates.duplicated().any():
        row = int(np.flatnonzero(dates.duplicated())[0])
        raise CsvFeedError(f"{path} line {row + 2}: duplicate date {dates.iloc[row].date()}")
    values = frame.drop(columns="date")
    numbers = values.apply(pd.to_numeric, errors="coerce")
    unparsable = numbers.isna() & values.notna() & (values.apply(lambda col: col.str.strip().str.lower()) != "nan")
    if unparsable.to_numpy().any():
        row, col = (int(i[0]) for i in np.nonzero(unparsable.to_numpy()))
        raise CsvFeedError(f"{path} line {row + 2}: {values.columns[col]} {values.iloc[row, col]!r} is not a number")
    return numbers.set_index(pd.DatetimeIndex(dates, name="date")).sort_index()
