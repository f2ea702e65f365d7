"""The synthetic market's simulation: instruments, daily returns, bars, the planted score and the index.

Daily return of stock i on day t (clipped at the +-10% price limit):
    r = beta_i * m_t + loading_i * g_{sector(i),t} + e_{i,t} + planted_{i,t}
where the market m, the sector factors g and the idiosyncratic e are Student-t (4 d.o.f.)
shocks with GARCH(1,1) variances, so returns have fat tails and volatility clusters.
Volume rises with |r|; suspensions are spells of missing bars during which the price is
frozen; some names list after the start or delist; the index holds the `n_members` largest
caps after the `skip_largest` largest (CSI300: none skipped; CSI500: the 500 after CSI300's 300),
rebalanced on each quarter's first day from the closes before it; the benchmark weights its members by cap.

Planted signal: after day t's close, from the last 60 days of each stock's bars only,
    reversal     = -(close_t / close_{t-5} - 1)
    volume_price = -sum over the last 5 days of change_d * log(volume_d / mean 60-day volume)
(high-volume up days revert), each standardized across the stocks trading on t; their sum,
standardized again and clipped at +-3, is the score s_t (0 for a stock without a bar on t or
listed less than 5 days). It enters the future returns as
    planted_{i,t+k} = signal_strength * vol_i * DECAY[k-1] * s_{i,t},  k = 1..5,
vol_i being the stock's long-run idiosyncratic volatility. The Alpha360 label of day t is the
return of day t+2, so the oracle score of day t is the planted part of that return that is
known on day t: signal_strength * vol_i * sum_{k>=2} DECAY[k-1] * s_{i,t+2-k}.

Each day draws its random numbers from its own stream `default_rng([seed, 1, t])` and every
recursion runs forward in time, so a longer folder starts with the bytes of a shorter one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from krnn_core.data.synthetic_calendar import quarter_starts, trading_calendar

STOCK_FIELDS = ("open", "high", "low", "close", "volume", "vwap", "factor", "change")
DECAY = np.array([1.0, 0.6, 0.36, 0.2, 0.1])  # share of s_t that reaches r_{t+1}, r_{t+2}, ...
SCORE_WINDOW, REVERSAL_DAYS = 60, 5
T_DOF = 4
GARCH_ALPHA, GARCH_BETA = 0.08, 0.90
MARKET_VOL, SECTOR_VOL = 0.012, 0.008
LIMIT = 0.10
SUSPEND_PROB, MAX_SUSPENSION = 0.006, 10
EVENT_PROB, SPLIT_SHARE = 1 / 4000, 0.1  # dividends and splits step the adjustment factor
SEASONING = 60  # trading days a new listing waits before it may join the index


@dataclass(frozen=True)
class SyntheticMarket:
    """Parameters of the synthetic market; equal parameters give equal data."""

    seed: int = 7
    start: str = "2021-01-04"
    n_instruments: int = 360
    n_members: int = 300
    skip_largest: int = 0
    n_sectors: int = 10
    market: str = "csi300"
    benchmark: str = "SH000300"
    signal_strength: float = 0.08


@dataclass(frozen=True)
class Pool:
    """Constants of each instrument, drawn once from the seed."""

    codes: list[str]
    sector: np.ndarray
    beta: np.ndarray
    loading: np.ndarray
    vol: np.ndarray  # long-run idiosyncratic daily volatility
    shares: np.ndarray
    price0: np.ndarray
    turnover: np.ndarray
    first: np.ndarray  # calendar position of the listing day
    last: np.ndarray  # calendar position of the last bar before delisting


def draw_pool(market: SyntheticMarket) -> Pool:
    """Draw the instruments: 15% list within three years, 5% delist; prices near 15, caps near 30bn."""
    rng = np.random.default_rng([market.seed, 0])
    n = market.n_instruments
    late, delists = rng.random(n) < 0.15, rng.random(n) < 0.05
    first = np.where(late, rng.integers(20, 3 * 245, n), 0)
    last = np.where(delists, first + rng.integers(120, 4 * 245, n), np.iinfo(np.int64).max)
    price0 = np.exp(rng.normal(2.7, 0.6, n))
    cap = np.exp(rng.normal(np.log(3e10), 1.0, n))
    return Pool(
        codes=[f"SH{600000 + i}" if i % 2 == 0 else f"SZ{i:06d}" for i in range(n)],
        sector=rng.integers(0, market.n_sectors, n),
        beta=rng.uniform(0.7, 1.3, n),
        loading=rng.uniform(0.5, 1.2, n),
        vol=rng.uniform(0.012, 0.028, n),
        shares=cap / price0,
        price0=price0,
        turnover=np.exp(rng.normal(np.log(0.01), 0.4, n)),
        first=first,
        last=last,
    )


@dataclass(frozen=True)
class History:
    """The simulated market over `days`; bars are NaN where a stock has no bar."""

    days: pd.DatetimeIndex
    pool: Pool
    bars: dict[str, np.ndarray]  # field -> (days, instruments)
    latent: np.ndarray  # close carried through suspensions, price0 before listing
    score: np.ndarray  # planted score s_t
    member: np.ndarray  # index membership


def simulate(market: SyntheticMarket, days: pd.DatetimeIndex) -> History:
    """Run the market forward day by day; day t uses only its own random stream and the past."""
    pool, n_days, n = draw_pool(market), len(days), market.n_instruments
    bars = {field: np.full((n_days, n), np.nan) for field in STOCK_FIELDS}
    latent, score = np.empty((n_days, n)), np.zeros((n_days, n))
    member = np.zeros((n_days, n), dtype=bool)
    target = np.concatenate([[MARKET_VOL**2], np.full(market.n_sectors, SECTOR_VOL**2), pool.vol**2])
    variance, suspended_for, factor = target.copy(), np.zeros(n, dtype=int), np.ones(n)
    rebalances = set(quarter_starts(days))
    for t in range(n_days):
        rng = np.random.default_rng([market.seed, 1, t])
        prev = latent[t - 1] if t else pool.price0
        recent = score[max(0, t - len(DECAY)) : t][::-1]  # s_{t-1}, s_{t-2}, ...
        planted = market.signal_strength * pool.vol * (DECAY[: len(recent)] @ recent)
        r, variance = _returns(market, pool, target, variance, planted, rng)
        listed = (pool.first <= t) & (t <= pool.last)
        trading, suspended_for = _suspend(listed & (pool.first < t), listed, suspended_for, rng)
        factor = _step_factor(factor, trading, rng)
        _write_bars(bars, t, prev, np.where(trading, r, 0.0), trading, factor, pool, rng)
        bars["change"][t] = np.where(trading & (pool.first < t), r, np.nan)
        latent[t] = np.where(trading, bars["close"][t], prev)
        score[t] = _score(bars, latent, t, trading & (pool.first <= t - REVERSAL_DAYS))
        member[t] = _members(market, pool, t, prev) if t in rebalances else member[t - 1] & (t <= pool.last)
    return History(days, pool, bars, latent, score, member)


def _returns(
    market: SyntheticMarket,
    pool: Pool,
    target: np.ndarray,
    variance: np.ndarray,
    planted: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """The day's limited returns, and the GARCH variances of the market, sectors and stocks for tomorrow."""
    shocks = np.sqrt(variance) * rng.standard_t(T_DOF, len(target)) / np.sqrt(T_DOF / (T_DOF - 2))
    variance = (1 - GARCH_ALPHA - GARCH_BETA) * target + GARCH_ALPHA * shocks**2 + GARCH_BETA * variance
    common = pool.beta * shocks[0] + pool.loading * shocks[1:][pool.sector]
    return np.clip(common + shocks[1 + market.n_sectors :] + planted, -LIMIT, LIMIT), variance


def _suspend(
    may_start: np.ndarray, listed: np.ndarray, suspended_for: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Which listed stocks trade today, and the days left of each running suspension after today."""
    starts = may_start & (suspended_for == 0) & (rng.random(len(listed)) < SUSPEND_PROB)
    suspended_for = np.where(starts, rng.integers(1, MAX_SUSPENSION + 1, len(listed)), suspended_for)
    return listed & (suspended_for == 0), np.maximum(suspended_for - 1, 0)


def _step_factor(factor: np.ndarray, trading: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Raise the adjustment factor on ex-dates: a dividend of 0.5-3.5%, or a 2-for-1 split."""
    event, size = rng.random((2, len(factor)))
    step = np.where(size < SPLIT_SHARE, 2.0, 1.005 + 0.03 * size)
    return np.where(trading & (event < EVENT_PROB), factor * step, factor)


def _write_bars(
    bars: dict,
    t: int,
    prev: np.ndarray,
    r: np.ndarray,
    trading: np.ndarray,
    factor: np.ndarray,
    pool: Pool,
    rng: np.random.Generator,
) -> None:
    """Fill day t's OHLC, vwap, volume and factor of the trading stocks, inside the price limits."""
    gap_noise, high_noise, low_noise, volume_noise = rng.standard_normal((4, len(r)))
    close = prev * (1 + r)
    open_ = prev * (1 + np.clip(0.3 * r + 0.3 * pool.vol * gap_noise, -LIMIT, LIMIT))
    top, bottom = np.maximum(open_, close), np.minimum(open_, close)
    high = np.maximum(top, np.minimum(top * (1 + 0.5 * pool.vol * np.abs(high_noise)), prev * (1 + LIMIT)))
    low = np.minimum(bottom, np.maximum(bottom * (1 - 0.5 * pool.vol * np.abs(low_noise)), prev * (1 - LIMIT)))
    vwap = low + (high - low) * rng.uniform(0.2, 0.8, len(r))
    volume = pool.turnover * pool.shares * np.exp(0.5 * np.abs(r) / pool.vol + 0.3 * volume_noise)
    for field, values in zip(
        ("open", "high", "low", "close", "vwap", "volume", "factor"),
        (open_, high, low, close, vwap, volume, factor),
        strict=True,
    ):
        bars[field][t] = np.where(trading, values, np.nan)


def _standardize(x: np.ndarray) -> np.ndarray:
    """Cross-sectional z-score."""
    return (x - x.mean()) / (x.std() or 1.0)


def _score(bars: dict, latent: np.ndarray, t: int, valid: np.ndarray) -> np.ndarray:
    """The planted score s_t from the bars of the last SCORE_WINDOW days (see the module docstring)."""
    out = np.zeros(latent.shape[1])
    if valid.sum() < 2:
        return out
    volume = bars["volume"][max(0, t - SCORE_WINDOW + 1) : t + 1]
    mean_volume = np.nansum(volume, axis=0) / np.maximum(np.isfinite(volume).sum(axis=0), 1)
    recent = slice(max(0, t - REVERSAL_DAYS + 1), t + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        volume_price = -np.nansum(bars["change"][recent] * np.log(bars["volume"][recent] / mean_volume), axis=0)
        reversal = -(latent[t] / latent[t - REVERSAL_DAYS] - 1)
    combined = _standardize(reversal[valid]) + _standardize(volume_price[valid])
    out[valid] = np.clip(_standardize(combined), -3, 3)
    return out


def _members(market: SyntheticMarket, pool: Pool, t: int, prev: np.ndarray) -> np.ndarray:
    """The n_members largest caps after the skip_largest largest at the previous close, of seasoned listed names."""
    seasoned = (pool.first == 0) | (pool.first <= t - SEASONING)
    eligible = seasoned & (t < pool.last)
    cap = np.where(eligible, prev * pool.shares, -np.inf)
    chosen = np.zeros(len(cap), dtype=bool)
    ranked = np.argsort(-cap, kind="stable")
    chosen[ranked[market.skip_largest : market.skip_largest + market.n_members]] = True
    return chosen & eligible


def history_through(market: SyntheticMarket, end: str | pd.Timestamp, extra_days: int = 0) -> History:
    """Simulate from market.start through the last trading day <= end, plus `extra_days` after it."""
    start, end = pd.Timestamp(market.start), pd.Timestamp(end)
    if end < start:
        raise ValueError(f"end {end.date()} is before the synthetic market's start {start.date()}")
    days = trading_calendar(start, end + pd.Timedelta(days=7 * extra_days + 30))
    count = int(days.searchsorted(end, side="right"))
    if count == 0:
        raise ValueError(f"no trading day between {start.date()} and {end.date()}")
    return simulate(market, days[: count + extra_days])
