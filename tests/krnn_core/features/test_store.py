"""The DuckDB feature store: incremental days equal a range, writes are atomic, the layout reads by name."""

import numpy as np
import pandas as pd
import pytest

from krnn_core.data.synthetic import SyntheticMarket, write_market
from krnn_core.features.alpha360 import ALPHA360_COLUMNS, LAGS, alpha360_block, load_panel
from krnn_core.features.store import FEATURES_TABLE, materialize_features, read_features, write_features
from krnn_core.warehouse import connect

MARKET = SyntheticMarket(seed=5, start="2022-01-04", n_instruments=30, n_members=20)
START, DAY, END = pd.Timestamp("2022-03-01"), pd.Timestamp("2022-05-10"), pd.Timestamp("2022-05-31")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("qlib")
    write_market(path, MARKET, END)
    return path


@pytest.fixture
def con(tmp_path):
    with connect(tmp_path / "features.duckdb") as con:
        yield con


def test_one_day_reads_60_days_and_equals_the_day_of_a_range(folder, con):
    window = load_panel(folder, "csi300", DAY, DAY, history=LAGS - 1)
    assert len(window.calendar) == LAGS and window.calendar[-1] == DAY
    materialize_features(con, folder, "csi300", START, END)
    in_range = read_features(con, DAY, DAY)
    rows = materialize_features(con, folder, "csi300", DAY, DAY)
    alone = read_features(con, DAY, DAY)
    assert rows == len(alone.index) > 0
    assert alone.index.equals(in_range.index)
    np.testing.assert_array_equal(alone.x, in_range.x)


def test_rematerializing_a_range_replaces_it(folder, con):
    first = materialize_features(con, folder, "csi300", START, END)
    before = read_features(con, START, END)
    second = materialize_features(con, folder, "csi300", START, END)
    after = read_features(con, START, END)
    assert first == second == con.execute(f"SELECT count(*) FROM {FEATURES_TABLE}").fetchone()[0]
    assert after.index.equals(before.index)
    np.testing.assert_array_equal(after.x, before.x)


def _chunks_then_failure(folder):
    panel = load_panel(folder, "csi300")
    yield alpha360_block(panel, panel.day_index(START), panel.day_index(START))
    raise OSError("disk full")


def test_a_failure_after_the_first_chunk_keeps_the_previous_rows(folder, con):
    materialize_features(con, folder, "csi300", START, END)
    before = read_features(con, START, END)
    with pytest.raises(OSError, match="disk full"):
        write_features(con, _chunks_then_failure(folder), START, END)
    after = read_features(con, START, END)
    assert after.index.equals(before.index)
    np.testing.assert_array_equal(after.x, before.x)


def test_writes_leave_the_database_compression_setting_as_they_found_it(folder, con):
    setting = "SELECT current_setting('force_compression')"
    con.execute("SET force_compression = 'rle'")
    materialize_features(con, folder, "csi300", START, END)
    assert con.execute(setting).fetchone()[0] == "rle"
    with pytest.raises(OSError, match="disk full"):
        write_features(con, _chunks_then_failure(folder), START, END)
    assert con.execute(setting).fetchone()[0] == "rle"


def test_values_read_by_qlib_name_and_in_the_long_view_equal_the_array(folder, con):
    materialize_features(con, folder, "csi300", DAY, DAY)
    stored = read_features(con, DAY, DAY)
    instrument = stored.index.get_level_values("instrument")[0]
    by_name = con.execute(
        "SELECT OPEN0, VOLUME59 FROM alpha360_features_named WHERE datetime = ? AND instrument = ?",
        [DAY.date(), instrument],
    ).fetchone()
    long = con.execute(
        "SELECT value FROM alpha360_features_long WHERE datetime = ? AND instrument = ? AND field = 'OPEN' AND lag = 0",
        [DAY.date(), instrument],
    ).fetchone()[0]
    open0, volume59 = ALPHA360_COLUMNS.index("OPEN0"), ALPHA360_COLUMNS.index("VOLUME59")
    assert by_name == pytest.approx((stored.x[0, open0], stored.x[0, volume59]))
    assert long == pytest.approx(stored.x[0, open0])
    assert stored.x[0, open0] != 1.0  # a real ratio, not the close itself
