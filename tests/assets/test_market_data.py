"""The market-data checks on a CSV feed with a bad bar and a jump, run through Dagster."""

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import yaml

from assets.market_data import (
    BARS_CHECK,
    CALENDAR_CHECK,
    JUMP_CHECK,
    UNIVERSE_CHECK,
    build_market_data_checks,
    build_qlib_market_data,
)
from assets.resources import PipelineResource
from krnn_core.config import load_config
from krnn_signals.partitions import build_trading_days

DAYS = pd.bdate_range("2021-03-01", "2021-03-12")


def _config(tmp_path, raw: dict) -> str:
    feed = tmp_path / "csv"
    feed.mkdir()
    close = np.linspace(10, 11, len(DAYS))
    close[DAYS.get_loc(pd.Timestamp("2021-03-10")) :] *= 1.3  # +30% without a factor: a warning
    for code, scale in (("SH600001", 1.0), ("SH600002", 2.0)):
        frame = pd.DataFrame(
            {
                "open": close * scale,
                "high": close * scale * 1.01,
                "low": close * scale * 0.99,
                "close": close * scale,
                "volume": 1e4,
            },
            index=DAYS.rename("date"),
        )
        if code == "SH600002":
            frame.loc["2021-03-09", "high"] = 0.5  # quarantined: a missing bar, so only coverage warns
        frame.to_csv(feed / f"{code}.csv", date_format="%Y-%m-%d")
    raw = raw | {
        "source": {"kind": "csv", "path": "csv"},
        "qlib_init": {"provider_uri": "qlib_data"},
        "duckdb_path": "w.duckdb",
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    return str(tmp_path / "config.yaml")


def test_severe_checks_pass_warnings_show_and_bad_rows_are_quarantined(tmp_path, test_config_path):
    config = _config(tmp_path, yaml.safe_load(test_config_path.read_text()))
    trading_days = build_trading_days(load_config(config))
    built = {next(iter(check.check_keys)).name: check for check in build_market_data_checks(trading_days)}
    market_checks = [built[name] for name in (CALENDAR_CHECK, BARS_CHECK, JUMP_CHECK, UNIVERSE_CHECK)]
    result = dg.materialize(
        [build_qlib_market_data(trading_days), *market_checks],
        partition_key="2021-03-10",
        resources={"pipeline": PipelineResource(load_config(config))},
    )
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["calendar_is_valid"].passed and checks["bars_are_consistent"].passed
    jumps, coverage = checks["no_unexplained_jumps"], checks["universe_is_covered"]
    assert not jumps.passed and jumps.severity == dg.AssetCheckSeverity.WARN
    # SH600002's move is measured from 03-08: its 03-09 bar was quarantined
    assert jumps.metadata["problems"].value.endswith(
        "2 bars, e.g. SH600001 2021-03-10 +31.4%, SH600002 2021-03-10 +32.7%"
    )
    assert coverage.passed  # 2021-03-10 has both bars; 03-09 lacks one but is outside the partition
    assert next(iter(built[CALENDAR_CHECK].check_specs)).blocking
    assert not next(iter(built[JUMP_CHECK].check_specs)).blocking
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT instrument, datetime, field, reason FROM quarantine ORDER BY field").fetchall()
    assert rows == [
        ("SH600002", pd.Timestamp("2021-03-09").to_pydatetime(), "high", "high below open or close"),
        ("SH600002", pd.Timestamp("2021-03-09").to_pydatetime(), "low", "low above open, close or high"),
    ]
