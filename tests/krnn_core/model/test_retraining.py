import duckdb
import numpy as np
import pandas as pd
import pytest
import torch

from krnn_core.data.synthetic import SyntheticMarket, write_market
from krnn_core.features import processors, row_file, store
from krnn_core.features.row_file import RowFile
from krnn_core.features.store import materialize_features, materialize_labels, read_features
from krnn_core.model.krnn import KRNNConfig
from krnn_core.model.retraining import (
    ModelWindows,
    learn_sets,
    load_training_data,
    rolling_windows,
    scratch_folder,
)
from krnn_core.model.trainer import TrainerConfig, train_krnn

CALENDAR = pd.bdate_range("2023-01-02", "2024-12-31")
SEGMENTS = {
    "train": ("2023-01-02", "2023-06-30"),
    "valid": ("2023-07-03", "2023-12-29"),
    "test": ("2024-01-01", None),
}
SMALL_MARKET = SyntheticMarket(seed=5, start="2022-01-04", n_instruments=30, n_members=20)
TRAIN, VALID = ("2022-04-01", "2022-06-30"), ("2022-07-01", "2022-08-29")
SMALL_KRNN = KRNNConfig(cnn_dim=4, rnn_dim=4, rnn_dups=2, rnn_layers=1)
SHORT_RUN = TrainerConfig(n_epochs=2, lr=0.01, batch_size=256, seed=1)


def test_first_version_cuts_the_valid_window_to_labels_matured_before_the_test():
    windows = rolling_windows(CALENDAR, pd.Timestamp("2024-01-01"), SEGMENTS, "sliding")
    first = CALENDAR.get_loc(pd.Timestamp("2024-01-01"))
    # trained after the close of the previous trading day T, it may only see labels of days <= T-2
    assert windows.label_end == CALENDAR[first - 3]
    assert windows.train == (pd.Timestamp("2023-01-02"), pd.Timestamp("2023-06-30"))
    assert windows.valid[0] == pd.Timestamp("2023-07-03")


def test_sliding_windows_move_by_the_trading_days_between_periods():
    first = rolling_windows(CALENDAR, pd.Timestamp("2024-01-01"), SEGMENTS, "sliding")
    later = rolling_windows(CALENDAR, pd.Timestamp("2024-04-01"), SEGMENTS, "sliding")
    shift = CALENDAR.get_loc(pd.Timestamp("2024-04-01")) - CALENDAR.get_loc(pd.Timestamp("2024-01-01"))
    assert CALENDAR.get_loc(later.train[0]) - CALENDAR.get_loc(first.train[0]) == shift
    assert CALENDAR.get_loc(later.valid[0]) - CALENDAR.get_loc(first.valid[0]) == shift
    assert later.label_end == CALENDAR[CALENDAR.get_loc(pd.Timestamp("2024-04-01")) - 3]


def test_expanding_windows_keep_the_train_start():
    later = rolling_windows(CALENDAR, pd.Timestamp("2024-07-01"), SEGMENTS, "expanding")
    assert later.train[0] == pd.Timestamp("2023-01-02")
    assert later.train[1] < later.valid[0]


def test_a_period_on_a_holiday_starts_at_the_next_trading_day():
    windows = rolling_windows(CALENDAR, pd.Timestamp("2024-06-01"), SEGMENTS, "sliding")  # a Saturday
    assert windows.period_start == pd.Timestamp("2024-06-03")


def test_a_period_before_the_test_segment_is_refused():
    with pytest.raises(ValueError, match="before the test segment"):
        rolling_windows(CALENDAR, pd.Timestamp("2023-12-01"), SEGMENTS, "sliding")


def test_training_from_row_files_equals_training_from_arrays(tmp_path, monkeypatch):
    """The pipeline's path (windows in RowFiles, read and normalized in blocks) trains the very same model."""
    write_market(tmp_path / "qlib", SMALL_MARKET, "2022-09-30")
    windows = ModelWindows(pd.Timestamp("2022-09-01"), *(tuple(map(pd.Timestamp, w)) for w in (TRAIN, VALID)))
    con = duckdb.connect()
    materialize_features(con, tmp_path / "qlib", "csi300", pd.Timestamp(TRAIN[0]), pd.Timestamp(VALID[1]))
    materialize_labels(con, tmp_path / "qlib", "csi300", pd.Timestamp(TRAIN[0]), pd.Timestamp("2022-09-30"))
    arrays = learn_sets(*(read_features(con, *window, with_labels=True) for window in (windows.train, windows.valid)))
    monkeypatch.setattr(store, "READ_CHUNK_ROWS", 200)
    monkeypatch.setattr(row_file, "BLOCK_BYTES", 150 * 360 * 4)
    monkeypatch.setattr(processors, "FIT_VALUES", 1000 * 7)
    with scratch_folder(tmp_path / "models") as scratch:
        files = learn_sets(*load_training_data(con, windows, scratch))
        assert isinstance(files[1].x, RowFile) and files[1].x.path.parent == scratch
        assert files[0].median.tobytes() == arrays[0].median.tobytes()
        assert files[0].scale.tobytes() == arrays[0].scale.tobytes()
        for on_disk, in_memory in zip(files[1:], arrays[1:], strict=True):
            np.testing.assert_array_equal(on_disk.x.read(0, len(on_disk.x)), in_memory.x)
            np.testing.assert_array_equal(on_disk.y, in_memory.y)
            np.testing.assert_array_equal(on_disk.day, in_memory.day)
        trained = [train_krnn(SMALL_KRNN, SHORT_RUN, *sets[1:], log=lambda _: None) for sets in (files, arrays)]
    assert not scratch.exists()
    assert [epoch["valid_ic"] for epoch in trained[0].history] == [epoch["valid_ic"] for epoch in trained[1].history]
    for name, weights in trained[0].state_dict.items():
        assert torch.equal(weights, trained[1].state_dict[name]), name
