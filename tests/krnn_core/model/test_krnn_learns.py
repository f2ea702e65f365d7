"""On the synthetic market, KRNN trained with Qlib's processors reaches most of the oracle's test IC."""

from __future__ import annotations

import duckdb
import pandas as pd

from krnn_core.data.synthetic import SyntheticMarket, oracle_ic, write_market
from krnn_core.features.processors import fillna
from krnn_core.features.store import materialize_features, materialize_labels, read_features
from krnn_core.model.krnn import KRNNConfig
from krnn_core.model.metrics import mean_daily_ic
from krnn_core.model.retraining import learn_sets
from krnn_core.model.trainer import TrainerConfig, predict, train_krnn

MARKET = SyntheticMarket(seed=5, n_instruments=100, n_members=80)
TRAIN, VALID, TEST = ("2021-04-01", "2021-12-31"), ("2022-01-04", "2022-03-31"), ("2022-04-01", "2022-06-30")
END = pd.Timestamp("2022-07-08")  # the test window's labels need two closes after it


def test_test_ic_reaches_six_tenths_of_the_oracle(tmp_path) -> None:
    write_market(tmp_path, MARKET, str(END.date()))
    con = duckdb.connect()
    materialize_features(con, tmp_path, MARKET.market, pd.Timestamp(TRAIN[0]), pd.Timestamp(TEST[1]))
    materialize_labels(con, tmp_path, MARKET.market, pd.Timestamp(TRAIN[0]), END)
    train, valid, test = (read_features(con, *map(pd.Timestamp, w), with_labels=True) for w in (TRAIN, VALID, TEST))
    norm, train_set, valid_set = learn_sets(train, valid)  # the pipeline's processors, fitted on train
    trainer = TrainerConfig(n_epochs=12, lr=0.002, batch_size=800, early_stop=3, metric="ic", seed=0)
    result = train_krnn(KRNNConfig(), trainer, train_set, valid_set, log=lambda _: None)
    scores = predict(result.model, fillna(norm(test.x)))
    day = pd.factorize(test.index.get_level_values("datetime"))[0]
    ic = mean_daily_ic(scores, test.y, day)  # Pearson on the raw label; unlabelled rows make no pair
    oracle = oracle_ic(MARKET, *TEST)
    assert oracle > 0.05
    assert ic >= 0.6 * oracle, (ic, oracle)
