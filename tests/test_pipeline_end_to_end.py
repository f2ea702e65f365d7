"""The whole chain through Dagster on the small synthetic market of conftest.py."""

import shutil
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import yaml

from krnn_core.config import load_config, synthetic_market
from krnn_core.data import qlib_store
from krnn_core.data.synthetic import oracle_ic
from krnn_core.features.alpha360 import ALPHA360_COLUMNS
from krnn_core.warehouse import connect
from krnn_signals.demo import materialize_chain, run_job, trading_days_between


def _traded_members(config, day: pd.Timestamp) -> set[str]:
    """Members of the market on `day` with a bar that day, read straight from the Qlib folder."""
    provider = config.qlib_init.provider_uri
    calendar = qlib_store.read_calendar(provider)
    members = qlib_store.members_on(qlib_store.read_instruments(provider, config.market), day)
    close = {code: qlib_store.read_fields(provider, [code], ["close"], calendar)[:, 0, 0] for code in members}
    return {code for code in members if np.isfinite(close[code][calendar.get_loc(day)])}


def _signals(config, first: str, last: str) -> pd.DataFrame:
    with connect(config.duckdb_path, read_only=True) as con:
        frame = con.execute(
            "SELECT * FROM signals WHERE datetime BETWEEN ? AND ? ORDER BY datetime, instrument", [first, last]
        ).df()
    frame["datetime"] = pd.to_datetime(frame["datetime"])
    return frame


def test_one_signal_per_traded_universe_member_and_trading_day(pipeline):
    test_start, test_end = (str(day) for day in pipeline.task.dataset.segments.test)
    stored = _signals(pipeline, test_start, test_end)
    days = trading_days_between(test_start, test_end)
    assert sorted(stored["datetime"].dt.strftime("%Y-%m-%d").unique()) == days
    suspended_somewhere = False
    for day, frame in stored.groupby("datetime"):
        expected = _traded_members(pipeline, day)
        assert set(frame["instrument"]) == expected and len(frame) == len(expected), day
        assert sorted(frame["rank"]) == list(range(1, len(frame) + 1))
        members = qlib_store.members_on(qlib_store.read_instruments(pipeline.qlib_init.provider_uri, "csi300"), day)
        suspended_somewhere |= len(expected) < len(members)
    assert suspended_somewhere, "the test market should have suspended members that get no score"
    assert np.isfinite(stored["score"]).all()


def test_stored_features_and_labels_equal_qlibs_alpha360_handler(pipeline):
    from qlib.contrib.data.handler import Alpha360

    from krnn_core.data.qlib_runtime import init_qlib
    from krnn_core.features.store import read_features

    start, end = pd.Timestamp("2022-05-04"), pd.Timestamp("2022-06-30")  # ends on the folder's last day
    init_qlib(pipeline.qlib_init.provider_uri)
    handler = Alpha360(instruments="csi300", start_time=start, end_time=end, infer_processors=[], learn_processors=[])
    theirs = handler.fetch(col_set=["feature", "label"])
    with connect(pipeline.duckdb_path, read_only=True) as con:
        ours = read_features(con, start, end, with_labels=True)
    assert list(theirs["feature"].columns) == ALPHA360_COLUMNS
    assert ours.index.equals(theirs.index)
    expected = theirs["feature"].to_numpy(np.float32)
    assert np.array_equal(np.isnan(ours.x), np.isnan(expected))
    np.testing.assert_allclose(ours.x, expected, rtol=1e-5, equal_nan=True)
    # Qlib has NaN labels for the last two days (no t+2 yet); ours are not stored there at all
    qlib_label = theirs["label"]["LABEL0"].to_numpy(np.float32)
    assert np.array_equal(np.isnan(ours.y), np.isnan(qlib_label))
    np.testing.assert_allclose(ours.y, qlib_label, rtol=1e-5, equal_nan=True)


def test_model_learned_the_planted_signal(pipeline):
    test_start, test_end = pipeline.task.dataset.segments.test
    oracle = oracle_ic(synthetic_market(pipeline), str(test_start), str(test_end))
    with connect(pipeline.duckdb_path, read_only=True) as con:
        ic, rank_ic, days = con.execute("SELECT ic, rank_ic, days FROM ic_summary").fetchone()
    # 60 names x ~60 days: the standard error of a mean daily IC is about 1/sqrt(60)/sqrt(60) = 0.017;
    # a floor of a third of the oracle sits several standard errors above zero, so a model that did
    # not learn (or read the lags in the wrong order) fails, while a few small epochs clear it
    assert days >= 55
    assert oracle > 0.05
    assert ic >= oracle / 3, (ic, oracle)
    assert rank_ic > 0


def test_rematerializing_a_day_keeps_row_counts_and_values(pipeline, test_config_path):
    day = trading_days_between(str(pipeline.task.dataset.segments.test[0]), "2022-06-30")[5]
    tables = ("alpha360_features", "alpha360_labels", "signals")

    def counts():
        with connect(pipeline.duckdb_path, read_only=True) as con:
            return {table: con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in tables}

    before, signals_before = counts(), _signals(pipeline, day, day)
    with dg.DagsterInstance.ephemeral() as instance:
        run_job("daily_signals_job", instance, pipeline, partition_key=day)
    assert counts() == before
    pd.testing.assert_frame_equal(_signals(pipeline, day, day), signals_before)


def _truncated_copy(config, config_file: Path, day: pd.Timestamp, root: Path) -> Path:
    """The pipeline's Qlib folder with every value after `day` removed, and a config that reads it."""
    source, target = config.qlib_init.provider_uri, root / "qlib_data"
    shutil.copytree(source, target)
    calendar = qlib_store.read_calendar(source)
    keep = calendar[calendar <= day]
    qlib_store.write_calendar(target, keep, calendar[calendar > day])
    for market in ("all", config.market):
        spans = qlib_store.read_instruments(source, market)
        cut = {code: [(s, min(e, day)) for s, e in ranges if s <= day] for code, ranges in spans.items()}
        qlib_store.write_instruments(target, market, {code: ranges for code, ranges in cut.items() if ranges})
    for path in (target / "features").rglob("*.day.bin"):
        raw = np.fromfile(path, dtype="<f4")
        values_kept = len(keep) - int(raw[0])  # raw[0] is the calendar index of the first value
        if values_kept > 0:
            path.write_bytes(raw[: 1 + values_kept].tobytes())
        else:
            path.unlink()
    raw = yaml.safe_load(config_file.read_text())
    raw |= {
        "qlib_init": {"provider_uri": str(target)},
        "duckdb_path": str(root / "db.duckdb"),
        "model_dir": str(root / "models"),
    }
    (root / "config.yaml").write_text(yaml.safe_dump(raw))
    return root / "config.yaml"


def test_signals_of_a_day_do_not_change_when_later_data_is_removed(pipeline, test_config_path, tmp_path):
    day = trading_days_between(str(pipeline.task.dataset.segments.test[0]), "2022-06-30")[9]
    copy = _truncated_copy(pipeline, test_config_path, pd.Timestamp(day), tmp_path)
    truncated = load_config(copy)
    with dg.DagsterInstance.ephemeral() as instance:
        materialize_chain(instance, day, truncated)
    assert qlib_store.read_calendar(truncated.qlib_init.provider_uri)[-1] == pd.Timestamp(day)
    pd.testing.assert_frame_equal(_signals(truncated, day, day), _signals(pipeline, day, day))
