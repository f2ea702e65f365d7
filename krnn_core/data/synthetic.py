"""The embedded synthetic market: a Qlib data folder generated offline from a seed.

`krnn_core.data.synthetic_simulation` simulates it (its docstring has the return model and the planted
signal); this module writes it as a Qlib folder, with the cap-weighted benchmark, and scores the
oracle: the planted part of each label that is known on its day.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from krnn_core.data import qlib_store
from krnn_core.data.synthetic_calendar import day_ranges, trading_calendar
from krnn_core.data.synthetic_simulation import DECAY, STOCK_FIELDS, History, SyntheticMarket, history_through

__all__ = ["STOCK_FIELDS", "MarketSummary", "SyntheticMarket", "oracle_ic", "oracle_scores", "write_market"]

BENCHMARK_BASE = 1000.0
FUTURE_SPAN = pd.Timedelta(days=366)


@dataclass(frozen=True)
class MarketSummary:
    """What write_market wrote: calendar span, stocks with data and their non-missing bars."""

    days: int
    first_day: pd.Timestamp
    last_day: pd.Timestamp
    instruments: int
    rows: int


def _benchmark(history: History) -> dict[str, np.ndarray]:
    """Cap-weighted index of the members: each bar is the weighted mean of the members' moves."""
    pool, bars = history.pool, history.bars
    prev = np.vstack([pool.price0, history.latent[:-1]])
    weight = history.member * prev * pool.shares
    weight /= weight.sum(axis=1, keepdims=True)
    moves = {
        field: (np.nan_to_num(bars[field] / prev, nan=1.0) * weight).sum(axis=1)
        for field in ("open", "high", "low", "close", "vwap")
    }
    close = BENCHMARK_BASE * np.cumprod(moves["close"])
    prev_close = np.concatenate([[BENCHMARK_BASE], close[:-1]])
    index = {field: prev_close * move for field, move in moves.items()}
    index["volume"] = np.nansum(np.where(history.member, bars["volume"], np.nan), axis=1)
    index["factor"] = np.ones(len(close))
    index["change"] = moves["close"] - 1
    return index


def write_market(provider_uri: Path | str, market: SyntheticMarket, end: str | pd.Timestamp) -> MarketSummary:
    """Write the Qlib folder through the last trading day <= end; refuse to shrink a longer folder."""
    history = history_through(market, end)
    days, pool = history.days, history.pool
    calendar_file = Path(provider_uri) / "calendars" / "day.txt"
    if calendar_file.exists() and qlib_store.read_calendar(provider_uri)[-1] > days[-1]:
        raise ValueError(f"{calendar_file} already runs past {days[-1].date()}; write_market never shrinks it")
    data_spans, member_spans = {}, {}
    for j, code in enumerate(pool.codes):
        if pool.first[j] >= len(days):
            continue
        lo, hi = int(pool.first[j]), int(min(pool.last[j], len(days) - 1))
        for field in STOCK_FIELDS:
            qlib_store.write_field(provider_uri, code, field, history.bars[field][lo : hi + 1, j], lo)
        data_spans[code] = [(days[lo], days[hi])]
        if history.member[:, j].any():
            member_spans[code] = day_ranges(days, history.member[:, j])
    for field, values in _benchmark(history).items():
        qlib_store.write_field(provider_uri, market.benchmark, field, values, 0)
    # the calendar goes last: a run killed before it leaves the old last day, so the next run redoes it
    qlib_store.write_instruments(provider_uri, "all", data_spans)
    qlib_store.write_instruments(provider_uri, market.market, member_spans)
    future = trading_calendar(days[-1] + pd.Timedelta(days=1), days[-1] + FUTURE_SPAN)
    qlib_store.write_calendar(provider_uri, days, future)
    rows = int(np.isfinite(history.bars["close"]).sum())
    return MarketSummary(len(days), days[0], days[-1], len(data_spans), rows)


def _oracle(history: History, signal_strength: float) -> np.ndarray:
    """Planted part of each day's label (the return of t+2) that is known on day t."""
    known = np.zeros_like(history.score)
    for k in range(2, len(DECAY) + 1):
        known[k - 2 :] += DECAY[k - 1] * history.score[: len(known) - (k - 2)]
    return signal_strength * history.pool.vol * known


def oracle_scores(market: SyntheticMarket, end: str | pd.Timestamp) -> pd.Series:
    """The oracle score of every index member-day through end, on (datetime, instrument)."""
    history = history_through(market, end)
    days, inst = np.nonzero(history.member)
    index = pd.MultiIndex.from_arrays(
        [history.days[days], np.asarray(history.pool.codes)[inst]], names=["datetime", "instrument"]
    )
    oracle = _oracle(history, market.signal_strength)
    return pd.Series(oracle[days, inst], index=index, name="score").sort_index()


def oracle_ic(market: SyntheticMarket, start: str | pd.Timestamp, end: str | pd.Timestamp) -> float:
    """Mean daily Pearson IC of the oracle score against the label computed from the written closes."""
    history = history_through(market, end, extra_days=2)
    close = history.bars["close"].astype(np.float32)
    label = close[2:] / close[1:-1] - np.float32(1)
    oracle = _oracle(history, market.signal_strength)[:-2]
    first = int(history.days.searchsorted(pd.Timestamp(start)))
    ics = []
    for t in range(first, len(label)):
        ok = history.member[t] & np.isfinite(label[t])
        if ok.sum() > 2 and oracle[t, ok].std() > 0:  # the first days have no score yet
            ics.append(np.corrcoef(oracle[t, ok], label[t, ok])[0, 1])
    return float(np.mean(ics))
