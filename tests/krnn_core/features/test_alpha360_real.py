"""Our Alpha360 features, labels and processors against Qlib's handler on real CSI300 prices (2019).

The data is `tests/fixtures/cn_tiny_2019`, a copy of `../shared/data/cn_tiny_2019`.
Its instrument folders are upper case, which Qlib cannot read, so both sides read a
lower-case view of it made in a temporary folder (no vwap there: every VWAP column is NaN on both sides).
"""

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from krnn_core.data import qlib_store
from krnn_core.features.store import (
    FeatureMatrix,
    materialize_features,
    materialize_labels,
    read_features,
    read_labels,
)
from krnn_core.model.retraining import learn_sets
from krnn_core.warehouse import connect
from tests.fixtures import CN_TINY_2019

START, FIT_END, END = pd.Timestamp("2019-01-02"), pd.Timestamp("2019-06-28"), pd.Timestamp("2019-12-31")
KRNN_INFER = [
    {"class": "RobustZScoreNorm", "kwargs": {"fields_group": "feature", "clip_outlier": True}},
    {"class": "Fillna", "kwargs": {"fields_group": "feature"}},
]
KRNN_LEARN = [{"class": "DropnaLabel"}, {"class": "CSRankNorm", "kwargs": {"fields_group": "label"}}]


def lower_case_view(source: Path, target: Path) -> Path:
    """calendars/ and instruments/ copied, features/<code> linked under its lower-case name."""
    for folder in ("calendars", "instruments"):
        shutil.copytree(source / folder, target / folder)
    (target / "features").mkdir()
    for code in (source / "features").iterdir():
        os.symlink(code.resolve(), target / "features" / code.name.lower())
    return target


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return lower_case_view(CN_TINY_2019, tmp_path_factory.mktemp("cn_tiny_2019"))


@pytest.fixture(scope="module")
def qlib_handler(folder):
    """Qlib's Alpha360 handler with the KRNN benchmark's processors, fitted on the first half of 2019."""
    from qlib.contrib.data.handler import Alpha360

    from krnn_core.data.qlib_runtime import init_qlib

    init_qlib(folder)
    return Alpha360(
        instruments="csi300", start_time=START, end_time=END, fit_start_time=START, fit_end_time=FIT_END,
        infer_processors=KRNN_INFER, learn_processors=KRNN_LEARN,
    )  # fmt: skip


@pytest.fixture(scope="module")
def stored(folder, tmp_path_factory):
    """Features and labels of 2019 materialized into DuckDB and read back."""
    with connect(tmp_path_factory.mktemp("db") / "features.duckdb") as con:
        materialize_features(con, folder, "csi300", START, END)
        materialize_labels(con, folder, "csi300", START, END)
        return read_features(con, START, END, with_labels=True), read_labels(con, START, END)


def test_raw_features_equal_qlibs_with_identical_nan_masks(qlib_handler, stored):
    from qlib.data.dataset.handler import DataHandlerLP

    raw = qlib_handler.fetch(col_set="feature", data_key=DataHandlerLP.DK_R)
    ours, _ = stored
    expected = raw.to_numpy(np.float32)
    assert ours.index.equals(raw.index)
    assert np.array_equal(np.isnan(ours.x), np.isnan(expected))
    np.testing.assert_allclose(ours.x, expected, rtol=1e-5)
    assert np.isnan(ours.x[:, 240:300]).all()  # VWAP59..VWAP0: the folder has no vwap
    assert 0.2 < np.isnan(ours.x[:, 0]).mean() < 0.35  # CLOSE59 is missing in the first 59 days of the year


def test_labels_equal_qlibs(qlib_handler, stored):
    from qlib.data.dataset.handler import DataHandlerLP

    raw = qlib_handler.fetch(col_set="label", data_key=DataHandlerLP.DK_R)["LABEL0"].dropna()
    _, labels = stored
    pd.testing.assert_series_equal(labels.dropna(), raw.astype(np.float32), check_names=False, rtol=1e-5)
    assert len(raw) > 6500


def test_processed_features_and_labels_equal_qlibs_learn_data(qlib_handler, stored):
    from qlib.data.dataset.handler import DataHandlerLP

    learn = qlib_handler.fetch(col_set=["feature", "label"], data_key=DataHandlerLP.DK_L)
    ours, _ = stored
    fit_rows = ours.index.get_level_values("datetime") <= FIT_END
    fit_window = FeatureMatrix(ours.index[fit_rows], ours.x[fit_rows], ours.y[fit_rows])
    _, _, learned = learn_sets(fit_window, ours)  # the training path: fitted on the fit window, applied to all
    np.testing.assert_allclose(learned.x, learn["feature"].to_numpy(), rtol=0, atol=1e-5)
    np.testing.assert_allclose(learned.y, learn["label"]["LABEL0"].to_numpy(), rtol=0, atol=1e-5)
    assert np.abs(learned.x).max() == 3.0 and (learned.x == 0).any()  # the clip and the NaN fill were both exercised


def test_one_day_is_unchanged_when_all_later_data_is_deleted(folder, stored, tmp_path):
    day = pd.Timestamp("2019-09-02")
    cut = truncated_copy(folder, day, tmp_path / "cut")
    with connect(tmp_path / "cut.duckdb") as con:
        materialize_features(con, cut, "csi300", day, day)
        alone = read_features(con, day, day)
    ours, _ = stored
    on_day = ours.index.get_level_values("datetime") == day
    assert alone.index.equals(ours.index[on_day])
    np.testing.assert_array_equal(alone.x, ours.x[on_day])


def truncated_copy(folder: Path, day: pd.Timestamp, target: Path) -> Path:
    """The folder with every calendar day and value after `day` removed."""
    calendar = qlib_store.read_calendar(folder)
    keep = int(calendar.searchsorted(day, side="right"))
    qlib_store.write_calendar(target, calendar[:keep])
    shutil.copytree(folder / "instruments", target / "instruments")
    for path in (folder / "features").glob("*/*.day.bin"):
        raw = np.fromfile(path, dtype="<f4")  # raw[0] is the calendar position of the first value
        if keep > int(raw[0]):
            (target / "features" / path.parent.name).mkdir(parents=True, exist_ok=True)
            (target / "features" / path.parent.name / path.name).write_bytes(raw[: 1 + keep - int(raw[0])].tobytes())
    return target
