import numpy as np
import pandas as pd
import pytest

from krnn_core.data import qlib_store
from krnn_core.data.market_data import MarketDataNotAvailable, last_closed_session, summarize
from krnn_core.data.sources.synthetic import SyntheticSource
from krnn_core.data.synthetic import SyntheticMarket

SOURCE = SyntheticSource(SyntheticMarket(seed=5, start="2024-01-02", n_instruments=30, n_members=20))
SHANGHAI = "Asia/Shanghai"


def test_a_session_counts_as_closed_from_15_00_shanghai():
    assert last_closed_session(pd.Timestamp("2024-03-05 14:59", tz=SHANGHAI)) == pd.Timestamp("2024-03-04")
    assert last_closed_session(pd.Timestamp("2024-03-05 15:00", tz=SHANGHAI)) == pd.Timestamp("2024-03-05")
    # 08:00 UTC is 16:00 in Shanghai
    assert last_closed_session(pd.Timestamp("2024-03-05 08:00", tz="UTC")) == pd.Timestamp("2024-03-05")


def test_the_pinned_market_clock_moves_the_synthetic_source_on(tmp_path, monkeypatch):
    monkeypatch.setenv("KRNN_NOW", "2024-03-05T14:59")
    with pytest.raises(MarketDataNotAvailable, match="the last closed session is 2024-03-04"):
        SOURCE.refresh(tmp_path / "qlib", pd.Timestamp("2024-03-05"))
    monkeypatch.setenv("KRNN_NOW", "2024-03-05T07:00Z")  # 15:00 in Shanghai
    SOURCE.refresh(tmp_path / "qlib", pd.Timestamp("2024-03-05"))
    assert qlib_store.read_calendar(tmp_path / "qlib")[-1] == pd.Timestamp("2024-03-05")


def test_a_malformed_market_clock_is_refused_naming_the_variable(monkeypatch):
    monkeypatch.setenv("KRNN_NOW", "after the close")
    with pytest.raises(ValueError, match="KRNN_NOW='after the close' is not a date-time"):
        last_closed_session()


def test_refresh_refuses_a_day_whose_session_has_not_closed(tmp_path):
    with pytest.raises(MarketDataNotAvailable, match="no market data for 2024-03-05 yet"):
        SOURCE.refresh(tmp_path / "qlib", pd.Timestamp("2024-03-05"), now=pd.Timestamp("2024-03-05 10:00", tz=SHANGHAI))
    assert not list(tmp_path.iterdir())


def test_refresh_extends_and_never_shrinks_the_folder(tmp_path):
    tmp_path = tmp_path / "qlib"
    now = pd.Timestamp("2024-06-01 12:00", tz=SHANGHAI)
    SOURCE.refresh(tmp_path, pd.Timestamp("2024-03-05"), now=now)
    assert qlib_store.read_calendar(tmp_path)[-1] == pd.Timestamp("2024-03-05")
    SOURCE.refresh(tmp_path, pd.Timestamp("2024-03-08"), now=now)
    SOURCE.refresh(tmp_path, pd.Timestamp("2024-02-01"), now=now)
    assert qlib_store.read_calendar(tmp_path)[-1] == pd.Timestamp("2024-03-08")


def test_summary_counts_member_bars_of_the_window(tmp_path):
    tmp_path = tmp_path / "qlib"
    SOURCE.refresh(tmp_path, pd.Timestamp("2024-03-08"), now=pd.Timestamp("2024-06-01", tz=SHANGHAI))
    calendar = qlib_store.read_calendar(tmp_path)
    spans = qlib_store.read_instruments(tmp_path, "csi300")
    day = calendar[-1]
    expected = sum(
        bool(pd.notna(qlib_store.read_fields(tmp_path, [code], ["close"], calendar)[:, 0, 0][-1]))
        for code in qlib_store.members_on(spans, day)
    )
    summary = summarize(tmp_path, "csi300", day, day)
    assert (summary.days, summary.instruments, summary.rows, summary.last_day) == (1, expected, expected, day)
    with pytest.raises(MarketDataNotAvailable, match="2024-03-09"):
        summarize(tmp_path, "csi300", day, pd.Timestamp("2024-03-09"))


def test_summary_of_a_range_counts_each_day_s_members_across_membership_changes(tmp_path):
    days = pd.bdate_range("2024-01-01", periods=10)
    qlib_store.write_calendar(tmp_path, days)
    day = days.__getitem__
    spans = {
        "SH600000": [(day(0), day(3)), (day(6), day(9))],  # leaves the index and comes back
        "SH600001": [(day(2), day(7))],
        "SH600002": [(pd.Timestamp("2023-01-02"), pd.Timestamp("2023-12-29"))],  # before the window
    }
    qlib_store.write_instruments(tmp_path, "csi300", spans)
    close = np.arange(1.0, 11.0)
    close[8] = np.nan  # a suspension of SH600000 while a member
    qlib_store.write_field(tmp_path, "SH600000", "close", close, 0)
    qlib_store.write_field(tmp_path, "SH600001", "close", np.arange(1.0, 11.0), 0)

    summary = summarize(tmp_path, "csi300", day(1), day(8))

    # SH600000 on days 1-3 and 6-7 (suspended on 8, the last day, when it is the only member), SH600001 on 2-7
    assert (summary.days, summary.rows, summary.instruments) == (8, 5 + 6, 0)
