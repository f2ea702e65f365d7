"""The report tables and views the ic_report and backtest_report assets leave in DuckDB and its snapshot."""

from __future__ import annotations

import pandas as pd
import pytest

from krnn_core.reports.factor_report import HORIZONS
from krnn_core.signals.read_snapshot import open_snapshot
from krnn_core.warehouse import connect

TOPK = 20  # conftest's TopkDropoutStrategy topk


@pytest.fixture(scope="module")
def tables(pipeline) -> dict[str, pd.DataFrame]:
    """Every report table as stored by the pipeline fixture."""
    names = (
        "ic_daily",
        "ic_summary",
        "ic_decay",
        "ic_decay_daily",
        "quantile_returns",
        "quantile_daily",
        "turnover_daily",
        "signals",
    )
    with connect(pipeline.duckdb_path, read_only=True) as con:
        return {name: con.execute(f"SELECT * FROM {name} ORDER BY ALL").df() for name in names}


def test_rolling_means_in_ic_daily_average_the_last_20_days(tables) -> None:
    daily = tables["ic_daily"]
    assert daily["ic_mean_20"].iloc[:19].isna().all()
    assert daily["ic_mean_20"].iloc[19] == pytest.approx(daily["ic"].iloc[:20].mean())
    assert daily["rank_ic_mean_20"].iloc[-1] == pytest.approx(daily["rank_ic"].iloc[-20:].mean())


def test_ic_decay_starts_at_the_daily_ic_and_covers_ten_horizons(tables) -> None:
    decay, summary = tables["ic_decay"], tables["ic_summary"].iloc[0]
    assert decay["horizon"].tolist() == list(HORIZONS)
    assert decay["ic"].iloc[0] == pytest.approx(summary["ic"], rel=1e-12)
    assert decay["rank_ic"].iloc[0] == pytest.approx(summary["rank_ic"], rel=1e-12)
    # the labels of 9 trading days after the last signal day are not there yet
    assert decay["days"].iloc[0] - decay["days"].iloc[-1] == 9
    by_day = tables["ic_decay_daily"].groupby("horizon")["ic"].mean()
    assert by_day.to_numpy() == pytest.approx(decay["ic"].to_numpy())


def test_quantile_returns_and_long_short_agree(tables) -> None:
    means = tables["quantile_returns"].set_index("quantile")["mean_return"]
    daily, summary = tables["quantile_daily"], tables["ic_summary"].iloc[0]
    assert list(means.index) == [1, 2, 3, 4, 5]
    assert summary["long_short"] == pytest.approx(means[5] - means[1])
    assert daily["q3"].mean() == pytest.approx(means[3])
    assert len(daily) == summary["days"]


def test_turnover_is_the_share_of_new_names_in_the_top_k(tables) -> None:
    turnover, signals = tables["turnover_daily"], tables["signals"]
    top = signals[signals["rank"] <= TOPK].groupby("datetime")["instrument"].agg(set)
    expected = [len(now - before) / TOPK for before, now in zip(top.iloc[:-1], top.iloc[1:], strict=True)]
    assert (turnover["topk"] == TOPK).all()
    assert turnover["turnover"].to_numpy() == pytest.approx(expected)
    assert tables["ic_summary"]["turnover"].iloc[0] == pytest.approx(turnover["turnover"].mean())


def test_the_snapshot_serves_latest_signals_ranked(pipeline, tables) -> None:
    signals = tables["signals"]
    last = signals[signals["datetime"] == signals["datetime"].max()].sort_values("rank")
    with open_snapshot(pipeline.duckdb_path) as con:
        latest = con.execute("SELECT * FROM latest_signals").df()
        decay_rows = con.execute("SELECT count(*) FROM ic_decay").fetchone()[0]
    assert latest["instrument"].tolist() == last["instrument"].tolist()
    assert latest["rank"].tolist() == list(range(1, len(last) + 1))
    assert decay_rows == len(HORIZONS)
