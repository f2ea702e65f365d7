"""Qlib's Alpha360 features and label, computed with numpy from a Qlib data folder.

Definitions are Qlib's (`qlib.contrib.data.loader.Alpha360DL`): for each of close, open, high,
low, vwap the 60 values `Ref($field, lag)/$close` for lag 59..0, and `Ref($volume, lag)/($volume+1e-12)`.
The label is `Ref($close, -2)/Ref($close, -1) - 1`. Rows are the member-days of the market that
lie inside the instrument's stored data, as `D.features` returns them; a suspended day (a NaN bar)
keeps its row, with NaN values.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from krnn_core import qlib_store

FIELDS = ("close", "open", "high", "low", "vwap", "volume")
LAGS = 60
ALPHA360_COLUMNS = [f"{field.upper()}{lag}" for field in FIELDS for lag in range(LAGS - 1, -1, -1)]
LABEL_COLUMN = "LABEL0"
LABEL_EXPRESSION = "Ref($close, -2)/Ref($close, -1) - 1"
LABEL_HORIZON = 2  # the label of day t needs the close of t+2
_VOLUME_EPS = np.float32(1e-12)


@dataclass(frozen=True)
class MarketPanel:
    """The market's OHLCV of the universe, one float32 array over the whole calendar."""

    calendar: pd.DatetimeIndex
    codes: list[str]
    values: np.ndarray  # (days, instruments, FIELDS)
    member: np.ndarray  # (days, instruments) bool: in the market that day and inside its stored data

    def day_index(self, day: pd.Timestamp) -> int:
        """Position of a trading day in the calendar; a clear error for any other date."""
        pos = self.calendar.searchsorted(day)
        if pos >= len(self.calendar) or self.calendar[pos] != day:
            last = self.calendar[-1].date() if len(self.calendar) else None
            raise ValueError(f"{day.date()} is not a trading day of the data folder (last day {last})")
        return int(pos)


def load_panel(provider_uri: str | Path, market: str) -> MarketPanel:
    """Read every instrument that was ever in `market` from the Qlib folder."""
    calendar = qlib_store.read_calendar(provider_uri)
    spans = qlib_store.read_instruments(provider_uri, market)
    codes = sorted(spans)
    values = qlib_store.read_panel(provider_uri, codes, FIELDS, calendar)
    member = np.zeros((len(calendar), len(codes)), dtype=bool)
    for j, code in enumerate(codes):
        stored = qlib_store.data_range(provider_uri, code, calendar)
        if stored is None:
            continue
        for start, end in spans[code]:
            lo = max(calendar.searchsorted(start), stored[0])
            hi = min(calendar.searchsorted(end, side="right") - 1, stored[1])
            member[lo : hi + 1, j] = True
    return MarketPanel(calendar, codes, values, member)


def alpha360_block(panel: MarketPanel, first: int, last: int) -> tuple[pd.MultiIndex, np.ndarray]:
    """Alpha360 rows of the member-days in calendar positions [first, last]."""
    pad = max(0, LAGS - 1 - first)
    values = panel.values[first - (LAGS - 1) + pad : last + 1]
    if pad:  # lags before the first calendar day are missing, as in Qlib
        values = np.concatenate([np.full((pad, *values.shape[1:]), np.nan, np.float32), values])
    windows = sliding_window_view(values, LAGS, axis=0)  # (D, N, 6, 60), oldest lag first
    today = windows[..., -1]  # (D, N, 6)
    prices = windows[:, :, :5, :] / today[:, :, 0, None, None]  # divided by today's close
    volumes = windows[:, :, 5:, :] / (today[:, :, 5, None, None] + _VOLUME_EPS)
    features = np.concatenate([prices, volumes], axis=2)  # (D, N, 6, 60)
    days, inst = np.nonzero(panel.member[first : last + 1])
    rows = features[days, inst].reshape(len(days), len(ALPHA360_COLUMNS))  # (rows, 360)
    index = pd.MultiIndex.from_arrays(
        [panel.calendar[first + days], np.asarray(panel.codes)[inst]], names=["datetime", "instrument"]
    )
    return index, rows.astype(np.float32, copy=False)


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

