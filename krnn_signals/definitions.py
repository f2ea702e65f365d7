"""The Dagster code location of krnn-signals."""

import dagster as dg

from assets.features import alpha360_features, alpha360_labels
from assets.market_data import qlib_market_data
from assets.model import krnn_model
from assets.reports import backtest_report, ic_report
from assets.signals import signals
from krnn_signals.checks import (
    bars_are_consistent,
    calendar_is_valid,
    no_unexplained_jumps,
    signals_cover_universe,
    universe_is_covered,
)
from krnn_signals.config import config_path
from krnn_signals.jobs import daily_signals_job, krnn_model_job, market_data_job, reports_job, signals_job
from krnn_signals.monitoring import (
    model_is_recent,
    rank_ic_holds_up,
    run_failure_alerts,
    signals_are_spread,
    signals_freshness_checks,
    signals_freshness_sensor,
)
from krnn_signals.resources import PipelineResource
from krnn_signals.schedules import daily_signals_schedule
from krnn_signals.sensors import after_daily_signals

defs = dg.Definitions(
    assets=[qlib_market_data, alpha360_features, alpha360_labels, krnn_model, signals, ic_report, backtest_report],
    asset_checks=[
        calendar_is_valid,
        no_unexplained_jumps,
        universe_is_covered,
        bars_are_consistent,
        signals_cover_universe,
        signals_are_spread,
        model_is_recent,
        rank_ic_holds_up,
        *signals_freshness_checks,
    ],
    jobs=[market_data_job, daily_signals_job, signals_job, krnn_model_job, reports_job],
    schedules=[daily_signals_schedule],
    sensors=[after_daily_signals, signals_freshness_sensor, run_failure_alerts],
    resources={"pipeline": PipelineResource(config_path=str(config_path()))},
)
