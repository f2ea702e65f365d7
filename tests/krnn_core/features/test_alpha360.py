import numpy as np
import pandas as pd
import pytest

from krnn_core.data import qlib_store
from krnn_core.data.synthetic import SyntheticMarket, write_market
from krnn_core.features.alpha360 import ALPHA360_COLUMNS, alpha360_block, labels_block, load_panel
from krnn_core.features.store import materialize_features
from krnn_core.warehouse import connect

MARKET = SyntheticMarket(seed=21, start="2022-01-04", n_instruments=40, n_members=30)
END = "2022-07-29"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("qlib")
    write_market(path, MARKET, END)
    return path


def test_columns_are_qlibs_names_in_qlibs_order():
    from qlib.contrib.data.loader import Alpha360DL

    assert ALPHA360_COLUMNS == Alpha360DL.get_feature_config()[1]


def test_features_and_labels_equal_qlibs_handler_including_the_first_59_days(folder):
    from qlib.contrib.data.handler import Alpha360

    from krnn_core.data.qlib_runtime import init_qlib

    init_qlib(folder)
    start, end = pd.Timestamp("2022-01-04"), pd.Timestamp(END)
    theirs = Alpha360(instruments="csi300", start_time=start, end_time=end, infer_processors=[], learn_processors=[])
    theirs = theirs.fetch(col_set=["feature", "label"])
    panel = load_panel(folder, "csi300")
    index, x = alpha360_block(panel, panel.day_index(start), panel.day_index(end))
    labels = labels_block(panel, panel.day_index(start), panel.day_index(end))
    assert index.equals(theirs.index)
    expected = theirs["feature"].to_numpy(np.float32)
    assert np.array_equal(np.isnan(x), np.isnan(expected))
    np.testing.assert_allclose(x, expected, rtol=1e-5, equal_nan=True)
    assert np.isnan(x[:, 0]).mean() > 0.1  # CLOSE59 is missing in the first 59 days: the comparison covers it
    qlib_labels = theirs["label"]["LABEL0"].dropna()
    pd.testing.assert_series_equal(labels.dropna(), qlib_labels, check_names=False, rtol=1e-5)


def test_features_of_a_day_use_no_later_data(folder, tmp_path):
    day = pd.Timestamp("2022-05-10")
    write_market(tmp_path, MARKET, day)
    full, cut = load_panel(folder, "csi300"), load_panel(tmp_path, "csi300")
    index_full, x_full = alpha360_block(full, full.day_index(day), full.day_index(day))
    index_cut, x_cut = alpha360_block(cut, cut.day_index(day), cut.day_index(day))
    assert index_full.equals(index_cut)
    np.testing.assert_array_equal(x_full, x_cut)


def test_a_corrupt_bin_file_is_named_in_the_error(folder, tmp_path):
    import shutil

    copy = tmp_path / "qlib"
    shutil.copytree(folder, copy)
    member = sorted(qlib_store.read_instruments(copy, "csi300"))[0]
    victim = copy / "features" / member.lower() / "close.day.bin"
    victim.write_bytes(victim.read_bytes()[:-2])  # a torn write: not a whole number of float32
    with connect(tmp_path / "db.duckdb") as con, pytest.raises(qlib_store.QlibDataError, match=str(victim)):
        materialize_features(con, copy, "csi300", pd.Timestamp("2022-03-01"), pd.Timestamp("2022-03-01"))
