"""A zoo of broken feed files and Qlib folders: each is refused or quarantined in words that name it,
and what the earlier refreshes stored (the Qlib folder's bytes, the quarantine rows) stays as it was."""

import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from krnn_core.data import qlib_store
from krnn_core.data.quarantine import write_quarantine
from krnn_core.data.sources import MarketSource, RefreshReport
from krnn_core.data.sources.csv_feed import CsvFeedError, CsvSource
from krnn_core.data.sources.qlib_folder import QlibFolderSource
from tests.broken_inputs import (
    FEED_DAYS,
    GOOD_THROUGH,
    BrokenCsv,
    broken_csv_cases,
    good_csv_feed,
    quarantined_csv_cases,
)
from tests.fixtures import CN_TINY_2019

TINY_GOOD_THROUGH, TINY_END = pd.Timestamp("2019-12-20"), pd.Timestamp("2019-12-31")


def _refresh(source: MarketSource, root: Path, end: pd.Timestamp) -> RefreshReport:
    """What the market-data asset does: refresh the Qlib folder, then record the quarantined values."""
    report = source.refresh(root / "qlib_data", end)
    if report.first_added is not None:
        with duckdb.connect(str(root / "w.duckdb")) as con:
            write_quarantine(con, report.quarantined, report.first_added)
    return report


def _state(root: Path) -> tuple[Path, dict[str, bytes], list[tuple]]:
    """The published version, the bytes of its files, and the quarantine table's rows."""
    version = (root / "qlib_data").resolve()
    files = {str(path.relative_to(version)): path.read_bytes() for path in sorted(version.rglob("*")) if path.is_file()}
    with duckdb.connect(str(root / "w.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT * FROM quarantine ORDER BY ALL").fetchall()
    return version, files, rows


@pytest.fixture
def csv_root(tmp_path) -> Path:
    """The good feed refreshed through GOOD_THROUGH: its folder, and its one bad bar in quarantine."""
    (tmp_path / "csv").mkdir()
    for name, content in good_csv_feed().items():
        (tmp_path / "csv" / name).write_bytes(content)
    _refresh(CsvSource(tmp_path / "csv", "csi300"), tmp_path, GOOD_THROUGH)
    assert [row[1:4] for row in _state(tmp_path)[2]] == [
        ("SZ000003", FEED_DAYS[2].to_pydatetime(), "high"),
        ("SZ000003", FEED_DAYS[2].to_pydatetime(), "low"),
    ]
    return tmp_path


@pytest.mark.parametrize("case", broken_csv_cases(), ids=lambda case: case.name)
def test_a_broken_csv_is_refused_in_words_that_name_it_and_nothing_stored_changes(csv_root, case: BrokenCsv):
    before = _state(csv_root)
    (csv_root / "csv" / case.file_name).write_bytes(case.content)
    with pytest.raises(CsvFeedError) as error:
        _refresh(CsvSource(csv_root / "csv", "csi300"), csv_root, FEED_DAYS[-1])
    assert [word for word in case.words if word not in str(error.value)] == [], str(error.value)
    assert _state(csv_root) == before


@pytest.mark.parametrize("case", quarantined_csv_cases(), ids=lambda case: case.name)
def test_a_bad_csv_value_is_quarantined_by_name_and_the_stored_days_are_kept(csv_root, case: BrokenCsv):
    old_version, old_files, old_rows = _state(csv_root)
    (csv_root / "csv" / case.file_name).write_bytes(case.content)
    source = CsvSource(csv_root / "csv", "csi300")
    _refresh(source, csv_root, FEED_DAYS[-1])
    with duckdb.connect(str(csv_root / "w.duckdb"), read_only=True) as con:
        new_rows = con.execute(
            "SELECT concat_ws(' ', source_file, instrument, strftime(datetime, '%Y-%m-%d'), field, reason) "
            "FROM quarantine WHERE datetime > ?",
            [GOOD_THROUGH],
        ).fetchall()
        kept = con.execute("SELECT * FROM quarantine WHERE datetime <= ? ORDER BY ALL", [GOOD_THROUGH]).fetchall()
    assert any(all(word in row for word in case.words) for (row,) in new_rows), new_rows
    assert kept == old_rows
    assert _state(csv_root)[0] != old_version and _state(csv_root)[1] != old_files
    assert {str(p.relative_to(old_version)): p.read_bytes() for p in old_version.rglob("*") if p.is_file()} == old_files
    calendar = qlib_store.read_calendar(csv_root / "qlib_data")
    assert list(calendar) == list(source.trading_days()) == list(FEED_DAYS)  # never a day after the last session
    close = qlib_store.read_fields(csv_root / "qlib_data", ["SH600001"], ["close"], calendar)[:, 0, 0]
    np.testing.assert_array_equal(
        close[:6], qlib_store.read_fields(old_version, ["SH600001"], ["close"], calendar[:6])[:, 0, 0]
    )
    day, field = pd.Timestamp(case.words[2]), case.words[3]
    if day in calendar:  # the quarantined value is never written
        values = qlib_store.read_fields(csv_root / "qlib_data", ["SH600001"], [field], calendar)[:, 0, 0]
        assert np.isnan(values[calendar.get_loc(day)])
    else:
        assert np.isfinite(close).all()


def test_the_listing_of_an_instrument_with_history_survives_a_header_only_file(csv_root):
    before = qlib_store.read_instruments(csv_root / "qlib_data", "csi300")
    (csv_root / "csv" / "SH600001.csv").write_text("date,open,high,low,close,volume\n")
    with pytest.raises(CsvFeedError, match="SH600001.csv line 2: no rows after the header"):
        _refresh(CsvSource(csv_root / "csv", "csi300"), csv_root, FEED_DAYS[-1])
    assert qlib_store.read_instruments(csv_root / "qlib_data", "csi300") == before
    assert before["SH600001"] == [(FEED_DAYS[0], GOOD_THROUGH)]


def test_a_byte_order_mark_before_the_header_is_accepted(csv_root):
    path = csv_root / "csv" / "SH600001.csv"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    report = _refresh(CsvSource(csv_root / "csv", "csi300"), csv_root, FEED_DAYS[-1])
    assert report.days_added == 2
    close = qlib_store.read_fields(csv_root / "qlib_data", ["SH600001"], ["close"], FEED_DAYS)[:, 0, 0]
    np.testing.assert_allclose(close, 10.0 + 0.1 * np.arange(8), rtol=1e-6)


def test_a_future_row_never_extends_the_calendar_and_is_quarantined_once(csv_root):
    path = csv_root / "csv" / "SH600002.csv"
    path.write_bytes(path.read_bytes() + b"2099-01-05,11.6,11.8,11.4,11.6,1060,12296.0\n")
    source = CsvSource(csv_root / "csv", "csi300")
    assert source.trading_days()[-1] == FEED_DAYS[-1]
    for end in FEED_DAYS[6:]:  # two refreshes each report the row again: it stays one row
        _refresh(source, csv_root, end)
    with duckdb.connect(str(csv_root / "w.duckdb"), read_only=True) as con:
        future = con.execute("SELECT instrument, field FROM quarantine WHERE datetime = '2099-01-05'").fetchall()
    assert future == [("SH600002", "date")]
    assert qlib_store.read_instruments(csv_root / "qlib_data", "csi300")["SH600002"] == [(FEED_DAYS[0], FEED_DAYS[-1])]


def _cut(path: Path, size: int) -> None:
    path.write_bytes(path.read_bytes()[:size])


def _set_start(path: Path, start: float) -> None:
    path.write_bytes(np.float32(start).tobytes() + path.read_bytes()[4:])


def _replace_text(path: Path, old: str, new: str) -> None:
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new, 1))


CLOSE = "source/features/SH600000/close.day.bin"
CALENDAR, CSI300 = "source/calendars/day.txt", "source/instruments/csi300.txt"
QLIB_FOLDER_CASES = [
    ("a truncated .bin", lambda root: _cut(root / CLOSE, 10), ("SH600000/close.day.bin", "truncated (10 bytes)")),
    (
        "an empty .bin",
        lambda root: _cut(root / CLOSE.replace("close", "open"), 0),
        ("SH600000/open.day.bin", "empty"),
    ),
    (
        "a .bin longer than the calendar",
        lambda root: (root / CLOSE).write_bytes((root / CLOSE).read_bytes() + bytes(4)),
        ("SH600000/close.day.bin", "run past the calendar"),
    ),
    (
        "a .bin starting at NaN",
        lambda root: _set_start(root / CLOSE, np.nan),
        ("SH600000/close.day.bin", "start index nan"),
    ),
    ("a .bin starting at -1", lambda root: _set_start(root / CLOSE, -1), ("SH600000/close.day.bin", "start index -1")),
    (
        "a calendar with a day twice",
        lambda root: _replace_text(root / CALENDAR, "2019-12-24\n", "2019-12-24\n2019-12-24\n"),
        ("calendars/day.txt", "2019-12-24 is repeated"),
    ),
    (
        "a calendar going back in time",
        lambda root: _replace_text(root / CALENDAR, "2019-12-23\n2019-12-24", "2019-12-24\n2019-12-23"),
        ("calendars/day.txt", "2019-12-23 comes after 2019-12-24"),
    ),
    (
        "a calendar day that does not exist",
        lambda root: _replace_text(root / CALENDAR, "2019-12-24", "2019-12-34"),
        ("calendars/day.txt", "line 239", "'2019-12-34' is not a YYYY-MM-DD date"),
    ),
    (
        "an empty calendar",
        lambda root: (root / CALENDAR).write_text("\n"),
        ("calendars/day.txt", "no trading day"),
    ),
    (
        "no calendar",
        lambda root: (root / CALENDAR).unlink(),
        ("calendars/day.txt", "does not exist"),
    ),
    (
        "an instrument range ending before it starts",
        lambda root: _replace_text(
            root / CSI300, "SH600000\t2019-01-02\t2019-12-31", "SH600000\t2019-12-31\t2019-01-02"
        ),
        ("instruments/csi300.txt", "line 1", "SH600000 starts 2019-12-31 after its end 2019-01-02"),
    ),
    (
        "an instruments line without tabs",
        lambda root: _replace_text(
            root / "source/instruments/all.txt", "SH600000\t2019-01-02\t2019-12-31", "SH600000 2019-01-02 2019-12-31"
        ),
        ("instruments/all.txt", "CODE<TAB>start<TAB>end", "SH600000 2019-01-02 2019-12-31"),
    ),
    (
        "no features folder",
        lambda root: shutil.rmtree(root / "source/features"),
        ("source/features does not exist",),
    ),
    (
        "a future calendar going back in time",
        lambda root: (root / "source/calendars/day_future.txt").write_text("2019-12-31\n2019-12-30\n"),
        ("calendars/day_future.txt", "2019-12-30 comes after 2019-12-31"),
    ),
    (
        "a truncated .bin in the pipeline's own folder",
        lambda root: _cut(root / "qlib_data/features/sh600000/close.day.bin", 6),
        ("qlib_data.versions/1/features/sh600000/close.day.bin", "truncated (6 bytes)"),
    ),
]


@pytest.fixture(scope="module")
def tiny_template(tmp_path_factory) -> Path:
    """A copy of the tiny real folder as a source, imported through TINY_GOOD_THROUGH."""
    root = tmp_path_factory.mktemp("tiny")
    shutil.copytree(CN_TINY_2019, root / "source")
    _refresh(QlibFolderSource(root / "source"), root, TINY_GOOD_THROUGH)
    return root


@pytest.mark.parametrize(("name", "damage", "words"), QLIB_FOLDER_CASES, ids=[case[0] for case in QLIB_FOLDER_CASES])
def test_a_broken_qlib_folder_is_refused_in_words_that_name_it_and_nothing_stored_changes(
    tiny_template, tmp_path, name, damage, words
):
    root = tmp_path / "root"
    shutil.copytree(tiny_template, root, symlinks=True)
    damage(root)
    before = _state(root)
    with pytest.raises(qlib_store.QlibDataError) as error:
        _refresh(QlibFolderSource(root / "source"), root, TINY_END)
    assert [word for word in words if word not in str(error.value)] == [], str(error.value)
    assert _state(root) == before
