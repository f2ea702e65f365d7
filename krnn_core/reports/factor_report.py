"""Factor statistics of daily scores: IC decay, quantile group returns, top-k turnover.

Returns follow Qlib's label convention: the label of day t, `Ref($close,-2)/Ref($close,-1)-1`, is the
return from the close of t+1 to the close of t+2. The h-day return of day t is the return from the
close of t+1 to the close of t+1+h, compounded from the stored labels of t, t+1, ..., t+h-1 (h=1 is the
label itself). Compounding labels rather than reading $close keeps every statistic computable from
DuckDB alone; a name missing a label on any of those days (suspended, out of the market) has no h-day
return that day, where $close would bridge the gap.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from krnn_core.reports.evaluation import DATE_LEVEL, daily_ic, ic_summary, with_rolling_means

HORIZONS = tuple(range(1, 11))
QUANTILES = 5


def forward_returns(labels: pd.Series, horizons: tuple[int, ...] = HORIZONS) -> pd.DataFrame:
    """h-day returns (close t+1 to close t+1+h) per (datetime, instrument), one column per horizon."""
    daily = labels.astype("float64").unstack("instrument").sort_index()
    compounded, columns = daily, {}
    for h in range(1, max(horizons) + 1):
        if h > 1:
            # r_h = r_(h-1) + (1 + r_(h-1)) * label(t+h-1), never forming 1 + r, keeps h = 1 the label bit for bit;
            # row shifts count label days, i.e. trading days, not calendar days
            step = daily.shift(-(h - 1))
            compounded = compounded + (1.0 + compounded) * step
        if h in horizons:
            columns[h] = compounded.stack(future_stack=True)
    frame = pd.DataFrame(columns)
    frame.index.names = [DATE_LEVEL, "instrument"]
    return frame


def decay_by_day(scores: pd.Series, returns: pd.DataFrame) -> pd.DataFrame:
    """Daily IC / Rank IC of the scores against each horizon's return, rows (datetime, horizon)."""
    frames = [daily_ic(scores, returns[h]).assign(horizon=h) for h in returns.columns]
    frame = pd.concat(frames).set_index("horizon", append=True)
    return frame.sort_index()


def quantile_returns_by_day(scores: pd.Series, labels: pd.Series, groups: int = QUANTILES) -> pd.DataFrame:
    """Per day, mean label of each of `groups` equal-count score groups (q1 lowest) and top minus bottom."""
    pairs = pd.DataFrame({"score": scores, "label": labels}).astype("float64").dropna()
    by_day = pairs.groupby(level=DATE_LEVEL)
    pairs = pairs[by_day["score"].transform("size") >= groups]
    by_day = pairs.groupby(level=DATE_LEVEL)
    # ranks 1..n split into `groups` blocks whose sizes differ by at most one
    position = by_day["score"].rank(method="first") - 1
    group = (position * groups // by_day["score"].transform("size")).astype(int) + 1
    days = pairs.index.get_level_values(DATE_LEVEL)
    means = pairs["label"].groupby([days, group.to_numpy()]).mean().unstack().reindex(columns=range(1, groups + 1))
    means.columns = [f"q{q}" for q in means.columns]
    means.index.name = DATE_LEVEL
    means["long_short"] = means[f"q{groups}"] - means["q1"]
    return means


def topk_turnover(scores: pd.Series, topk: int) -> pd.Series:
    """Share of the day's top-k names (by score) that were not in the previous day's top k."""
    ordered = scores.dropna().sort_index().sort_values(ascending=False, kind="stable")
    top = ordered.groupby(level=DATE_LEVEL).head(topk).index.to_frame(index=False)
    members = top.groupby(DATE_LEVEL)["instrument"].agg(frozenset).sort_index()
    shares = [len(now - before) / len(now) for before, now in zip(members.iloc[:-1], members.iloc[1:], strict=True)]
    return pd.Series(shares, index=members.index[1:], name="turnover", dtype="float64")


@dataclass(frozen=True)
class FactorReport:
    """The daily factor statistics of a window and their summaries."""

    ic_daily: pd.DataFrame  # datetime -> ic, rank_ic, n and their rolling means
    decay_daily: pd.DataFrame  # (datetime, horizon) -> ic, rank_ic, n
    quantile_daily: pd.DataFrame  # datetime -> q1..q5, long_short
    turnover: pd.Series  # datetime -> share of the top k replaced
    topk: int

    def summary(self) -> dict[str, float]:
        """IC summary with the mean long-short return and mean top-k turnover."""
        return ic_summary(self.ic_daily) | {
            "long_short": float(self.quantile_daily["long_short"].mean()),
            "turnover": float(self.turnover.mean()),
        }

    def decay(self) -> pd.DataFrame:
        """Mean IC and Rank IC per horizon, each over the days whose horizon return has matured."""
        by_horizon = self.decay_daily.groupby(level="horizon")
        return pd.DataFrame(
            {"ic": by_horizon["ic"].mean(), "rank_ic": by_horizon["rank_ic"].mean(), "days": by_horizon.size()}
        )

    def quantile_means(self) -> pd.DataFrame:
        """Mean daily return of each quantile group (1 = lowest scores)."""
        groups = self.quantile_daily.drop(columns="long_short")
        frame = pd.DataFrame({"mean_return": groups.mean(), "days": groups.count()})
        frame.index = pd.Index([int(name[1:]) for name in groups.columns], name="quantile")
        return frame


def factor_report(scores: pd.Series, labels: pd.Series, topk: int) -> FactorReport:
    """All factor statistics of the scores; labels may run past the last score day for the decay."""
    score_days = scores.index.get_level_values(DATE_LEVEL)
    daily = daily_ic(scores, labels)
    if daily.empty:
        raise ValueError(
            f"no signal day in {score_days.min():%Y-%m-%d}..{score_days.max():%Y-%m-%d} has matured labels yet"
        )
    return FactorReport(
        ic_daily=with_rolling_means(daily),
        decay_daily=decay_by_day(scores, forward_returns(labels)),
        quantile_daily=quantile_returns_by_day(scores, labels),
        turnover=topk_turnover(scores, topk),
        topk=topk,
    )
