"""A second market's code location: a tiny CSI500-like synthetic market run through its own chain, under its keys."""

import dagster as dg
import numpy as np
import pandas as pd
import yaml

from assets.names import LocationNames
from krnn_core.config import load_config
from krnn_core.data import qlib_store
from krnn_core.signals.read_snapshot import open_snapshot
from krnn_signals.code_location import build_definitions
from krnn_signals.demo import materialize_chain, trading_days_between

# 20 members after the 10 largest of a 40-name pool, one monthly model for August 2021
CSI500 = {
    "name": "csi500",
    "qlib_init": {"provider_uri": "qlib_data"},
    "source": {"kind": "synthetic", "seed": 3, "n_instruments": 40, "n_members": 20, "skip_largest": 10},
    "market": "csi500",
    "benchmark": "SH000905",
    "start_time": "2021-01-04",
    "end_time": "2021-08-31",
    "duckdb_path": "krnn_signals.duckdb",
    "model_dir": "models",
    "task": {
        "model": {"kwargs": {"cnn_dim": 4, "rnn_dim": 4, "rnn_dups": 1, "rnn_layers": 1, "n_epochs": 2, "seed": 3}},
        "dataset": {
            "segments": {
                "train": ["2021-04-01", "2021-06-30"],
                "valid": ["2021-07-01", "2021-07-30"],
                "test": ["2021-08-02", "2021-08-31"],
            }
        },
    },
    "rolling": {"step": "monthly"},
    "port_analysis_config": {"strategy": {"class": "TopkDropoutStrategy", "kwargs": {"topk": 5, "n_drop": 1}}},
}


def test_a_second_markets_chain_runs_under_its_own_keys_against_its_benchmark(tmp_path):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(CSI500))
    config = load_config(tmp_path / "config.yaml")
    location, names = build_definitions(config), LocationNames.of(config)
    with dg.DagsterInstance.ephemeral() as instance:
        materialize_chain(instance, "2021-08-31", config, location)
        runs = [run.job_name for run in reversed(instance.get_runs())]
        materialized = {key: instance.get_materialized_partitions(key) for key in instance.get_asset_keys()}
    assert runs == ["csi500_market_data_job", "csi500_krnn_model_job", "csi500_signals_job", "csi500_reports_job"]
    stages = ("qlib_market_data", "alpha360_features", "alpha360_labels", "krnn_model", "signals", "ic_report")
    assert set(materialized) == {names.key(stage) for stage in (*stages, "backtest_report")}
    test_days = trading_days_between("2021-08-02", "2021-08-31", location)
    assert len(test_days) == 22 and materialized[names.key("signals")] == set(test_days)

    provider = config.qlib_init.provider_uri
    with open_snapshot(config.duckdb_path) as con:
        signals = con.execute("SELECT datetime, instrument FROM signals").df()
        bench = con.execute("SELECT datetime, bench FROM backtest_daily ORDER BY datetime").df()
    spans = qlib_store.read_instruments(provider, "csi500")
    assert signals["datetime"].nunique() == 22 and len(signals) >= 22 * 18
    for day, scored in signals.groupby("datetime"):
        assert set(scored["instrument"]) <= set(qlib_store.members_on(spans, pd.Timestamp(day))), day
    # the backtest's benchmark is the market's own index, SH000905
    calendar = qlib_store.read_calendar(provider)
    close = pd.Series(qlib_store.read_fields(provider, ["SH000905"], ["close"], calendar)[:, 0, 0], index=calendar)
    index_return = (close / close.shift(1) - 1).loc[pd.to_datetime(bench["datetime"])]
    assert len(bench) >= 20 and np.allclose(bench["bench"], index_return, atol=1e-6)
