"""A range run writes exactly the rows of the day-by-day runs it stands for, and only index members'.

The Qlib folder is built by hand so that membership changes lie where a window can start after a
member left, end before one joined, or cross a change; the expected rows come from its spec, by dates.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import numpy as np
import pandas as pd
import pytest
import torch

from krnn_core.data import qlib_store
from krnn_core.features import store
from krnn_core.features.alpha360 import FIELDS, LABEL_HORIZON
from krnn_core.features.processors import RobustZScoreNorm
from krnn_core.features.store import materialize_features, materialize_labels, read_features, read_labels
from krnn_core.model import versions
from krnn_core.model.krnn import KRNN, KRNNConfig
from krnn_core.model.versions import load_artifact, record_model_versions, save_artifact
from krnn_core.signals.scoring import read_signals, score_days, signal_universe_problems, write_signals

CALENDAR = pd.bdate_range("2023-01-02", periods=140)
MONDAYS = CALENDAR[CALENDAR.dayofweek == 0]
# code: (first and last calendar position of its data, or None; membership ranges by position; suspended days)
SPEC = {
    "SH600000": ((0, 139), [(0, 139)], []),
    "SH600001": ((0, 139), [(0, 15)], []),  # leaves the index early and keeps trading
    "SH600002": ((0, 139), [(110, 139)], []),  # joins late
    "SH600003": ((0, 139), [(20, 50), (85, 100)], []),  # in, out, in, out
    "SH600004": ((0, 40), [(0, 60)], []),  # delisted at 40 while the index still lists it
    "SH600005": ((70, 139), [(60, 139)], []),  # listed in the index before its first bar
    "SH600006": ((0, 139), [(0, 139)], [*range(30, 36), *range(95, 100)]),  # suspended twice
    "SH600007": (None, [(10, 120)], []),  # a member without any data
    "SH600008": ((0, 139), [], []),  # ranges from a Saturday to a Sunday: set below
    "SH600009": ((0, 139), [(0, 5)], []),
}
WEEKEND_RANGE = (MONDAYS[9] - pd.Timedelta(days=2), MONDAYS[16] - pd.Timedelta(days=1))
MARKET = "csi300"


def _ranges(code: str) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    if code == "SH600008":
        return [WEEKEND_RANGE]
    return [(CALENDAR[first], CALENDAR[last]) for first, last in SPEC[code][1]]


def _write_folder(path) -> None:
    rng = np.random.default_rng(3)
    qlib_store.write_calendar(path, CALENDAR)
    qlib_store.write_instruments(path, MARKET, {code: _ranges(code) for code in SPEC})
    for code, (data, _, suspended) in SPEC.items():
        if data is None:
            continue
        days = data[1] - data[0] + 1
        close = (20 * np.exp(np.cumsum(rng.normal(0, 0.02, days)))).astype(np.float32)
        bars = {"close": close, "open": close * 1.01, "high": close * 1.02, "low": close * 0.98}
        bars |= {"vwap": close * 1.005, "volume": rng.uniform(1e5, 1e6, days).astype(np.float32)}
        for field in FIELDS:
            values = bars[field].copy()
            values[[day - data[0] for day in suspended]] = np.nan
            qlib_store.write_field(path, code, field, values, data[0])


def _expected_rows(with_bar: bool) -> set[tuple[pd.Timestamp, str]]:
    """(day, code) of listed members inside their data (and with a bar that day when `with_bar`), from SPEC."""
    rows = set()
    for code, (data, _, suspended) in SPEC.items():
        for t, day in enumerate(CALENDAR):
            listed = any(start <= day <= end for start, end in _ranges(code))
            inside = data is not None and data[0] <= t <= data[1]
            if listed and inside and not (with_bar and t in suspended):
                rows.add((day, code))
    return rows


def _run(con: duckdb.DuckDBPyConnection, folder, first: int, last: int) -> None:
    """What a Dagster run of the trading-day partitions [first, last] does: features, labels, signals."""
    start, end = CALENDAR[first], CALENDAR[last]
    materialize_features(con, folder, MARKET, start, end)
    materialize_labels(con, folder, MARKET, start, end)
    write_signals(con, score_days(con, start, end), start, end)


def _tables(con: duckdb.DuckDBPyConnection) -> dict:
    first, last = CALENDAR[0], CALENDAR[-1]
    signals = con.execute("SELECT * FROM signals ORDER BY datetime, instrument").df()
    return {"features": read_features(con, first, last), "labels": read_labels(con, first, last), "signals": signals}


def _assert_same(got: dict, expected: dict, what: str) -> None:
    assert got["features"].index.equals(expected["features"].index), what
    np.testing.assert_array_equal(got["features"].x, expected["features"].x, err_msg=what)
    pd.testing.assert_series_equal(got["labels"], expected["labels"], obj=what)
    pd.testing.assert_frame_equal(got["signals"], expected["signals"], obj=what)


def _record_untrained_model(con: duckdb.DuckDBPyConnection, model_dir) -> None:
    """A small KRNN with its initial weights, usable from the calendar's first day: scoring needs no training."""
    torch.manual_seed(0)
    model = KRNN(KRNNConfig(cnn_dim=4, rnn_dim=4, rnn_dups=1, rnn_layers=1))
    norm = RobustZScoreNorm.fit(np.random.default_rng(0).normal(size=(50, 360)).astype(np.float32))
    config = {"cnn_dim": 4, "rnn_dim": 4, "rnn_dups": 1, "rnn_layers": 1}
    path, digest = save_artifact(model_dir, "krnn-untrained", model.state_dict(), norm, [], config)
    row = {"model_version": "krnn-untrained", "label_end": datetime(2022, 12, 30), "artifact_path": str(path)}
    record_model_versions(con, [row | {"sha256": digest, "created_at": datetime(2023, 1, 1)}])


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Scoring a few rows a day: a second thread only adds contention (a tenth of the time on one)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def market(tmp_path_factory, one_torch_thread):
    """The folder, and a warehouse filled one trading day at a time, as the daily schedule would."""
    root = tmp_path_factory.mktemp("range_runs")
    _write_folder(root / "qlib")
    con = duckdb.connect()
    _record_untrained_model(con, root / "models")
    for t in range(len(CALENDAR)):
        _run(con, root / "qlib", t, t)
    yield root / "qlib", con
    con.close()


def test_day_by_day_rows_are_the_members_inside_their_data_and_signals_those_with_a_bar(market):
    _, con = market
    daily = _tables(con)
    assert set(daily["features"].index) == _expected_rows(with_bar=False)
    matured = {(day, code) for day, code in _expected_rows(with_bar=False) if day <= CALENDAR[-1 - LABEL_HORIZON]}
    assert set(daily["labels"].index) == matured
    assert set(zip(daily["signals"]["datetime"], daily["signals"]["instrument"], strict=True)) == _expected_rows(
        with_bar=True
    )


def test_a_range_run_writes_exactly_the_rows_of_its_days_run_one_by_one(market):
    folder, daily_con = market
    daily = _tables(daily_con)
    con = duckdb.connect()
    _record_untrained_model(con, folder.parent / "models_range")
    _run(con, folder, 0, len(CALENDAR) - 1)  # the backfill of the whole history: its first window
    _assert_same(_tables(con), daily, "the whole calendar")
    # after members left (windows from 77 on begin 60 days after SH600001 left), before one joins,
    # across joins, exits, the first bar of SH600005 and the weekend-bounded range, at both ends of the calendar
    crafted = [(90, 110), (60, 75), (16, 16), (45, 72), (98, 101), (130, 139), (0, 1), (139, 139)]
    rng = np.random.default_rng(20)
    drawn = []
    for _ in range(15):  # windows of 1 to 30 days anywhere in the calendar
        first = int(rng.integers(0, len(CALENDAR)))
        drawn.append((first, min(first + int(rng.integers(0, 30)), len(CALENDAR) - 1)))
    for first, last in crafted + drawn:
        _run(con, folder, first, last)  # rewrites its days: the warehouse must stay as day by day
        _assert_same(_tables(con), daily, f"after the range run {CALENDAR[first].date()}..{CALENDAR[last].date()}")


def test_a_range_scored_a_few_days_at_a_time_equals_the_daily_signals_and_loads_its_model_once(market, monkeypatch):
    _, con = market
    daily = _tables(con)["signals"]
    loaded = []
    # scoring imports load_artifact when it first loads a model (torch stays out of the code location's import)
    monkeypatch.setattr(versions, "load_artifact", lambda *args: loaded.append(args) or load_artifact(*args))
    monkeypatch.setattr(store, "READ_CHUNK_ROWS", 40)  # about 6 of the 140 days a chunk
    frame = score_days(con, CALENDAR[0], CALENDAR[-1])
    frame["datetime"] = frame["datetime"].astype(daily["datetime"].dtype)
    got = frame.sort_values(["datetime", "instrument"], ignore_index=True)[daily.columns]
    pd.testing.assert_frame_equal(got, daily)
    assert len(loaded) == 1  # one version serves every day: its artifact is read and hashed once


def test_the_universe_check_passes_on_day_by_day_signals(market):
    folder, con = market
    stored = read_signals(con, CALENDAR[0], CALENDAR[-1])
    assert signal_universe_problems(stored, folder, MARKET, CALENDAR[0], CALENDAR[-1]) == {day: [] for day in CALENDAR}


def test_the_universe_check_names_non_members_suspended_members_missing_and_bad_scores(market):
    folder, con = market
    start, end = CALENDAR[90], CALENDAR[99]
    stored = read_signals(con, start, end).drop((CALENDAR[93], "SH600000"))
    stored.loc[(CALENDAR[97], "SH600003")] = np.nan
    intruders = [(CALENDAR[92], "SH600001"), (CALENDAR[96], "SH600006"), (CALENDAR[94], "SH600000")]
    # SH600001 left the index on day 15, SH600006 is suspended on days 95..99, SH600000 is scored twice
    stored = pd.concat([stored, pd.Series([0.9, 0.8, 0.7], index=pd.MultiIndex.from_tuples(intruders))])
    problems = signal_universe_problems(stored, folder, MARKET, start, end)
    assert list(problems) == list(CALENDAR[90:100])
    assert {str(day.date()): found for day, found in problems.items() if found} == {
        "2023-05-10": ["scores of instruments that are not index members that day: 1, e.g. SH600001 2023-05-10"],
        "2023-05-11": ["members with a bar and no finite score: 1, e.g. SH600000 2023-05-11"],
        "2023-05-12": ["duplicate rows: 1, e.g. SH600000 2023-05-12"],
        "2023-05-16": ["scores of members without a bar that day: 1, e.g. SH600006 2023-05-16"],
        "2023-05-17": [
            "members with a bar and no finite score: 1, e.g. SH600003 2023-05-17",
            "non-finite scores: 1, e.g. SH600003 2023-05-17",
        ],
    }
