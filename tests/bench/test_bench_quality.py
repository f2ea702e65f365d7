"""bench_quality's outside reference: Qlib's GRU trained on the bench's processed rows and scored on its test rows."""

import importlib
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from krnn_core.data.qlib_runtime import init_qlib
from krnn_core.features.store import FeatureMatrix
from tests.fixtures import CN_TINY_2019

DAYS = pd.bdate_range("2019-01-02", periods=24)
INSTRUMENTS = [f"SH6{i:05d}" for i in range(40)]


@pytest.fixture
def bench_quality(monkeypatch):
    """The script as a module; it imports its neighbours in bench/ by name, as when run from there."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "bench"))
    return importlib.import_module("bench_quality")


def _rows(days: pd.DatetimeIndex, rng: np.random.Generator) -> FeatureMatrix:
    """Random Alpha360 rows and labels of these days."""
    index = pd.MultiIndex.from_product([days, INSTRUMENTS], names=["datetime", "instrument"])
    x = rng.normal(size=(len(index), 360)).astype(np.float32)
    return FeatureMatrix(index, x, rng.normal(size=len(index)).astype(np.float32))


def test_qlibs_gru_trains_and_scores_every_test_day(bench_quality, tmp_path, monkeypatch):
    cwd = tmp_path / "cwd"
    subprocess.run(["git", "init", "-q", str(cwd)], check=True)  # Qlib's recorder logs the git state of the cwd
    monkeypatch.chdir(cwd)
    init_qlib(CN_TINY_2019)  # Qlib's recorder, which the GRU's fit logs to
    rng = np.random.default_rng(0)
    train, valid, test = _rows(DAYS[:12], rng), _rows(DAYS[12:18], rng), _rows(DAYS[18:], rng)
    labels = pd.Series(test.y, index=test.index)
    daily, epochs = bench_quality.gru_daily_ic(train, valid, test, labels, seed=1, max_epochs=1, work=tmp_path)
    assert epochs == 1 and list(daily.index) == list(DAYS[18:])
    assert (daily["n"] == len(INSTRUMENTS)).all() and np.isfinite(daily[["ic", "rank_ic"]]).all().all()
    assert (tmp_path / "mlflow.db").is_file() and (tmp_path / "mlruns").is_dir()
    assert [path.name for path in cwd.iterdir()] == [".git"]  # the recorder's artifacts stay in the work folder
