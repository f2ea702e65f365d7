"""The schedule and the sensor on the test config: quarterly periods from 2022-04-01."""

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg

from krnn_signals.definitions import defs
from krnn_signals.sensors import period_starting_after

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _tick(when: dt.datetime) -> list[str]:
    schedule = defs.resolve_schedule_def("daily_signals_schedule")
    with dg.DagsterInstance.ephemeral() as instance:
        context = dg.build_schedule_context(
            instance=instance, scheduled_execution_time=when, repository_def=defs.get_repository_def()
        )
        result = schedule.evaluate_tick(context)
    return [request.partition_key for request in result.run_requests or []]


def test_the_schedule_runs_the_same_trading_day_at_18_00_shanghai():
    assert _tick(dt.datetime(2022, 6, 15, 18, 0, tzinfo=SHANGHAI)) == ["2022-06-15"]


def test_the_schedule_requests_nothing_on_a_holiday():
    # Oct 1-7 are holidays of the synthetic market's calendar; Oct 4, 2022 is a Tuesday
    assert _tick(dt.datetime(2022, 10, 4, 18, 0, tzinfo=SHANGHAI)) == []


def test_the_next_model_is_trained_on_the_last_trading_day_of_a_period():
    partitions = [defs.resolve_assets_def(key).partitions_def for key in ("signals", "krnn_model")]
    assert period_starting_after("2022-06-30", *partitions) == "2022-07-01"
    assert period_starting_after("2022-06-29", *partitions) is None
    # Sep 30 is the last trading day before the October holidays and the next quarter
    assert period_starting_after("2022-09-30", *partitions) == "2022-10-01"


def test_every_sensor_says_what_it_does_and_ours_in_one_line():
    sensors = {sensor.name: sensor.description for sensor in defs.get_repository_def().sensor_defs}
    assert all(description and description.strip() for description in sensors.values()), sensors
    for name in ("after_daily_signals", "run_failure_alerts"):
        assert "\n" not in sensors[name] and sensors[name].endswith("."), name


def test_the_trading_day_assets_say_their_daily_partitions_are_trading_days():
    # Dagster describes a partitions definition by its type alone ("Daily, starting ..."): the assets say the rest
    for key in ("qlib_market_data", "alpha360_features", "alpha360_labels", "signals"):
        asset = defs.resolve_assets_def(key)
        description = asset.descriptions_by_key[asset.key]
        assert "Partitioned by trading day: weekdays less the exchange's holidays" in description
