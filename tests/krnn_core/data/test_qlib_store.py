"""Round trips through Qlib's binary folder layout, and clear errors for damaged files."""

from __future__ import annotations

import os
import re

import numpy as np
import pandas as pd
import pytest

from krnn_core.data import qlib_store
from krnn_core.data.qlib_store import QlibDataError

CALENDAR = pd.bdate_range("2023-01-02", periods=10)


def test_field_round_trip_places_values_at_their_calendar_positions(tmp_path):
    qlib_store.write_calendar(tmp_path, CALENDAR)
    values = np.array([10.5, np.nan, 11.25, 12.0], dtype=np.float32)
    qlib_store.write_field(tmp_path, "SH600000", "close", values, start_index=3)

    raw = np.fromfile(tmp_path / "features" / "sh600000" / "close.day.bin", dtype="<f4")
    assert raw[0] == 3 and raw.size == 5
    read = qlib_store.read_fields(tmp_path, ["SH600000"], ["close"], CALENDAR)[:, 0, 0]
    assert read.dtype == np.float32 and read.shape == (10,)
    np.testing.assert_array_equal(read[3:7], values)
    assert np.isnan(read[:3]).all() and np.isnan(read[7:]).all()
    assert qlib_store.data_range(tmp_path, "SH600000", CALENDAR) == (3, 6)


def test_missing_field_reads_as_nan_and_has_no_data_range(tmp_path):
    qlib_store.write_calendar(tmp_path, CALENDAR)
    assert np.isnan(qlib_store.read_fields(tmp_path, ["SZ000001"], ["open"], CALENDAR)[:, 0, 0]).all()
    assert qlib_store.data_range(tmp_path, "SZ000001", CALENDAR) is None


def test_read_fields_stacks_days_codes_fields(tmp_path):
    qlib_store.write_calendar(tmp_path, CALENDAR)
    for j, code in enumerate(["SH600000", "SZ000001"]):
        for k, field in enumerate(["close", "volume"]):
            qlib_store.write_field(tmp_path, code, field, np.arange(10) + 100 * j + 10 * k, start_index=0)
    panel = qlib_store.read_fields(tmp_path, ["SZ000001", "SH600000", "SZ000002"], ["volume", "close"], CALENDAR)
    assert panel.shape == (10, 3, 2) and panel.dtype == np.float32
    np.testing.assert_array_equal(panel[:, 0, 0], np.arange(10) + 110)
    np.testing.assert_array_equal(panel[:, 1, 1], np.arange(10))
    assert np.isnan(panel[:, 2]).all()


def test_a_window_reads_the_same_values_as_the_whole_files(tmp_path):
    qlib_store.write_calendar(tmp_path, CALENDAR, pd.DatetimeIndex([]))
    qlib_store.write_field(tmp_path, "SH600000", "factor", np.arange(10, dtype=np.float32) + 1, start_index=0)
    qlib_store.write_field(tmp_path, "SZ000001", "factor", np.array([7.0, 8.0], dtype=np.float32), start_index=6)
    codes = ["SH600000", "SZ000001", "SZ000002"]
    window = qlib_store.read_fields(tmp_path, codes, ["factor"], CALENDAR[4:8])[:, :, 0]
    whole = qlib_store.read_fields(tmp_path, codes, ["factor"], CALENDAR)[4:8, :, 0]
    np.testing.assert_array_equal(window, whole)
    np.testing.assert_array_equal(window[:, 0], [5, 6, 7, 8])
    np.testing.assert_array_equal(window[:, 1], [np.nan, np.nan, 7, 8])
    assert np.isnan(window[:, 2]).all()


@pytest.mark.parametrize("window", [CALENDAR[[2, 4]], pd.bdate_range("2022-12-29", periods=3)], ids=["gap", "before"])
def test_a_window_that_is_not_a_run_of_the_calendar_is_refused_naming_the_folder(tmp_path, window):
    qlib_store.write_calendar(tmp_path, CALENDAR)
    with pytest.raises(QlibDataError, match=f"{re.escape(str(tmp_path))}: .* is not a run of its calendar"):
        qlib_store.read_fields(tmp_path, ["SH600000"], ["close"], window)


def test_calendar_round_trip_with_future_days(tmp_path):
    future = pd.bdate_range(CALENDAR[-1] + pd.Timedelta(days=1), periods=5)
    qlib_store.write_calendar(tmp_path, CALENDAR, future)
    assert (tmp_path / "calendars" / "day.txt").read_text().splitlines()[0] == "2023-01-02"
    pd.testing.assert_index_equal(qlib_store.read_calendar(tmp_path), CALENDAR, exact=False)
    pd.testing.assert_index_equal(qlib_store.read_calendar(tmp_path, future=True), CALENDAR.append(future), exact=False)


@pytest.mark.parametrize("days", [CALENDAR[::-1], CALENDAR.append(CALENDAR[-1:])])
def test_calendar_must_strictly_increase(tmp_path, days):
    with pytest.raises(QlibDataError, match="strictly increasing"):
        qlib_store.write_calendar(tmp_path, days)


def test_instruments_round_trip_keeps_several_ranges(tmp_path):
    day = pd.Timestamp
    spans = {
        "SZ000001": [(day("2023-01-02"), day("2023-01-04")), (day("2023-01-09"), day("2023-01-13"))],
        "SH600000": [(day("2023-01-05"), day("2023-01-13"))],
    }
    qlib_store.write_instruments(tmp_path, "CSI300", spans)
    lines = (tmp_path / "instruments" / "csi300.txt").read_text().splitlines()
    assert lines[0] == "SH600000\t2023-01-05\t2023-01-13"
    assert qlib_store.read_instruments(tmp_path, "csi300") == spans
    assert qlib_store.members_on(spans, day("2023-01-03")) == ["SZ000001"]
    assert qlib_store.members_on(spans, day("2023-01-06")) == ["SH600000"]
    assert qlib_store.members_on(spans, day("2023-01-13")) == ["SH600000", "SZ000001"]


def _bin(tmp_path, data: bytes):
    qlib_store.write_calendar(tmp_path, CALENDAR)
    path = tmp_path / "features" / "sh600000" / "close.day.bin"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "data",
    [
        b"",  # empty
        np.array([0, 1, 2], dtype="<f4").tobytes()[:-2],  # cut mid-value
        np.array([8, 1, 2, 3], dtype="<f4").tobytes(),  # runs past the 10-day calendar
        np.array([1.5, 1, 2], dtype="<f4").tobytes(),  # start index not a position
    ],
    ids=["empty", "truncated", "too-long", "fractional-start"],
)
def test_damaged_bin_raises_naming_the_file(tmp_path, data):
    path = _bin(tmp_path, data)
    with pytest.raises(QlibDataError, match=re.escape(str(path))):
        qlib_store.read_fields(tmp_path, ["SH600000"], ["close"], CALENDAR)[:, 0, 0]


def test_writes_leave_no_temporary_files(tmp_path):
    qlib_store.write_field(tmp_path, "SH600000", "close", np.ones(4), 0)
    qlib_store.write_field(tmp_path, "SH600000", "close", np.ones(6), 0)  # overwrite in place
    qlib_store.write_calendar(tmp_path, CALENDAR, CALENDAR[-1:] + pd.Timedelta(days=3))
    qlib_store.write_instruments(tmp_path, "all", {"SH600000": [(CALENDAR[0], CALENDAR[5])]})
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert files == [
        "calendars/day.txt",
        "calendars/day_future.txt",
        "features/sh600000/close.day.bin",
        "instruments/all.txt",
    ]


def test_failed_write_keeps_the_old_file_and_removes_its_temporary(tmp_path, monkeypatch):
    qlib_store.write_field(tmp_path, "SH600000", "close", np.ones(4), 0)
    before = (tmp_path / "features" / "sh600000" / "close.day.bin").read_bytes()

    def killed(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        qlib_store.write_field(tmp_path, "SH600000", "close", np.zeros(8), 0)
    assert os.listdir(tmp_path / "features" / "sh600000") == ["close.day.bin"]
    assert (tmp_path / "features" / "sh600000" / "close.day.bin").read_bytes() == before
