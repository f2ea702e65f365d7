"""Test IC of our KRNN and of the same module fed Qlib's layout, on the synthetic market, against the oracle.

    .venv/bin/python bench/bench_synthetic_ic.py [--seeds 0 1 2] [--instruments 200]

"qlib_layout" permutes each Alpha360 row so that our module reads it exactly as Qlib's
`x.view(B, 60, 6)` does (six consecutive lags of one field as a time step); everything else,
weights' initialisation included, is identical. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import replace
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from krnn_core.data import qlib_store
from krnn_core.data.synthetic import SyntheticMarket, oracle_ic, write_market
from krnn_core.features.processors import fillna
from krnn_core.features.store import FeatureMatrix, materialize_features, materialize_labels, read_features
from krnn_core.model.krnn import KRNNConfig
from krnn_core.model.metrics import mean_daily_ic
from krnn_core.model.retraining import learn_sets
from krnn_core.model.trainer import TrainerConfig, TrainingSet, predict, train_krnn

WINDOWS = {
    "train": ("2021-04-01", "2021-12-31"),
    "valid": ("2022-01-04", "2022-03-31"),
    "test": ("2022-04-01", "2022-06-30"),
}
END = "2022-07-08"  # the test window's labels need two more closes


def windows_data(provider: Path, market: str) -> dict[str, FeatureMatrix]:
    """Raw Alpha360 rows and labels of each window, materialized and read back as the pipeline does."""
    calendar = qlib_store.read_calendar(provider)
    con = duckdb.connect()
    first, last = pd.Timestamp(WINDOWS["train"][0]), pd.Timestamp(WINDOWS["test"][1])
    materialize_features(con, provider, market, first, last)
    materialize_labels(con, provider, market, first, calendar[-1])
    return {name: read_features(con, *map(pd.Timestamp, window), with_labels=True) for name, window in WINDOWS.items()}


def processed(data: dict[str, FeatureMatrix], permute: np.ndarray | None) -> tuple[TrainingSet, ...]:
    """Train and valid through the pipeline's processors; test normalized alike, its label raw."""
    norm, train, valid = learn_sets(data["train"], data["valid"])
    test = data["test"]
    day = pd.factorize(test.index.get_level_values("datetime"))[0]
    sets = (train, valid, TrainingSet(x=fillna(norm(test.x)), y=test.y, day=day))  # unlabelled rows: no IC pair
    return sets if permute is None else tuple(replace(s, x=np.ascontiguousarray(s.x[:, permute])) for s in sets)


def qlib_layout() -> np.ndarray:
    """Column order under which our (field, day) reading sees what Qlib's (step, 6 values) reading sees."""
    return np.arange(360).reshape(60, 6).T.reshape(-1)  # our (channel c, step t) <- Qlib column 6 t + c


def test_ic(sets: tuple[TrainingSet, ...], seed: int) -> float:
    """Train with early stopping on valid IC, then the mean daily IC on the test window."""
    trainer = TrainerConfig(n_epochs=30, lr=0.002, batch_size=800, early_stop=4, metric="ic", seed=seed)
    result = train_krnn(KRNNConfig(), trainer, sets[0], sets[1], log=lambda _: None)
    return mean_daily_ic(predict(result.model, sets[2].x), sets[2].y, sets[2].day)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--instruments", type=int, default=200)
    args = parser.parse_args()
    market = SyntheticMarket(seed=5, n_instruments=args.instruments, n_members=args.instruments * 5 // 6)
    with tempfile.TemporaryDirectory() as folder:
        write_market(folder, market, END)
        data = windows_data(Path(folder), market.market)
    oracle = oracle_ic(market, *WINDOWS["test"])
    result = {"oracle_ic": round(oracle, 4)}
    for layout, permute in (("ours", None), ("qlib_layout", qlib_layout())):
        sets = processed(data, permute)
        ics = [test_ic(sets, seed) for seed in args.seeds]
        print(layout, [round(ic, 4) for ic in ics], flush=True)
        mean = float(np.mean(ics))
        result |= {f"{layout}_ic": round(mean, 4), f"{layout}_share": round(mean / oracle, 3)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
