"""A Dagster code location of krnn-signals: every definition built from one market's config, named after it."""

import dagster as dg

from assets.features import build_feature_assets
from assets.market_data import build_market_data_checks, build_qlib_market_data
from assets.model import build_krnn_model, build_krnn_model_search
from assets.names import LocationNames
from assets.reports import build_report_assets, build_report_checks
from assets.resources import PipelineResource
from assets.signals import build_signal_checks, build_signals
from krnn_core.config import PipelineConfig
from krnn_signals.executor import executor_from_env
from krnn_signals.jobs import build_jobs
from krnn_signals.monitoring import build_freshness, build_run_failure_alerts
from krnn_signals.partitions import build_retraining_periods, build_trading_days
from krnn_signals.schedules import build_daily_signals_schedule
from krnn_signals.sensors import build_after_daily_signals


def build_definitions(config: PipelineConfig) -> dg.Definitions:
    """Partitions, assets, checks, jobs, schedule and sensors of `config`, handed to every asset as its resource,
    each named after the config's `name` (assets.names).

    Nothing here reads the source: a broken feed fails its refresh run, and the location still loads.
    """
    names = LocationNames.of(config)
    trading_days, retraining_periods = build_trading_days(config), build_retraining_periods(config)
    freshness_checks, freshness_sensors = build_freshness(config, names)
    executor = executor_from_env()  # the deployment's, or None: Dagster's default, in-process trading-day jobs
    jobs = build_jobs(names, executor)
    return dg.Definitions(
        assets=[
            build_qlib_market_data(trading_days, names),
            *build_feature_assets(trading_days, names),
            build_krnn_model_search(retraining_periods, names),
            build_krnn_model(retraining_periods, names, config.ensemble),
            build_signals(trading_days, names),
            *build_report_assets(names),
        ],
        asset_checks=[
            *build_market_data_checks(trading_days, names),
            *build_signal_checks(trading_days, names),
            *build_report_checks(names),
            *freshness_checks,
        ],
        jobs=list(jobs.values()),
        schedules=[build_daily_signals_schedule(trading_days, config.schedule_cron, jobs["daily_signals_job"], names)],
        sensors=[
            build_after_daily_signals(trading_days, retraining_periods, jobs, names),
            *freshness_sensors,
            build_run_failure_alerts(names),
        ],
        resources={"pipeline": PipelineResource(config)},
        executor=executor,
    )
