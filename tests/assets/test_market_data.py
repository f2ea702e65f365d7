"""The market-data checks on a CSV feed with a bad bar and a jump, run through Dagster for one day and a range."""

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
from assets.names import LocationNames
from assets.resources import PipelineResource
from krnn_core.config import load_config
from krnn_signals.demo import RANGE_END, RANGE_START
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


def _materialize(config: str, instance: dg.DagsterInstance, **partitions) -> dg.ExecuteInProcessResult:
    """The refresh and its four checks, for one partition or a range, recorded in `instance`."""
    trading_days, names = build_trading_days(load_config(config)), LocationNames.of(load_config(config))
    checks = build_market_data_checks(trading_days, names)
    return dg.materialize(
        [build_qlib_market_data(trading_days, names), *checks],
        resources={"pipeline": PipelineResource(load_config(config))},
        instance=instance,
        **partitions,
    )


def test_severe_checks_pass_warnings_show_and_bad_rows_are_quarantined(tmp_path, test_config_path):
    config = _config(tmp_path, yaml.safe_load(test_config_path.read_text()))
    built = {
        next(iter(c.check_keys)).name: c
        for c in build_market_data_checks(
            build_trading_days(load_config(config)), LocationNames.of(load_config(config))
        )
    }
    with dg.DagsterInstance.ephemeral() as instance:
        result = _materialize(config, instance, partition_key="2021-03-10")
    evaluations = result.get_asset_check_evaluations()
    # one day: Dagster records each partitioned check's result against the day itself, nothing more is logged
    assert sorted((e.check_name, e.partition) for e in evaluations) == [
        (BARS_CHECK, "2021-03-10"),
        (CALENDAR_CHECK, None),
        (JUMP_CHECK, "2021-03-10"),
        (UNIVERSE_CHECK, "2021-03-10"),
    ]
    checks = {e.check_name: e for e in evaluations}
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


def _days_by_status(instance: dg.DagsterInstance, check: str, trading_days: dg.PartitionsDefinition) -> dict:
    """What the UI's partition bar of a check shows: its partitions by status."""
    key = dg.AssetCheckKey(LocationNames("csi300").key("qlib_market_data"), check)  # the test config's market
    state = instance.event_log_storage.get_asset_check_state([(key, trading_days)])[key]
    return {
        status.value: sorted(subset.subset_value.get_partition_keys())
        for status, subset in state.subsets.items()
        if not subset.is_empty
    }


def test_a_range_run_shows_each_check_per_day_failed_only_on_the_failing_day(tmp_path, test_config_path):
    config = _config(tmp_path, yaml.safe_load(test_config_path.read_text()))
    trading_days = build_trading_days(load_config(config))
    days = [str(day.date()) for day in DAYS]
    with dg.DagsterInstance.ephemeral() as instance:
        result = _materialize(config, instance, tags={RANGE_START: days[0], RANGE_END: days[-1]})
        statuses = {
            name: _days_by_status(instance, name, trading_days) for name in (BARS_CHECK, JUMP_CHECK, UNIVERSE_CHECK)
        }
    assert result.success  # the jump and the missing bar only warn
    assert statuses[BARS_CHECK] == {"SUCCEEDED": days}
    # the +30% jump of both names on 03-10, and SH600002's quarantined bar of 03-09 (half the index without a bar)
    assert statuses[JUMP_CHECK] == {"FAILED": ["2021-03-10"], "SUCCEEDED": [d for d in days if d != "2021-03-10"]}
    assert statuses[UNIVERSE_CHECK] == {"FAILED": ["2021-03-09"], "SUCCEEDED": [d for d in days if d != "2021-03-09"]}
    # the run's own result still covers the range: the failed days and the problems of each
    jumps = {e.partition: e for e in result.get_asset_check_evaluations() if e.check_name == JUMP_CHECK}
    assert not jumps[None].passed and jumps[None].metadata["failed_days"].value == 1
    assert jumps[None].metadata["problems"].value.startswith("2021-03-10: close moved more than")
    assert jumps["2021-03-10"].metadata["problems"].value == jumps[None].metadata["problems"].value
    assert jumps["2021-03-09"].passed and jumps["2021-03-09"].metadata["problems"].value == "none"


def test_a_holiday_inside_a_first_backfill_is_no_failed_day(tmp_path, test_config_path):
    config = _config(tmp_path, yaml.safe_load(test_config_path.read_text()))
    for feed in (tmp_path / "csv").glob("*.csv"):  # the exchange closed on 03-05: no file has that row
        frame = pd.read_csv(feed, index_col="date")
        frame.drop(index="2021-03-05").to_csv(feed)
    trading_days = build_trading_days(load_config(config))  # before the first refresh: no holiday is known
    days = [str(day.date()) for day in DAYS]
    assert "2021-03-05" in trading_days.get_partition_keys_in_range(dg.PartitionKeyRange(days[0], days[-1]))
    with dg.DagsterInstance.ephemeral() as instance:
        result = _materialize(config, instance, tags={RANGE_START: days[0], RANGE_END: days[-1]})
        bars = _days_by_status(instance, BARS_CHECK, trading_days)
    assert result.success
    assert bars == {"SUCCEEDED": days}
