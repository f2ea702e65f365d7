"""The DuckDB feature store: days equal a range, writes replace whole days atomically, the layout reads by name."""

from itertools import pairwise

import numpy as np
import pandas as pd
import pytest

from krnn_core.data import qlib_store
from krnn_core.data.synthetic import SyntheticMarket, write_market
from krnn_core.features import store
from krnn_core.features.alpha360 import (
    ALPHA360_COLUMNS,
    LABEL_COLUMN,
    LAGS,
    alpha360_block,
    alpha360_chunks,
    load_panel,
)
from krnn_core.features.store import (
    FEATURES_TABLE,
    LABELS_TABLE,
    ensure_schema,
    features_to_file,
    iter_features,
    materialize_features,
    materialize_labels,
    read_features,
    write_features,
)
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


def test_writes_leave_the_database_compression_and_memory_settings_as_they_found_them(folder, con):
    settings = "SELECT current_setting('force_compression'), current_setting('memory_limit')"
    con.execute("SET force_compression = 'rle'")
    con.execute("SET memory_limit = '3.0 GiB'")
    materialize_features(con, folder, "csi300", START, END)
    materialize_labels(con, folder, "csi300", START, END)
    assert con.execute(settings).fetchone() == ("rle", "3.0 GiB")
    with pytest.raises(OSError, match="disk full"):
        write_features(con, _chunks_then_failure(folder), START, END)
    assert con.execute(settings).fetchone() == ("rle", "3.0 GiB")


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


def _stored(con) -> dict:
    """Both tables as stored, in storage order, with NULL and NaN told apart."""
    features = con.execute(f"SELECT datetime, instrument, x FROM {FEATURES_TABLE}").fetchnumpy()
    labels = con.execute(f"SELECT datetime, instrument, {LABEL_COLUMN} FROM {LABELS_TABLE}").df()
    return {
        "keys": (features["datetime"].tolist(), features["instrument"].tolist()),
        "x": np.stack(features["x"]).astype(np.float32).tobytes(),
        "labels": labels,
        "null_labels": labels[LABEL_COLUMN].isna().sum(),
        "nan_labels": con.execute(f"SELECT count(*) FROM {LABELS_TABLE} WHERE isnan({LABEL_COLUMN})").fetchone()[0],
    }


def test_a_range_written_in_many_transactions_stores_the_same_rows_as_in_one(folder, tmp_path, monkeypatch):
    with connect(tmp_path / "one.duckdb") as con:
        materialize_features(con, folder, "csi300", START, END)
        materialize_labels(con, folder, "csi300", START, END)
        whole = _stored(con)
    names = len(qlib_store.read_instruments(folder, "csi300"))
    monkeypatch.setattr(store, "WRITE_ROWS", 3 * names)  # three days a transaction
    panels = []
    monkeypatch.setattr(store, "load_panel", lambda *args, **kw: panels.append(load_panel(*args, **kw)) or panels[-1])
    with connect(tmp_path / "blocks.duckdb") as con:
        materialize_features(con, folder, "csi300", START, END)
        materialize_labels(con, folder, "csi300", START, END)
        chunked = _stored(con)
    assert len(panels) > 30 and max(len(panel.calendar) for panel in panels) <= LAGS - 1 + 3
    assert chunked["keys"] == whole["keys"] and len(whole["keys"][0]) > 0
    assert chunked["x"] == whole["x"]
    pd.testing.assert_frame_equal(chunked["labels"], whole["labels"])
    assert whole["null_labels"] > 0 and whole["nan_labels"] == 0  # a missing label is NULL, not NaN


def test_a_failure_in_a_later_transaction_leaves_every_day_whole(folder, con, monkeypatch):
    panel = load_panel(folder, "csi300", START, END, history=LAGS - 1)
    index, x = alpha360_block(panel, panel.day_index(START), panel.day_index(END))
    ensure_schema(con)
    write_features(con, [(index, np.zeros_like(x))], START, END)  # the previous rows: all zeros
    names = len(qlib_store.read_instruments(folder, "csi300"))
    monkeypatch.setattr(store, "WRITE_ROWS", 10 * names)  # ten days a transaction
    written = []

    def third_block_fails(block, first, last):
        if len(written) == 2:
            raise OSError("disk full")
        written.append(block.calendar[last])
        return alpha360_chunks(block, first, last)

    monkeypatch.setattr(store, "alpha360_chunks", third_block_fails)
    with pytest.raises(OSError, match="disk full"):
        materialize_features(con, folder, "csi300", START, END)
    stored = read_features(con, START, END)
    rewritten = stored.index.get_level_values("datetime") <= written[-1]
    assert written[-1] == panel.calendar[panel.day_index(START) + 19] and 0 < rewritten.sum() < len(rewritten)
    assert stored.index.equals(index)  # no day lost a row
    assert (stored.x[~rewritten] == 0).all()  # later days: the previous rows
    np.testing.assert_array_equal(stored.x[rewritten], x[rewritten])  # earlier days: whole and new


def test_features_read_in_chunks_and_into_a_file_equal_one_read(folder, con, tmp_path, monkeypatch):
    materialize_features(con, folder, "csi300", START, END)
    materialize_labels(con, folder, "csi300", START, END)
    whole = read_features(con, START, END, with_labels=True)
    monkeypatch.setattr(store, "READ_CHUNK_ROWS", 100)
    chunks = list(iter_features(con, START, END, with_labels=True))
    days = [chunk.index.get_level_values("datetime") for chunk in chunks]
    assert len(chunks) > 5 and all(a[-1] < b[0] for a, b in pairwise(days))  # whole days, in order
    np.testing.assert_array_equal(np.concatenate([chunk.x for chunk in chunks]), whole.x)
    on_disk = features_to_file(con, START, END, tmp_path / "x.f32")
    assert on_disk.index.equals(whole.index)
    np.testing.assert_array_equal(on_disk.x.read(0, len(on_disk.x)), whole.x)
    np.testing.assert_array_equal(on_disk.y, whole.y)
    assert np.isnan(whole.y).any() and np.isnan(whole.x).any()
