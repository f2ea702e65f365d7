import pandas as pd
import pytest

from krnn_core.model.retraining import rolling_windows

CALENDAR = pd.bdate_range("2023-01-02", "2024-12-31")
SEGMENTS = {
    "train": ("2023-01-02", "2023-06-30"),
    "valid": ("2023-07-03", "2023-12-29"),
    "test": ("2024-01-01", None),
}


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
