"""Import and daily sync of a real Qlib folder (a copy of ../shared/data/cn_tiny_2019), read back by Qlib."""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from krnn_core.data import qlib_store
from krnn_core.data.market_data import MarketDataNotAvailable
from krnn_core.data.qlib_runtime import init_qlib
from krnn_core.data.sources.qlib_folder import QlibFolderSource
from tests.fixtures import CN_TINY_2019


def _raw(code: str, field: str) -> pd.Series:
    """A field of the fixture as stored, indexed by date."""
    calendar = qlib_store.read_calendar(CN_TINY_2019)
    start, values = qlib_store.read_bin(CN_TINY_2019 / "features" / code / f"{field}.day.bin", len(calendar))
    return pd.Series(values, index=calendar[start : start + values.size])


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> Path:
    provider = tmp_path_factory.mktemp("pipeline") / "qlib_data"
    QlibFolderSource(CN_TINY_2019).refresh(provider, pd.Timestamp("2019-12-31"))
    return provider


def test_qlib_reads_the_imported_folder_with_suspensions_missing_and_change_as_fraction(imported):
    init_qlib(imported)
    from qlib.data import D

    frame = D.features(["SH600000"], ["$close", "$volume", "$change"], start_time="2019-01-01", end_time="2019-12-31")
    got = frame.xs("SH600000")
    close, volume = _raw("SH600000", "close"), _raw("SH600000", "volume")
    traded = volume > 0
    np.testing.assert_array_equal(got["$close"][traded.values].to_numpy(np.float32), close[traded].to_numpy())
    assert got["$close"][~traded.values].isna().all()
    np.testing.assert_allclose(got["$change"][traded.values], _raw("SH600000", "change")[traded] / 100, rtol=1e-6)


def test_suspended_bars_are_counted_and_members_without_data_listed(tmp_path):
    source = QlibFolderSource(CN_TINY_2019)
    batch, quarantined = source.read_days(None, pd.Timestamp("2019-12-31"))
    zero_volume = sum(int((_raw(p.name, "volume") == 0).sum()) for p in (CN_TINY_2019 / "features").iterdir())
    assert batch.notes["suspended_bars_as_missing"] == zero_volume > 0
    assert batch.notes["vwap"] == "missing for 30 instruments"
    assert batch.notes["members_without_data"] == ["SH600068"]  # in the fixture's csi300.txt, no folder
    kept = QlibFolderSource(CN_TINY_2019, suspended_as_missing=False).read_days(None, pd.Timestamp("2019-12-31"))[0]
    assert "suspended_bars_as_missing" in kept.notes and kept.notes["suspended_bars_as_missing"] == 0
    assert quarantined == []


def test_folders_are_lower_case_codes_stay_upper_case_and_ranges_are_kept(imported):
    assert all(p.name == p.name.lower() for p in (imported / "features").iterdir())
    assert qlib_store.read_instruments(imported, "csi300") == qlib_store.read_instruments(CN_TINY_2019, "csi300")


def test_several_ranges_and_members_without_data_are_kept_and_listed(tmp_path):
    source = tmp_path / "source"
    shutil.copytree(CN_TINY_2019, source)
    spans = qlib_store.read_instruments(source, "csi300")
    spans["SH600000"] = [
        (pd.Timestamp("2019-01-02"), pd.Timestamp("2019-03-29")),
        (pd.Timestamp("2019-07-01"), pd.Timestamp("2019-12-31")),
    ]
    spans["SH600005"] = [(pd.Timestamp("2019-01-02"), pd.Timestamp("2019-06-28"))]
    qlib_store.write_instruments(source, "csi300", spans)
    report = QlibFolderSource(source).refresh(tmp_path / "qlib_data", pd.Timestamp("2019-06-28"))
    assert report.notes["members_without_data"] == ["SH600005", "SH600068"]
    written = qlib_store.read_instruments(tmp_path / "qlib_data", "csi300")
    assert written["SH600000"] == [(pd.Timestamp("2019-01-02"), pd.Timestamp("2019-03-29"))]
    QlibFolderSource(source).refresh(tmp_path / "qlib_data", pd.Timestamp("2019-12-31"))
    assert qlib_store.read_instruments(tmp_path / "qlib_data", "csi300")["SH600000"] == spans["SH600000"]
    init_qlib(tmp_path / "qlib_data")
    from qlib.data import D

    days = (
        D.features(D.instruments("csi300"), ["$close"], start_time="2019-01-02", end_time="2019-12-31")
        .xs("SH600000")
        .index
    )
    assert pd.Timestamp("2019-05-06") not in days and pd.Timestamp("2019-07-01") in days


def test_a_day_by_day_sync_gives_the_bytes_of_one_import(tmp_path, imported):
    provider = tmp_path / "qlib_data"
    source = QlibFolderSource(CN_TINY_2019)
    source.refresh(provider, pd.Timestamp("2019-12-20"))
    for day in ("2019-12-23", "2019-12-24", "2019-12-31"):
        source.refresh(provider, pd.Timestamp(day))
    assert _files(provider.resolve()) == _files(imported.resolve())
    assert len(list((tmp_path / ".qlib_data.versions").iterdir())) == 2


def test_a_day_the_source_lacks_is_refused(tmp_path):
    with pytest.raises(MarketDataNotAvailable, match="no data for 2020-01-02"):
        QlibFolderSource(CN_TINY_2019).refresh(tmp_path / "qlib_data", pd.Timestamp("2020-01-02"))
    assert not (tmp_path / "qlib_data").exists()


def test_a_bin_longer_than_the_calendar_names_the_file(tmp_path):
    source = tmp_path / "source"
    shutil.copytree(CN_TINY_2019, source)
    bad = source / "features" / "SH600000" / "close.day.bin"
    bad.write_bytes(bad.read_bytes() + np.float32(1.0).tobytes())
    with pytest.raises(qlib_store.QlibDataError, match="SH600000/close.day.bin.*run past the calendar"):
        QlibFolderSource(source).refresh(tmp_path / "qlib_data", pd.Timestamp("2019-12-31"))
