"""On the synthetic market, KRNN trained with Qlib's processors reaches most of the oracle's test IC."""

from __future__ import annotations

import numpy as np
import pandas as pd

from krnn_core.alpha360 import alpha360_block, labels_block, load_panel
from krnn_core.metrics import mean_daily_ic
from krnn_core.model import KRNNConfig
from krnn_core.processors import RobustZScoreNorm, cs_rank_norm, fillna
from krnn_core.synthetic import SyntheticMarket, oracle_ic, write_market
from krnn_core.trainer import TrainerConfig, TrainingSet, predict, train_krnn

MARKET = SyntheticMarket(seed=5, n_instruments=100, n_members=80)
TRAIN, VALID, TEST = ("2021-04-01", "2021-12-31"), ("2022-01-04", "2022-03-31"), ("2022-04-01", "2022-06-30")


def _rows(panel, window: tuple[str, str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw Alpha360 rows, raw labels and day ids of the member-days in the window."""
    first = int(panel.calendar.searchsorted(pd.Timestamp(window[0])))
    last = int(panel.calendar.searchsorted(pd.Timestamp(window[1]), side="right")) - 1
    index, x = alpha360_block(panel, first, last)
    y = labels_block(panel, first, last).reindex(index).to_numpy(np.float32)
    return x, y, pd.factorize(index.get_level_values("datetime"))[0]


def _processed(rows: tuple, norm: RobustZScoreNorm, rank_label: bool) -> TrainingSet:
    """Qlib's Alpha360 processors: RobustZScoreNorm + Fillna, DropnaLabel, CSRankNorm for learning."""
    x, y, day = rows
    keep = np.isfinite(y)
    label = cs_rank_norm(y[keep], day[keep]) if rank_label else y[keep]
    return TrainingSet(x=fillna(norm(x[keep])), y=label, day=day[keep])


def test_test_ic_reaches_six_tenths_of_the_oracle(tmp_path) -> None:
    write_market(tmp_path, MARKET, "2022-07-08")  # the test window's labels need two closes after it
    panel = load_panel(tmp_path, MARKET.market)
    train, valid, test = (_rows(panel, window) for window in (TRAIN, VALID, TEST))
    norm = RobustZScoreNorm.fit(train[0])  # fitted on the train window, as Qlib's fit_start/fit_end
    trainer = TrainerConfig(n_epochs=12, lr=0.002, batch_size=800, early_stop=3, metric="ic", seed=0)
    result = train_krnn(
        KRNNConfig(), trainer, _processed(train, norm, True), _processed(valid, norm, True), log=lambda _: None
    )
    scored = _processed(test, norm, rank_label=False)
    ic = mean_daily_ic(predict(result.model, scored.x), scored.y, scored.day)  # Pearson on the raw label
    oracle = oracle_ic(MARKET, *TEST)
    assert oracle > 0.05
    assert ic >= 0.6 * oracle, (ic, oracle)
