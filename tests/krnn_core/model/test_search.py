"""Model search: bounded candidates, chosen on valid Rank IC, never reading a label after the period's label_end."""

import json
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from krnn_core.data import qlib_store
from krnn_core.model.retraining import load_training_data, rolling_windows, scratch_folder
from krnn_core.model.search import chosen_kwargs, record_trials, run_search, sample_candidates

BASE = {"cnn_dim": 8, "rnn_dim": 8, "rnn_dups": 2, "lr": 0.001, "seed": 3}
SPACE = {"cnn_dim": [8, 16, 64], "rnn_dim": [8, 64], "lr": [0.001, 0.002]}


def test_candidates_start_with_the_config_and_are_distinct_points_of_the_space():
    candidates = sample_candidates(BASE, SPACE, trials=6, seed=0)
    assert candidates[0] == BASE and len(candidates) == 6
    points = [tuple(c[key] for key in SPACE) for c in candidates]
    assert len(set(points)) == 6
    for candidate in candidates[1:]:
        assert all(candidate[key] in values for key, values in SPACE.items())
        assert {k: v for k, v in candidate.items() if k not in SPACE} == {"rnn_dups": 2, "seed": 3}
    assert sample_candidates(BASE, SPACE, trials=6, seed=0) == candidates
    assert sample_candidates(BASE, SPACE, trials=6, seed=1) != candidates


def test_a_candidate_of_one_gru_layer_has_no_dropout_as_it_would_not_act():
    space = {"rnn_layers": [1, 2], "dropout": [0.0, 0.3]}
    candidates = sample_candidates(BASE | {"rnn_layers": 2, "dropout": 0.0}, space, trials=10, seed=0)
    assert sorted((c["rnn_layers"], c["dropout"]) for c in candidates) == [(1, 0.0), (2, 0.0), (2, 0.3)]


def test_candidates_are_bounded_by_the_grid():
    # 3 x 2 x 2 = 12 points, one of them the base itself
    assert len(sample_candidates(BASE, SPACE, trials=100, seed=0)) == 12
    assert len(sample_candidates(BASE, {"cnn_dim": [8]}, trials=5, seed=0)) == 1


def _trials(period: str, label_end: str, chosen_rank_ic: float, kwargs: dict) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "period": period, "label_end": pd.Timestamp(label_end).date(), "trial": [0, 1], "chosen": [False, True],
            "valid_rank_ic": [0.01, chosen_rank_ic], "valid_ic": [0.0, 0.0], "best_epoch": 1, "epochs": 2,
            "seconds": 1.0, "params_json": "{}", "kwargs_json": [json.dumps(BASE), json.dumps(kwargs)],
            "created_at": pd.Timestamp("2024-01-01"),
        }
    )  # fmt: skip


def test_a_period_uses_the_choice_of_the_newest_search_whose_labels_it_knew():
    con = duckdb.connect()
    assert chosen_kwargs(con, pd.Timestamp("2024-04-01")) is None
    record_trials(con, _trials("2024-01-02", "2023-12-27", 0.05, BASE | {"rnn_dim": 64}))
    record_trials(con, _trials("2024-04-01", "2024-03-27", 0.06, BASE | {"rnn_dim": 16}))
    assert chosen_kwargs(con, pd.Timestamp("2023-12-27")) is None
    assert chosen_kwargs(con, pd.Timestamp("2024-03-27")) == (BASE | {"rnn_dim": 64}, "2024-01-02")
    assert chosen_kwargs(con, pd.Timestamp("2024-07-01")) == (BASE | {"rnn_dim": 16}, "2024-04-01")
    record_trials(con, _trials("2024-04-01", "2024-03-27", 0.07, BASE | {"rnn_dim": 32}))  # searched again
    assert con.execute("SELECT count(*) FROM model_search_trials").fetchone()[0] == 4
    assert chosen_kwargs(con, pd.Timestamp("2024-07-01")) == (BASE | {"rnn_dim": 32}, "2024-04-01")


def test_another_markets_search_in_the_same_lake_chooses_nothing_here():
    con = duckdb.connect()  # a DuckLake holds each market config's tables in a schema of its own
    con.execute("CREATE SCHEMA other_market")
    con.execute("USE other_market")
    record_trials(con, _trials("2024-01-02", "2023-12-27", 0.05, BASE | {"rnn_dim": 64}))
    con.execute("USE main")
    assert chosen_kwargs(con, pd.Timestamp("2024-07-01")) is None


def _search(con: duckdb.DuckDBPyConnection, windows, folder: Path) -> pd.DataFrame:
    base = {"cnn_dim": 4, "rnn_dim": 4, "rnn_dups": 1, "rnn_layers": 1, "n_epochs": 1, "batch_size": 800, "seed": 3}
    candidates = sample_candidates(base, {"rnn_dim": [4, 8], "lr": [0.001, 0.003]}, trials=2, seed=0)
    with scratch_folder(folder) as scratch:  # the windows streamed through row files, as the asset reads them
        train, valid = load_training_data(con, windows, scratch)
        trials = run_search(train, valid, windows, candidates, log=lambda line: None)
    return trials[["trial", "valid_ic", "valid_rank_ic", "best_epoch", "chosen", "kwargs_json"]]


def test_the_search_never_reads_a_label_after_the_periods_label_end(pipeline, tmp_path):
    shutil.copy(pipeline.duckdb_path, tmp_path / "w.duckdb")
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    calendar = qlib_store.read_calendar(pipeline.qlib_init.provider_uri, future=True)
    segments = pipeline.task.dataset.segments.model_dump()
    windows = rolling_windows(calendar, pd.Timestamp(segments["test"][0]), segments, "sliding")
    before = _search(con, windows, tmp_path)
    assert before["chosen"].sum() == 1
    assert before.loc[before["chosen"], "valid_rank_ic"].item() == before["valid_rank_ic"].max()

    scrambled = "UPDATE alpha360_labels SET LABEL0 = random() - 0.5 WHERE datetime {} ?"
    changed = con.execute(scrambled.format(">"), [windows.label_end.date()]).fetchall()[0][0]
    assert changed > 1000  # the test segment's labels, and those that matured after training
    pd.testing.assert_frame_equal(_search(con, windows, tmp_path), before)

    con.execute(scrambled.format("="), [windows.label_end.date()])  # the last label it may read: the trials move
    with pytest.raises(AssertionError):
        pd.testing.assert_frame_equal(_search(con, windows, tmp_path), before)
