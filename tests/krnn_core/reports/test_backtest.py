"""Qlib backtest of scores on a small synthetic market: edge, costs, turnover, timing, calendar ends."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from krnn_core.data import qlib_store
from krnn_core.data.synthetic import SyntheticMarket, oracle_scores, write_market
from krnn_core.reports.backtest import BacktestConfig, cumulative_excess_plot, run_backtest
from tests.fixtures import REPO_ROOT

LAST_DAY = "2022-06-30"
START = "2021-04-01"
CONFIG = BacktestConfig()
QLIB_DAYS_PER_YEAR = 238  # risk_analysis's scaler for freq="day"


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.Series]:
    """Qlib folder of 80 stocks (60 index members) through LAST_DAY, and its oracle scores."""
    root = tmp_path_factory.mktemp("qlib")
    synthetic = SyntheticMarket(n_instruments=80, n_members=60)
    write_market(root, synthetic, LAST_DAY)
    return root, oracle_scores(synthetic, LAST_DAY)


@pytest.fixture(scope="module")
def oracle_run(market) -> tuple[pd.DataFrame, dict]:
    root, oracle = market
    return run_backtest(root, oracle, START, LAST_DAY, CONFIG)


@pytest.fixture(scope="module")
def random_run(market) -> tuple[pd.DataFrame, dict]:
    root, oracle = market
    noise = pd.Series(np.random.default_rng(0).normal(size=len(oracle)), index=oracle.index)
    return run_backtest(root, noise, START, LAST_DAY, CONFIG)


def test_oracle_scores_earn_excess_and_beat_random_scores(oracle_run, random_run) -> None:
    oracle_summary, random_summary = oracle_run[1], random_run[1]
    assert oracle_summary["excess_return_with_cost.annualized_return"] > 0
    assert oracle_summary["excess_return_with_cost.information_ratio"] > 1
    assert (
        oracle_summary["excess_return_with_cost.annualized_return"]
        > random_summary["excess_return_with_cost.annualized_return"]
    )


def test_costs_lower_the_excess_return_by_their_annualized_mean(oracle_run) -> None:
    daily, summary = oracle_run
    without_cost = summary["excess_return_without_cost.annualized_return"]
    gap = without_cost - summary["excess_return_with_cost.annualized_return"]
    assert (daily["cost"] > 0).all()
    # Qlib annualizes by summation: mean daily return times 238.
    assert gap == pytest.approx(daily["cost"].mean() * QLIB_DAYS_PER_YEAR)
    assert summary["days"] == len(daily)


def test_bench_is_the_benchmark_close_to_close_change(market, oracle_run) -> None:
    root, _ = market
    daily = oracle_run[0]
    calendar = qlib_store.read_calendar(root)
    close = pd.Series(qlib_store.read_fields(root, [CONFIG.benchmark], ["close"], calendar)[:, 0, 0], index=calendar)
    np.testing.assert_allclose(daily["bench"], close.pct_change().loc[daily.index], rtol=1e-5)


def test_turnover_follows_topk_dropout(random_run) -> None:
    turnover = random_run[0]["turnover"]
    # Day one buys topk names with at most risk_degree (0.95) of the cash; afterwards at most n_drop
    # names are sold and n_drop bought, about 2 * n_drop / topk of the account, plus price drift.
    daily_bound = 2 * CONFIG.n_drop / CONFIG.topk
    assert 0.5 < turnover.iloc[0] <= 0.95
    assert turnover.iloc[1:].max() < 1.5 * daily_bound
    assert turnover.iloc[1:].median() == pytest.approx(daily_bound, rel=0.1)


def test_a_score_of_day_t_is_traded_on_the_next_trading_day(market) -> None:
    root, oracle = market
    day = pd.Timestamp("2021-06-15")
    one_day = oracle[oracle.index.get_level_values("datetime") == day]
    daily, _ = run_backtest(root, one_day, "2021-06-10", "2021-06-25", CONFIG)
    traded = daily.index[daily["turnover"] > 0]
    assert list(traded) == [daily.index[daily.index.get_loc(day) + 1]]


def test_backtest_ends_on_the_last_day_with_data_when_a_future_calendar_exists(oracle_run) -> None:
    daily, summary = oracle_run
    assert summary["end"] == LAST_DAY
    assert daily.index[-1] == pd.Timestamp(LAST_DAY)


def test_without_a_future_calendar_the_backtest_ends_one_day_earlier(market, tmp_path: Path) -> None:
    root, oracle = market
    copy = tmp_path / "no_future"
    shutil.copytree(root, copy)
    (copy / "calendars" / "day_future.txt").unlink()
    daily, summary = run_backtest(copy, oracle, "2022-06-01", LAST_DAY, CONFIG)
    assert summary["end"] == "2022-06-29"
    assert daily.index[-1] == pd.Timestamp("2022-06-29")


def test_a_window_without_scores_raises(market) -> None:
    root, oracle = market
    with pytest.raises(ValueError, match=r"no scores in \[2023-01-02, 2023-02-01\]"):
        run_backtest(root, oracle, "2023-01-02", "2023-02-01", CONFIG)


def test_plot_is_a_png_of_the_figure(oracle_run) -> None:
    png = cumulative_excess_plot(oracle_run[0])
    image = matplotlib.image.imread(io.BytesIO(png), format="png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert image.shape[:2] == (500, 1000)


QUIET_BACKTEST = """
import sys
import pandas as pd
from krnn_core.reports.backtest import BacktestConfig, run_backtest
scores = pd.read_pickle(sys.argv[2])
run_backtest(sys.argv[1], scores, "2022-04-01", "2022-06-30", BacktestConfig())
"""


def test_a_backtest_prints_none_of_qlibs_expected_notices(market, tmp_path: Path) -> None:
    root, oracle = market
    oracle.to_pickle(tmp_path / "scores.pkl")
    done = subprocess.run(
        [sys.executable, "-c", QUIET_BACKTEST, str(root), str(tmp_path / "scores.pkl")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    printed = done.stdout + done.stderr
    for notice in ("Gym has been unmaintained", "common_infra", "Mean of empty slice", "contains nan"):
        assert notice not in printed
