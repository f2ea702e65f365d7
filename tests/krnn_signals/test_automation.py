"""The schedule and the sensor on the test config: quarterly periods from 2022-04-01."""

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from assets.names import LocationNames
from krnn_signals.definitions import CONFIG, build_definitions, defs
from krnn_signals.sensors import period_starting_after

SHANGHAI = ZoneInfo("Asia/Shanghai")
NAMES = LocationNames.of(CONFIG)
SCHEDULE = defs.resolve_schedule_def(NAMES.named("daily_signals_schedule"))


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def _tick(instance: dg.DagsterInstance, when: dt.datetime, location: dg.Definitions = defs) -> list[str]:
    """The partitions one tick of a location's schedule at `when` requests."""
    context = dg.build_schedule_context(
        instance=instance, scheduled_execution_time=when, repository_def=location.get_repository_def()
    )
    (schedule,) = location.schedules
    return [request.partition_key for request in schedule.evaluate_tick(context).run_requests or []]


def _add_daily_run(
    instance: dg.DagsterInstance, day: str, status: dg.DagsterRunStatus, names: LocationNames = NAMES
) -> None:
    run = dg.DagsterRun(names.named("daily_signals_job"), status=status, tags={"dagster/partition": day})
    instance.add_run(run)


def test_the_schedule_runs_the_same_trading_day_at_18_00_shanghai(instance):
    assert SCHEDULE.cron_schedule == CONFIG.schedule_cron == "0 18 * * 1-5"
    assert _tick(instance, dt.datetime(2022, 6, 15, 18, 0, tzinfo=SHANGHAI)) == ["2022-06-15"]
    assert _tick(instance, dt.datetime(2022, 6, 15, 14, 0, tzinfo=SHANGHAI)) == ["2022-06-14"]  # 06-15 still open


def test_the_schedule_requests_nothing_on_a_holiday(instance):
    # Oct 1-7 are holidays of the synthetic market's calendar; Oct 4, 2022 is a Tuesday
    assert _tick(instance, dt.datetime(2022, 10, 4, 18, 0, tzinfo=SHANGHAI)) == []


def test_the_schedule_runs_a_day_once_and_retries_a_failed_one(instance):
    at_18 = dt.datetime(2022, 6, 16, 18, 0, tzinfo=SHANGHAI)
    _add_daily_run(instance, "2022-06-16", dg.DagsterRunStatus.FAILURE)
    _add_daily_run(instance, "2022-06-15", dg.DagsterRunStatus.SUCCESS)
    assert _tick(instance, at_18) == ["2022-06-16"]
    _add_daily_run(instance, "2022-06-16", dg.DagsterRunStatus.STARTED)
    assert _tick(instance, at_18) == []
    assert _tick(instance, dt.datetime(2022, 6, 17, 18, 0, tzinfo=SHANGHAI)) == ["2022-06-17"]


def test_another_markets_run_of_the_day_leaves_this_markets_schedule_to_run_it():
    csi500 = build_definitions(CONFIG.model_copy(update={"name": "csi500"}))
    at_18 = dt.datetime(2022, 6, 20, 18, 0, tzinfo=SHANGHAI)
    with dg.instance_for_test() as instance:
        _add_daily_run(instance, "2022-06-20", dg.DagsterRunStatus.SUCCESS, LocationNames("csi500"))
        assert _tick(instance, at_18, csi500) == []
        assert _tick(instance, at_18) == ["2022-06-20"]


def test_a_pinned_market_clock_decides_the_day_whatever_the_tick(instance, monkeypatch):
    monkeypatch.setenv("KRNN_NOW", "2022-06-30T16:00")
    assert _tick(instance, dt.datetime(2026, 1, 5, 9, 1, tzinfo=SHANGHAI)) == ["2022-06-30"]
    monkeypatch.setenv("KRNN_NOW", "2022-06-30T14:59")
    assert _tick(instance, dt.datetime(2026, 1, 5, 9, 1, tzinfo=SHANGHAI)) == ["2022-06-29"]


def test_the_schedule_ticks_at_the_configured_cron():
    (schedule,) = build_definitions(CONFIG.model_copy(update={"schedule_cron": "* * * * *"})).schedules
    assert (schedule.name, schedule.cron_schedule) == ("csi300_daily_signals_schedule", "* * * * *")


def test_the_next_model_is_trained_on_the_last_trading_day_of_a_period():
    partitions = [defs.resolve_assets_def(NAMES.key(asset)).partitions_def for asset in ("signals", "krnn_model")]
    assert period_starting_after("2022-06-30", *partitions) == "2022-07-01"
    assert period_starting_after("2022-06-29", *partitions) is None
    # Sep 30 is the last trading day before the October holidays and the next quarter
    assert period_starting_after("2022-09-30", *partitions) == "2022-10-01"


def test_every_sensor_says_what_it_does_and_ours_in_one_line():
    sensors = {sensor.name: sensor.description for sensor in defs.get_repository_def().sensor_defs}
    assert all(description and description.strip() for description in sensors.values()), sensors
    for name in map(NAMES.named, ("after_daily_signals", "run_failure_alerts")):
        assert "\n" not in sensors[name] and sensors[name].endswith("."), name


def test_the_trading_day_assets_say_their_daily_partitions_are_trading_days():
    # Dagster describes a partitions definition by its type alone ("Daily, starting ..."): the assets say the rest
    for key in ("qlib_market_data", "alpha360_features", "alpha360_labels", "signals"):
        asset = defs.resolve_assets_def(NAMES.key(key))
        description = asset.descriptions_by_key[asset.key]
        assert "Partitioned by trading day: weekdays less the exchange's holidays" in description
