import duckdb
import numpy as np
import pandas as pd

from krnn_core.data.quarantine import screen_bars, write_quarantine

DAYS = pd.bdate_range("2024-03-01", periods=4)


def _bars() -> dict[str, np.ndarray]:
    bars = {
        name: np.full(4, value, np.float32)
        for name, value in {
            "open": 10.0,
            "high": 10.5,
            "low": 9.5,
            "close": 10.2,
            "volume": 100.0,
            "factor": 1.0,
        }.items()
    }
    bars["close"][1] = np.inf  # not finite
    bars["open"][2] = -1.0  # non-positive, and below low
    return bars


def test_bad_bars_are_blanked_whole_and_each_bad_field_recorded():
    bars = _bars()
    found = screen_bars("SH600000", DAYS, bars, "feed/SH600000.csv")
    assert [(q.datetime, q.field, q.reason) for q in found] == [
        (DAYS[1], "close", "missing or not finite while the bar exists"),
        (DAYS[2], "open", "non-positive price"),
        (DAYS[2], "low", "low above open, close or high"),
        (DAYS[1], "high", "high below open or close"),  # an infinite close is above any high
    ]
    assert np.isinf(found[0].value) and found[1].value == -1.0
    for values in bars.values():
        assert np.isnan(values[[1, 2]]).all() and np.isfinite(values[[0, 3]]).all()


def test_the_table_keeps_one_set_of_rows_per_window(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    found = screen_bars("SH600000", DAYS, _bars(), "feed/SH600000.csv")
    write_quarantine(con, found, DAYS[0])
    write_quarantine(con, found, DAYS[0])
    rows = con.execute(
        "SELECT source_file, instrument, datetime, field, reason FROM quarantine ORDER BY datetime, field"
    ).fetchall()
    assert rows == [
        (
            "feed/SH600000.csv",
            "SH600000",
            DAYS[1].to_pydatetime(),
            "close",
            "missing or not finite while the bar exists",
        ),
        ("feed/SH600000.csv", "SH600000", DAYS[1].to_pydatetime(), "high", "high below open or close"),
        ("feed/SH600000.csv", "SH600000", DAYS[2].to_pydatetime(), "low", "low above open, close or high"),
        ("feed/SH600000.csv", "SH600000", DAYS[2].to_pydatetime(), "open", "non-positive price"),
    ]
