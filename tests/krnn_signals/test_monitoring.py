"""A finished market (`end_time`: a snapshot, the demo) is never late; a live feed's signals have a deadline."""

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import yaml

from assets.names import LocationNames
from krnn_core.config import DEFAULT_CONFIG, load_config
from krnn_signals.definitions import build_definitions
from tests.fixtures import REPO_ROOT

SHANGHAI = ZoneInfo("Asia/Shanghai")
NAMES = LocationNames("csi300")  # the default config's market
SCHEDULE, FRESHNESS_SENSOR = NAMES.named("daily_signals_schedule"), NAMES.named("signals_freshness_sensor")


def _definitions(tmp_path: Path, end_time: str | None) -> dg.Definitions:
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    raw["end_time"] = end_time
    raw["qlib_init"]["provider_uri"] = str(tmp_path / "qlib_data")  # not refreshed: the synthetic rule of dates
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    return build_definitions(load_config(tmp_path / "config.yaml"))


def _freshness_checks(defs: dg.Definitions) -> list[str]:
    return [key.name for checks in defs.asset_checks for key in checks.check_keys if "fresh" in key.name]


def _tick(defs: dg.Definitions, when: dt.datetime) -> dg.SensorResult:
    # the schedule reads its runs: an ephemeral instance has no ref to hand it; the context opens its own, so it is
    # closed with it, or Dagster's next repository would find its storage gone
    with (
        dg.DagsterInstance.local_temp() as instance,
        dg.build_schedule_context(
            instance, scheduled_execution_time=when, repository_def=defs.get_repository_def()
        ) as context,
    ):
        return defs.resolve_schedule_def(SCHEDULE).evaluate_tick(context)


def test_a_finished_market_ends_its_partitions_at_end_time_and_is_never_late(tmp_path):
    defs = _definitions(tmp_path, "2024-12-31")
    keys = defs.resolve_assets_def(NAMES.key("signals")).partitions_def.get_partition_keys()
    assert keys[-1] == "2024-12-31" and len(keys) == 992  # 2021-01-04..2024-12-31 of the synthetic calendar
    assert _freshness_checks(defs) == []
    assert FRESHNESS_SENSOR not in {sensor.name for sensor in defs.sensors}
    assert defs.resolve_schedule_def(SCHEDULE).default_status == dg.DefaultScheduleStatus.STOPPED
    tick = _tick(defs, dt.datetime(2025, 3, 4, 18, 0, tzinfo=SHANGHAI))
    assert not tick.run_requests and "finished snapshot" in tick.skip_message
    # the UI shows no freshness then: the trading-day assets say why
    assert "A finished market: its data ends on 2024-12-31" in _description(defs, "signals")


def _description(defs: dg.Definitions, key: str) -> str:
    asset = defs.resolve_assets_def(NAMES.key(key))
    return asset.descriptions_by_key[asset.key]


def test_a_live_feed_runs_its_partitions_to_today_with_a_deadline_on_the_signals(tmp_path):
    defs = _definitions(tmp_path, None)
    keys = defs.resolve_assets_def(NAMES.key("signals")).partitions_def.get_partition_keys()
    assert keys[-1] > "2025-12-31"
    assert _freshness_checks(defs) and FRESHNESS_SENSOR in {sensor.name for sensor in defs.sensors}
    assert defs.resolve_schedule_def(SCHEDULE).default_status == dg.DefaultScheduleStatus.RUNNING
    assert "finished market" not in _description(defs, "signals")
    assert [r.partition_key for r in _tick(defs, dt.datetime(2024, 6, 4, 18, 0, tzinfo=SHANGHAI)).run_requests] == [
        "2024-06-04"
    ]


def test_importing_the_code_location_prints_no_warning(tmp_path):
    for end_time in ("2024-12-31", None):
        _definitions(tmp_path, end_time)  # writes tmp_path/config.yaml
        env = {**os.environ, "KRNN_CONFIG": str(tmp_path / "config.yaml"), "PYTHONPATH": str(REPO_ROOT)}
        done = subprocess.run(
            [sys.executable, "-W", "error::UserWarning", "-c", "import krnn_signals.definitions"],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert (done.returncode, done.stdout, done.stderr) == (0, "", ""), end_time
