"""CSV feeds: generated files appended day by day, read back exactly by Qlib; every bad input named."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from krnn_core.data.qlib_runtime import init_qlib
from krnn_core.data.sources.csv_feed import CsvFeedError, CsvSource

DAYS = pd.bdate_range("2024-03-01", periods=12)
GOOD = "date,open,high,low,close,volume\n"


def _bars(days: pd.DatetimeIndex, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = np.round(10 * np.cumprod(1 + rng.normal(0, 0.01, len(days))), 2)
    frame = pd.DataFrame({"open": close * 0.99, "high": close * 1.02, "low": close * 0.98, "close": close}, index=days)
    frame["volume"] = rng.integers(1_000, 9_000, len(days)).astype(float)
    frame["amount"] = frame["volume"] * close
    return frame.round(2)


def _feed(folder: Path) -> dict[str, pd.DataFrame]:
    """AAA trades every day; BBB lists on day 3 and has a gap; CCC delists after day 6; BAD has a bad bar."""
    feeds = {
        "SH600001": _bars(DAYS, 1),
        "SH600002": _bars(DAYS[3:], 2).drop(DAYS[7]),
        "SZ000003": _bars(DAYS[:6], 3),
        "SZ000004": _bars(DAYS, 4).drop(columns="amount"),
    }
    feeds["SZ000004"].loc[DAYS[5], "low"] = feeds["SZ000004"].loc[DAYS[5], "high"] + 1
    folder.mkdir(exist_ok=True)
    for code, frame in feeds.items():
        frame.rename_axis("date").to_csv(folder / f"{code}.csv", date_format="%Y-%m-%d")
    return feeds


def test_day_by_day_appends_read_back_exactly_by_qlib(tmp_path):
    feeds = _feed(tmp_path / "csv")
    source, provider = CsvSource(tmp_path / "csv", "csi300"), tmp_path / "qlib_data"
    for day in DAYS[2:]:
        source.refresh(provider, day)
    init_qlib(provider)
    from qlib.data import D

    got = D.features(D.instruments("csi300"), ["$close", "$vwap", "$low"], start_time=DAYS[0], end_time=DAYS[-1])
    assert list(D.calendar(start_time=DAYS[0], end_time=DAYS[-1])) == list(DAYS)
    for code, frame in feeds.items():
        rows = got.xs(code)
        expected = frame["close"].reindex(rows.index).astype(np.float32)
        if code == "SZ000004":
            expected[DAYS[5]] = np.nan  # quarantined: low above high
        np.testing.assert_array_equal(rows["$close"].to_numpy(np.float32), expected.to_numpy())
    assert got.xs("SH600002").index[0] == DAYS[3] and np.isnan(got.xs("SH600002").loc[DAYS[7], "$close"])
    assert got.xs("SZ000003").index[-1] == DAYS[5]
    vwap = got.xs("SH600001")["$vwap"].to_numpy(np.float32)
    np.testing.assert_allclose(vwap, (feeds["SH600001"]["amount"] / feeds["SH600001"]["volume"]).to_numpy(), rtol=1e-6)
    assert got.xs("SZ000004")["$vwap"].isna().all()


def test_the_future_calendar_runs_on_weekdays_so_the_next_period_can_be_trained(tmp_path):
    from krnn_core.data import qlib_store

    _feed(tmp_path / "csv")
    provider = tmp_path / "qlib_data"
    CsvSource(tmp_path / "csv", "csi300").refresh(provider, DAYS[4])  # Thursday 2024-03-07
    future = qlib_store.read_calendar(provider, future=True)
    assert list(future[:7]) == list(DAYS[:7]) and future[-1] > DAYS[4] + pd.Timedelta(days=360)
    CsvSource(tmp_path / "csv", "csi300").refresh(provider, DAYS[-1])
    assert qlib_store.read_calendar(provider, future=True)[len(DAYS)] == DAYS[-1] + pd.offsets.BDay()


def test_bad_bars_go_to_quarantine_with_file_field_and_reason(tmp_path):
    _feed(tmp_path / "csv")
    report = CsvSource(tmp_path / "csv").refresh(tmp_path / "qlib_data", DAYS[-1])
    assert [(q.source_file, q.instrument, q.datetime, q.field, q.reason) for q in report.quarantined] == [
        (str(tmp_path / "csv" / "SZ000004.csv"), "SZ000004", DAYS[5], "low", "low above open, close or high")
    ]
    assert report.notes["vwap"] == "missing for 1 instruments"


def test_an_import_and_a_day_by_day_append_write_the_same_bytes(tmp_path):
    _feed(tmp_path / "csv")
    source = CsvSource(tmp_path / "csv")
    source.refresh(tmp_path / "once" / "qlib_data", DAYS[-1])
    for day in DAYS:
        source.refresh(tmp_path / "daily" / "qlib_data", day)
    files = [
        {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
        for root in ((tmp_path / name / "qlib_data").resolve() for name in ("once", "daily"))
    ]
    assert files[0] == files[1]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "line 1: empty file"),
        ("date;open;high;low;close;volume\n2024-03-01;1;1;1;1;1\n", "line 1: columns are not comma-separated"),
        ("date,open,high,close\n2024-03-01,1,1,1\n", "line 1: missing columns low, volume"),
        (GOOD + "2024-03-01,1,1,1,1,1\n2024/03/04,1,1,1,1,1\n", "line 3: date '2024/03/04' is not YYYY-MM-DD"),
        (GOOD + "2024-03-01,1,1,1,1,1\n2024-03-01,1,1,1,1,1\n", "line 3: duplicate date 2024-03-01"),
        (GOOD + "2024-03-01,1,1,1,1,1\n2024-03-04,1,x,1,1,1\n", "line 3: high 'x' is not a number"),
        (GOOD + "2024-03-01,1,1,1,1,1,7\n", "line 2"),
    ],
)
def test_a_malformed_file_is_refused_naming_file_and_line(tmp_path, text, message):
    (tmp_path / "SH600001.csv").write_text(text)
    with pytest.raises(CsvFeedError, match=message) as error:
        CsvSource(tmp_path).refresh(tmp_path / "qlib_data", pd.Timestamp("2024-03-04"))
    assert "SH600001.csv" in str(error.value)
    assert not (tmp_path / "qlib_data").exists()
