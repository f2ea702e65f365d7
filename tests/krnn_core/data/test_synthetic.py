"""The synthetic market: readable by Qlib, extendable byte for byte, realistic, and predictable."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from krnn_core.data import qlib_store
from krnn_core.data.synthetic import STOCK_FIELDS, SyntheticMarket, oracle_ic, oracle_scores, write_market
from krnn_core.data.synthetic_calendar import trading_calendar
from krnn_core.data.synthetic_simulation import history_through

MARKET = SyntheticMarket(n_instruments=60, n_members=40)
END = "2022-03-31"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("qlib")
    return path, write_market(path, MARKET, END)


@pytest.fixture(scope="module")
def panel(folder):
    path, _ = folder
    calendar = qlib_store.read_calendar(path)
    codes = sorted(qlib_store.read_instruments(path, "all"))
    return calendar, codes, qlib_store.read_fields(path, codes, STOCK_FIELDS, calendar)


def _field(panel, name):
    return panel[2][:, :, STOCK_FIELDS.index(name)]


def test_summary_describes_the_folder(folder, panel):
    path, summary = folder
    calendar, codes, _ = panel
    assert (summary.days, summary.first_day, summary.last_day) == (len(calendar), calendar[0], calendar[-1])
    assert calendar[-1] == trading_calendar(MARKET.start, END)[-1]
    assert summary.instruments == len(codes)
    assert summary.rows == np.isfinite(_field(panel, "close")).sum()


def test_qlib_reads_what_we_wrote(folder, panel):
    from krnn_core.data.qlib_runtime import init_qlib

    path, _ = folder
    calendar, codes, _ = panel
    init_qlib(path)
    from qlib.data import D

    frame = D.features(D.instruments(MARKET.market), ["$close", "$volume", "$vwap"], calendar[0], calendar[-1])
    spans = qlib_store.read_instruments(path, MARKET.market)
    expected_rows = {(code, day) for day in calendar for code in qlib_store.members_on(spans, day)}
    assert set(frame.index) == expected_rows
    code_pos = frame.index.get_level_values("instrument").map(codes.index).to_numpy()
    day_pos = calendar.get_indexer(frame.index.get_level_values("datetime"))
    for column, field in [("$close", "close"), ("$volume", "volume"), ("$vwap", "vwap")]:
        np.testing.assert_array_equal(frame[column].to_numpy(), _field(panel, field)[day_pos, code_pos])


def _files(path):
    return {p.relative_to(path): p.read_bytes() for p in path.rglob("*") if p.is_file()}


def test_extending_keeps_every_written_byte(tmp_path, folder):
    direct, _ = folder
    write_market(tmp_path, MARKET, "2021-12-31")
    short = _files(tmp_path)
    write_market(tmp_path, MARKET, END)
    assert _files(tmp_path) == _files(direct)

    long = _files(direct)
    for name, data in short.items():
        if name.suffix == ".bin" or name.name == "day.txt":
            assert long[name][: len(data)] == data, name
    last = pd.Timestamp("2021-12-31")
    short_spans = qlib_store.read_instruments(tmp_path, MARKET.market)
    long_spans = qlib_store.read_instruments(direct, MARKET.market)
    for day in trading_calendar(MARKET.start, last):
        assert qlib_store.members_on(short_spans, day) == qlib_store.members_on(long_spans, day)


def test_calendar_is_weekdays_without_holidays_and_extends_a_year(folder, panel):
    calendar = panel[0]
    assert (calendar.dayofweek < 5).all()
    assert not ((calendar.month == 10) & (calendar.day <= 7)).any()
    assert not ((calendar.month == 1) & (calendar.day == 1)).any()
    split = trading_calendar("2021-01-04", "2021-07-15").append(trading_calendar("2021-07-16", "2022-03-31"))
    pd.testing.assert_index_equal(split, trading_calendar("2021-01-04", "2022-03-31"))
    future = qlib_store.read_calendar(folder[0], future=True)
    assert (future[: len(calendar)] == calendar).all()
    assert 240 <= len(future) - len(calendar) <= 260


def test_bars_are_consistent(panel):
    open_, high, low, close, vwap = (_field(panel, f) for f in ("open", "high", "low", "close", "vwap"))
    bar = np.isfinite(close)
    assert (low[bar] <= np.minimum(open_, close)[bar]).all() and (np.maximum(open_, close)[bar] <= high[bar]).all()
    assert ((low[bar] <= vwap[bar]) & (vwap[bar] <= high[bar])).all()
    assert (_field(panel, "volume")[bar] > 0).all()
    previous = pd.DataFrame(close).ffill().shift().to_numpy()
    change = _field(panel, "change")
    with_change = np.isfinite(change)
    np.testing.assert_allclose(change[with_change], (close / previous - 1)[with_change], atol=1e-6)
    assert np.abs(change[with_change]).max() <= 0.1 + 1e-6
    factor = _field(panel, "factor")[bar]
    assert (factor >= 1).all() and 0.5 < (factor == 1).mean() < 1


def test_suspensions_are_short_spells_of_missing_bars(folder, panel):
    calendar, codes, values = panel
    missing_share, longest = [], 0
    for j, code in enumerate(codes):
        first, last = qlib_store.data_range(folder[0], code, calendar)
        gaps = np.isnan(values[first : last + 1, j, : STOCK_FIELDS.index("change")])
        assert (gaps.all(axis=1) | ~gaps.any(axis=1)).all()  # a missing bar misses every field
        runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], gaps[:, 0], [0]]))))[::2]
        longest = max([longest, *runs])
        missing_share.append(gaps[:, 0].mean())
    assert 0.005 < np.mean(missing_share) < 0.1 and 1 <= longest <= 10


def test_listings_delistings_and_membership_change(folder, panel):
    calendar = panel[0]
    data = qlib_store.read_instruments(folder[0], "all")
    assert any(ranges[0][0] > calendar[0] for ranges in data.values())
    assert any(ranges[-1][1] < calendar[-1] for ranges in data.values())
    spans = qlib_store.read_instruments(folder[0], MARKET.market)
    daily = [set(qlib_store.members_on(spans, day)) for day in calendar]
    assert max(map(len, daily)) == MARKET.n_members and min(map(len, daily)) >= MARKET.n_members - 3
    assert daily[0] - daily[-1] and daily[-1] - daily[0]
    benchmark = qlib_store.read_fields(folder[0], [MARKET.benchmark], ["close"], calendar)[:, 0, 0]
    assert np.isfinite(benchmark).all()


def test_returns_are_fat_tailed_and_volatility_clusters(panel):
    change = _field(panel, "change")
    returns = change[np.isfinite(change)]
    assert stats.kurtosis(returns, fisher=False) > 3
    size = np.abs(change)
    both = np.isfinite(size[1:]) & np.isfinite(size[:-1])
    assert np.corrcoef(size[1:][both], size[:-1][both])[0, 1] > 0.05


def _daily_ic(scores: pd.Series, labels: pd.Series) -> float:
    joined = pd.concat({"score": scores, "label": labels}, axis=1).dropna()
    return joined.groupby(level="datetime").apply(lambda day: day["score"].corr(day["label"])).mean()


def test_oracle_ic_is_measured_on_written_closes(panel):
    calendar, codes, _ = panel
    close = pd.DataFrame(_field(panel, "close"), index=calendar, columns=codes)
    labels = (close.shift(-2) / close.shift(-1) - 1).stack()
    labels.index.names = ["datetime", "instrument"]
    scores = oracle_scores(MARKET, END)
    measured = _daily_ic(scores, labels)
    assert 0.05 < measured < 0.3
    assert oracle_ic(MARKET, MARKET.start, calendar[-3]) == pytest.approx(measured, abs=1e-3)
    rng = np.random.default_rng(0)
    shuffled = scores.groupby(level="datetime").transform(lambda day: rng.permutation(day.to_numpy()))
    assert abs(_daily_ic(shuffled, labels)) < 0.03  # about three standard errors of a 300-day mean


def test_refuses_an_end_before_the_start_or_a_shrink(folder):
    with pytest.raises(ValueError, match="before the synthetic market's start"):
        write_market(folder[0], MARKET, "2020-12-31")
    with pytest.raises(ValueError, match="never shrinks"):
        write_market(folder[0], MARKET, "2021-06-30")


def test_a_csi500_like_index_holds_the_next_largest_caps_after_csi300s_and_has_its_benchmark(tmp_path):
    # one pool, three indexes: CSI300-like (the 20 largest), CSI500-like (the 25 after them), and the 45 largest
    csi500 = replace(MARKET, market="csi500", benchmark="SH000905", n_members=25, skip_largest=20)
    end = "2021-12-31"
    top20, top45 = (history_through(replace(MARKET, n_members=n), end).member for n in (20, 45))
    history = history_through(csi500, end)
    members = history.member
    assert not (members & top20).any() and (members == top45 & ~top20).all()
    assert members.sum(axis=1).max() == 25 and members.sum(axis=1).min() >= 22

    write_market(tmp_path, csi500, end)
    calendar = qlib_store.read_calendar(tmp_path)
    spans, codes = qlib_store.read_instruments(tmp_path, "csi500"), np.asarray(history.pool.codes)
    for t in (0, len(calendar) // 2, len(calendar) - 1):
        assert set(qlib_store.members_on(spans, calendar[t])) == set(codes[members[t]])
    # the benchmark moves as its members, weighted by their caps at the close before
    index = qlib_store.read_fields(tmp_path, ["SH000905"], ["close"], calendar)[:, 0, 0]
    cap = history.latent[:-1] * history.pool.shares
    weight = np.where(members[1:], cap, 0) / np.where(members[1:], cap, 0).sum(axis=1, keepdims=True)
    moves = np.nan_to_num(history.bars["close"][1:] / history.latent[:-1], nan=1.0)
    np.testing.assert_allclose(index[1:] / index[:-1], (weight * moves).sum(axis=1), rtol=1e-5)
