"""Trading days come from the pipeline's own Qlib folder, or from the config alone: never from the source."""

from pathlib import Path

import pandas as pd
import yaml

from krnn_core.config import DEFAULT_CONFIG, PipelineConfig, load_config
from krnn_core.data import qlib_store
from krnn_signals.partitions import build_trading_days, holidays
from tests.fixtures import CN_TINY_2019


def _config(tmp_path: Path, source: dict) -> PipelineConfig:
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    raw |= {"source": source, "start_time": "2019-01-02", "qlib_init": {"provider_uri": "qlib_data"}}
    raw["task"]["dataset"]["segments"] = {
        "train": ["2019-01-02", "2019-06-28"],
        "valid": ["2019-07-01", "2019-09-30"],
        "test": ["2019-10-08", "2019-12-31"],
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    return load_config(tmp_path / "config.yaml")


def test_before_the_first_refresh_a_feed_gives_weekdays_and_the_synthetic_market_its_rule(tmp_path):
    feed = _config(tmp_path, {"kind": "csv", "path": "no_such_folder"})
    assert holidays(feed) == []
    keys = build_trading_days(feed).get_partition_keys(current_time=pd.Timestamp("2019-10-09", tz="Asia/Shanghai"))
    assert keys[0] == "2019-01-02" and "2019-10-01" in keys and "2019-10-05" not in keys  # a Saturday
    synthetic = _config(tmp_path, {"kind": "synthetic"})  # Oct 1-7 are the synthetic market's National Day
    assert [day.date().isoformat() for day in holidays(synthetic) if day.month == 10][:5] == [
        "2019-10-01",
        "2019-10-02",
        "2019-10-03",
        "2019-10-04",
        "2019-10-07",
    ]


def test_the_holidays_are_the_weekdays_missing_from_the_pipeline_folder(tmp_path):
    config = _config(tmp_path, {"kind": "qlib_folder", "path": "no_such_folder"})  # the source is not read
    calendar = qlib_store.read_calendar(CN_TINY_2019)
    qlib_store.write_calendar(config.qlib_init.provider_uri, calendar)
    closed = pd.bdate_range("2019-01-02", "2019-12-31").difference(calendar)
    assert [pd.Timestamp(day) for day in holidays(config)] == list(closed)
    assert len(closed) == 16 and pd.Timestamp("2019-10-01") in closed  # 260 weekdays, 244 sessions
    keys = build_trading_days(config).get_partition_keys(current_time=pd.Timestamp("2020-01-02", tz="Asia/Shanghai"))
    assert keys[:3] == ["2019-01-02", "2019-01-03", "2019-01-04"] and "2019-10-01" not in keys
