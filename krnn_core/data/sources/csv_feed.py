"""A folder of CSV files, one per instrument (`SH600000.csv`), appended day by day into the Qlib folder.

Columns: date, open, high, low, close, volume, and optionally vwap, amount, factor, comma-separated,
UTF-8 (a byte-order mark is allowed), dates YYYY-MM-DD in any order. A file is named after its
instrument's code (SH, SZ or BJ and six digits, any case). The calendar is the union of the files'
dates through the last closed session; a row dated later is quarantined, never written. The future
calendar (`day_future.txt`) is the year of weekdays after the last day. An instrument is listed (in
`all` and the config's market) from its first row to its last, and a day without its row is a missing bar.

A malformed file stops the refresh before anything is written. A header-only file is refused too:
it is most likely a failed export, and taking it at its word would delist an instrument's history.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from krnn_core.data.appender import DayBatch
from krnn_core.data.market_data import MarketDataNotAvailable, last_closed_session
from krnn_core.data.quarantine import QuarantinedValue, screen_bars
from krnn_core.data.sources import RefreshReport, refresh_by_days
from krnn_core.data.sources.bars import derive_vwap, vwap_outside_range

REQUIRED = ("date", "open", "high", "low", "close", "volume")
OPTIONAL = ("vwap", "amount", "factor")
INSTRUMENT_CODE = re.compile(r"(SH|SZ|BJ)\d{6}", re.IGNORECASE)
FUTURE_ROW = "dated after the last closed session"
# a feed announces no holidays: its future calendar is the next year's weekdays, as its partitions are, so
# the next retraining period's first day is known on the last day of the current one
FUTURE_WEEKDAYS = 261


class CsvFeedError(ValueError):
    """A malformed CSV file; the message names the file and the line."""


@dataclass(frozen=True)
class CsvSource:
    """The CSV files of `path`, written under the markets `all` and `market`."""

    path: Path
    market: str = "all"

    def trading_days(self) -> pd.DatetimeIndex:
        """Every date through the last closed session that any file has a row for."""
        return _sessions(self._frames().values(), last_closed_session())

    def refresh(self, provider_uri: Path, end: pd.Timestamp) -> RefreshReport:
        """Append the files' days after the pipeline folder's last one through `end`."""
        return refresh_by_days(self, provider_uri, end)

    def read_days(self, after: pd.Timestamp | None, end: pd.Timestamp) -> tuple[DayBatch, list[QuarantinedValue]]:
        """The screened bars of the files' days in (after, end], and every row dated after the last closed session."""
        closed = last_closed_session()
        frames = self._frames()
        calendar = _sessions(frames.values(), closed)
        if not len(calendar) or end > calendar[-1]:
            raise MarketDataNotAvailable(
                f"no CSV file in {self.path} has a row for {end.date()} or later "
                f"(rows after the last closed session {closed.date()} do not count)"
            )
        days = calendar[(calendar > (after or pd.Timestamp.min)) & (calendar <= end)]
        bars, quarantined, spans, without_vwap = {}, [], {}, []
        for code, (path, frame) in frames.items():
            rows = frame.reindex(days)
            fields = {name: rows[name].to_numpy(np.float32) for name in rows.columns}
            if not derive_vwap(fields):
                without_vwap.append(code)
            quarantined += future_rows(code, frame, closed, str(path))
            quarantined += screen_bars(code, days, fields, str(path))
            quarantined += vwap_outside_range(code, days, fields, str(path))
            bars[code] = fields
            listed = frame.index[frame.index <= end]
            if len(listed):
                spans[code] = [(listed[0], listed[-1])]
        notes = {
            "vwap": f"missing for {len(without_vwap)} instruments" if without_vwap else "present",
            "files": len(bars),
        }
        future = pd.bdate_range(end + pd.Timedelta(days=1), periods=FUTURE_WEEKDAYS)
        return DayBatch(days, bars, {"all": spans, self.market: spans}, future, notes), quarantined

    def _frames(self) -> dict[str, tuple[Path, pd.DataFrame]]:
        """Code -> (file, rows) of every file; a missing folder, a name that is not a code, or a code's second file
        is refused."""
        if not self.path.is_dir():
            raise CsvFeedError(f"{self.path}: the CSV source folder does not exist")
        frames: dict[str, tuple[Path, pd.DataFrame]] = {}
        for path in sorted(self.path.glob("*.csv")):
            code = instrument_code(path)
            if code in frames:
                raise CsvFeedError(f"{path}: a second file for {code}, beside {frames[code][0]}")
            frames[code] = (path, read_feed_file(path, path.stat().st_mtime_ns, path.stat().st_size))
        return frames


def instrument_code(path: Path) -> str:
    """The code a feed file is named after, upper case; any other name is refused, naming the file."""
    if not INSTRUMENT_CODE.fullmatch(path.stem):
        raise CsvFeedError(
            f"{path}: the file name {path.stem!r} is not an instrument code (SH, SZ or BJ and six digits, "
            "e.g. SH600000.csv)"
        )
    return path.stem.upper()


def future_rows(code: str, frame: pd.DataFrame, closed: pd.Timestamp, source_file: str) -> list[QuarantinedValue]:
    """One quarantine row per row dated after `closed`, the last closed session: no such day is ever written."""
    return [
        QuarantinedValue(source_file, code, day, "date", float("nan"), f"{FUTURE_ROW} {closed.date()}")
        for day in frame.index[frame.index > closed]
    ]


def _sessions(frames: Iterable[tuple[Path, pd.DataFrame]], closed: pd.Timestamp) -> pd.DatetimeIndex:
    """The dates any file has a row for, through `closed`."""
    days = pd.DatetimeIndex(sorted(set().union(*(frame.index for _, frame in frames))))
    return days[days <= closed]


@lru_cache(maxsize=4096)
def read_feed_file(path: Path, mtime_ns: int = 0, size: int = 0) -> pd.DataFrame:
    """One instrument's rows indexed by date; a malformed file is refused naming file and line.

    `mtime_ns` and `size` only key the cache, so a file changed on disk is read again.
    """
    try:
        columns = _header(path)
        frame = pd.read_csv(path, dtype=str, skipinitialspace=True, encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise CsvFeedError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except pd.errors.ParserError as error:
        raise CsvFeedError(f"{path}: {error}") from error
    if frame.empty:
        raise CsvFeedError(
            f"{path} line 2: no rows after the header (a failed export?): refused, as it would delist "
            "the instrument's history; restore its rows"
        )
    frame.columns = columns
    return _parse_rows(path, frame[[name for name in columns if name in REQUIRED + OPTIONAL]])


def _header(path: Path) -> list[str]:
    """The file's column names in lower case; an empty, wrongly separated or incomplete header is refused."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle), None)
    if not header or not any(cell.strip() for cell in header):
        raise CsvFeedError(f"{path} line 1: empty file, expected a header {','.join(REQUIRED)}")
    columns = [cell.strip().lower() for cell in header]
    if len(columns) == 1 and any(sep in columns[0] for sep in ";\t|"):
        raise CsvFeedError(f"{path} line 1: columns are not comma-separated: {header[0]!r}")
    missing = [name for name in REQUIRED if name not in columns]
    if missing:
        raise CsvFeedError(f"{path} line 1: missing columns {', '.join(missing)} (has {', '.join(columns)})")
    repeated = [name for name in REQUIRED + OPTIONAL if columns.count(name) > 1]
    if repeated:
        raise CsvFeedError(f"{path} line 1: column {', '.join(repeated)} appears more than once")
    return columns


def _parse_rows(path: Path, frame: pd.DataFrame) -> pd.DataFrame:
    """Dates and numbers of the rows; the first bad one named by its line (the header is line 1)."""
    text = frame["date"].fillna("").str.strip()
    dates = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
    if dates.isna().any():
        row = int(np.flatnonzero(dates.isna())[0])
        raise CsvFeedError(f"{path} line {row + 2}: date {text.iloc[row]!r} is not YYYY-MM-DD")
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
