"""The numpy processors against Qlib's own processor classes on the same small panel."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from qlib.data.dataset.processor import CSRankNorm, DropnaLabel, Fillna
from qlib.data.dataset.processor import RobustZScoreNorm as QlibRobustZScoreNorm

from krnn_core.features import processors
from krnn_core.features.processors import RobustZScoreNorm, cs_rank_norm, fillna
from krnn_core.features.row_file import RowFile

DAYS, NAMES, COLUMNS = 6, 9, 5


def _panel(seed: int = 0) -> pd.DataFrame:
    """Qlib-shaped frame: (datetime, instrument) rows, ("feature", ...) and ("label", "LABEL0") columns."""
    rng = np.random.default_rng(seed)
    index = pd.MultiIndex.from_product(
        [pd.bdate_range("2021-01-04", periods=DAYS), [f"S{i}" for i in range(NAMES)]], names=["datetime", "instrument"]
    )
    features = rng.standard_t(df=2, size=(len(index), COLUMNS)).astype(np.float32)  # heavy tails reach the clip
    features[rng.random(features.shape) < 0.1] = np.nan
    features[:, 4] = 2.5  # a constant column: MAD 0, scale 1.4826 * EPS
    label = np.round(rng.normal(size=len(index)), 1).astype(np.float32)  # rounded: ties within a day
    label[rng.random(len(index)) < 0.15] = np.nan
    columns = pd.MultiIndex.from_tuples([("feature", f"F{j}") for j in range(COLUMNS)] + [("label", "LABEL0")])
    return pd.DataFrame(np.column_stack([features, label]), index=index, columns=columns).astype(np.float32)


def test_robust_zscore_and_fillna_match_qlib() -> None:
    df = _panel()
    fit_end = df.index.levels[0][3]
    qlib_norm = QlibRobustZScoreNorm(fit_start_time=None, fit_end_time=fit_end, fields_group="feature")
    qlib_norm.fit(df)
    expected = Fillna(fields_group="feature")(qlib_norm(df.copy()))["feature"].to_numpy()

    x = df["feature"].to_numpy()
    fit_rows = df.index.get_level_values("datetime") <= fit_end
    norm = RobustZScoreNorm.fit(x[fit_rows])
    got = fillna(norm(x))
    np.testing.assert_allclose(norm.median, qlib_norm.mean_train, rtol=0, atol=1e-6)
    np.testing.assert_allclose(norm.scale, qlib_norm.std_train, rtol=1e-6)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    assert np.abs(got).max() == 3.0  # the clip was exercised
    assert not np.isnan(got).any()


def test_scale_adds_eps_before_multiplying() -> None:
    norm = RobustZScoreNorm.fit(np.array([[1.0], [1.0], [1.0]]))
    assert norm.scale[0] == (0.0 + 1e-12) * 1.4826


def test_cs_rank_norm_of_the_labelled_rows_matches_qlibs_dropna_label_and_cs_rank_norm() -> None:
    df = _panel(seed=1)
    expected = CSRankNorm(fields_group="label")(DropnaLabel()(df).copy())["label"]["LABEL0"].to_numpy()

    label = df["label"]["LABEL0"].to_numpy()
    labelled = ~np.isnan(label)
    got = cs_rank_norm(label[labelled], df.index.codes[0][labelled])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_cs_rank_norm_hand_case_with_ties_and_nan() -> None:
    label = np.array([0.3, 0.1, 0.1, np.nan, 5.0, 7.0], dtype=np.float32)
    day = np.array([0, 0, 0, 0, 1, 1])
    got = cs_rank_norm(label, day)
    # day 0 ranks of (0.3, 0.1, 0.1) over 3 labels: 3, 1.5, 1.5 -> pct 1, 0.5, 0.5
    expected = np.array([0.5 * 3.46, 0.0, 0.0, np.nan, 0.0, 0.5 * 3.46], dtype=np.float32)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    assert got.dtype == np.float32


def test_norm_round_trips_through_plain_tensors() -> None:
    x = _panel()["feature"].to_numpy()
    norm = RobustZScoreNorm.fit(x)
    state = norm.state_dict()
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    restored = RobustZScoreNorm.from_state_dict(state)
    np.testing.assert_array_equal(restored(x), norm(x))


def test_norm_refuses_other_width() -> None:
    norm = RobustZScoreNorm.fit(np.ones((4, 3)))
    with pytest.raises(ValueError, match="3 columns"):
        norm(np.ones((4, 2)))


@pytest.mark.filterwarnings("ignore:All-NaN slice encountered")
def test_fit_a_few_columns_at_a_time_and_from_a_row_file_equals_the_whole_fit(tmp_path, monkeypatch) -> None:
    x = np.random.default_rng(1).standard_t(df=3, size=(700, 40)).astype(np.float32)  # > 600 rows: numpy's 1-d path
    x[np.random.default_rng(2).random(x.shape) < 0.2] = np.nan
    x[:, 7] = np.nan  # a column without any value
    whole = RobustZScoreNorm.fit(x)
    on_disk = RowFile.create(tmp_path / "x.f32", *x.shape)
    on_disk.write(0, x)
    monkeypatch.setattr(processors, "FIT_VALUES", 700 * 3)  # three columns at a time
    for blocked in (RobustZScoreNorm.fit(x), RobustZScoreNorm.fit(on_disk)):
        assert blocked.median.tobytes() == whole.median.tobytes()
        assert blocked.scale.tobytes() == whole.scale.tobytes()
    assert np.isnan(whole.median[7]) and np.isfinite(np.delete(whole.median, 7)).all()
