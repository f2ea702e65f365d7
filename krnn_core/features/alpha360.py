"""Qlib's Alpha360 features and label, computed with numpy from a Qlib data folder.

Definitions are Qlib's (`qlib.contrib.data.loader.Alpha360DL`): for each of close, open, high,
low, vwap the 60 values `Ref($field, lag)/$close` for lag 59..0, and `Ref($volume, lag)/($volume+1e-12)`.
The label is `Ref($close, -2)/Ref($close, -1) - 1`. Rows are the member-days of the market that
lie inside the instrument's stored data, as `D.features` returns them; a suspended day (a NaN bar)
keeps its row, with NaN values.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from krnn_core.data import qlib_store

FIELDS = ("close", "open", "high", "low", "vwap", "volume")
LAGS = 60
ALPHA360_COLUMNS = [f"{field.upper()}{lag}" for field in FIELDS for lag in range(LAGS - 1, -1, -1)]
LABEL_COLUMN = "LABEL0"
LABEL_HORIZON = 2  # the label of day t needs the close of t+2
_VOLUME_EPS = np.float32(1e-12)
_CHUNK_VALUES = 1 << 24  # float32 values per computed chunk (64 MiB): bounds the peak memory of long ranges


@dataclass(frozen=True)
class MarketPanel:
    """The market's OHLCV of the universe, one float32 array over the whole calendar."""

    calendar: pd.DatetimeIndex
    codes: list[str]
    values: np.ndarray  # (days, instruments, FIELDS)
    member: np.ndarray  # (days, instruments) bool: in the market that day and inside its stored data

    def day_index(self, day: pd.Timestamp) -> int:
        """Position of a trading day in the panel's calendar; a clear error for any other date."""
        return calendar_position(self.calendar, day)


def load_panel(
    provider_uri: str | Path,
    market: str,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    *,
    history: int = 0,
    horizon: int = 0,
) -> MarketPanel:
    """Instruments ever in `market`, read over [start - history, end + horizon] trading days (default: all).

    Only that window of each .bin file is read, so one day's features cost 60 days of I/O.
    """
    full = qlib_store.read_calendar(provider_uri)
    lo = 0 if start is None else max(calendar_position(full, start) - history, 0)
    hi = len(full) - 1 if end is None else min(calendar_position(full, end) + horizon, len(full) - 1)
    calendar = full[lo : hi + 1]
    spans = qlib_store.read_instruments(provider_uri, market)
    codes = sorted(spans)
    values = np.full((len(calendar), len(codes), len(FIELDS)), np.nan, dtype=np.float32)
    member = np.zeros((len(calendar), len(codes)), dtype=bool)
    for j, code in enumerate(codes):
        stored = qlib_store.bin_span(qlib_store.field_path(provider_uri, code, "close"), len(full))
        if stored is None or stored[1] == 0:
            continue
        for k, field in enumerate(FIELDS):
            qlib_store.read_bin_window(qlib_store.field_path(provider_uri, code, field), len(full), lo, values[:, j, k])
        first_stored, last_stored = stored[0], stored[0] + stored[1] - 1
        for first, last in qlib_store.listed_positions(full, spans[code]):
            first, last = max(first, first_stored, lo), min(last, last_stored, hi)
            if first <= last:  # a range that ends before the window would give a negative stop: a slice from the end
                member[first - lo : last - lo + 1, j] = True
    return MarketPanel(calendar, codes, values, member)


def calendar_position(calendar: pd.DatetimeIndex, day: pd.Timestamp) -> int:
    """Position of a trading day in the calendar; a clear error for any other date."""
    pos = calendar.searchsorted(day)
    if pos >= len(calendar) or calendar[pos] != day:
        last = calendar[-1].date() if len(calendar) else None
        raise ValueError(f"{day.date()} is not a trading day of the data folder (last day {last})")
    return int(pos)


def alpha360_block(panel: MarketPanel, first: int, last: int) -> tuple[pd.MultiIndex, np.ndarray]:
    """Alpha360 rows (float32, rows x 360) of the member-days in calendar positions [first, last]."""
    pad = max(0, LAGS - 1 - first)
    values = panel.values[first - (LAGS - 1) + pad : last + 1]
    if pad:  # lags before the panel's first day are missing, as in Qlib at the start of the calendar
        values = np.concatenate([np.full((pad, *values.shape[1:]), np.nan, np.float32), values])
    windows = sliding_window_view(values, LAGS, axis=0)  # (D, N, 6, 60) view, oldest lag first
    days, inst = np.nonzero(panel.member[first : last + 1])
    rows = windows[days, inst]  # (R, 6, 60): only member-days are copied and computed
    today = rows[:, :, -1].copy()  # (R, 6)
    rows[:, :5] /= today[:, 0, None, None]  # prices divided by today's close
    rows[:, 5] /= today[:, 5, None] + _VOLUME_EPS
    index = pd.MultiIndex.from_arrays(
        [panel.calendar[first + days], np.asarray(panel.codes)[inst]], names=["datetime", "instrument"]
    )
    return index, rows.reshape(len(days), len(ALPHA360_COLUMNS))


def alpha360_chunks(panel: MarketPanel, first: int, last: int) -> Iterator[tuple[pd.MultiIndex, np.ndarray]]:
    """alpha360_block of [first, last] in consecutive day ranges small enough to bound memory."""
    days_per_chunk = max(1, _CHUNK_VALUES // (max(len(panel.codes), 1) * len(ALPHA360_COLUMNS)))
    for chunk_first in range(first, last + 1, days_per_chunk):
        yield alpha360_block(panel, chunk_first, min(chunk_first + days_per_chunk - 1, last))


def labels_block(panel: MarketPanel, first: int, last: int) -> pd.Series:
    """Labels of the member-days in [first, last]; days without t+2 in the calendar are left out."""
    last = min(last, len(panel.calendar) - 1 - LABEL_HORIZON)
    if last < first:
        return pd.Series([], dtype=np.float32, name=LABEL_COLUMN)
    close = panel.values[:, :, FIELDS.index("close")]
    label = close[first + 2 : last + 3] / close[first + 1 : last + 2] - np.float32(1)  # (D, N)
    days, inst = np.nonzero(panel.member[first : last + 1])
    index = pd.MultiIndex.from_arrays(
        [panel.calendar[first + days], np.asarray(panel.codes)[inst]], names=["datetime", "instrument"]
    )
    return pd.Series(label[days, inst], index=index, name=LABEL_COLUMN)
