"""Jobs: what the schedule runs each trading day, and the stages people run on their own."""

import dagster as dg

# The trading-day jobs run their steps one after another in the run's own process. Their steps take
# well under a second a day while a process per step (the multiprocess default) costs the import of
# this code location, 3-5 s each: 35 s for one day's signals. Nothing is lost: their writers queue
# on the `duckdb` pool (limit 1) anyway, and the in-process executor claims the same pool slots, so
# other runs still wait their turn; the warehouse's file lock is taken and released step by step.
ONE_PROCESS = dg.in_process_executor
# the run's console shows INFO and above: a backfill range logs a DEBUG line per partition and asset
# (thousands), which the event log keeps anyway
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}

# selections name asset keys: the assets are built with the code location's partitions
market_data_job = dg.define_asset_job(
    "market_data_job",
    selection=["qlib_market_data", "alpha360_features", "alpha360_labels"],
    description="Refresh the Qlib folder and store Alpha360 features and matured labels.",
    executor_def=ONE_PROCESS,
    config=QUIET_CONSOLE,
)
daily_signals_job = dg.define_asset_job(
    "daily_signals_job",
    selection=["qlib_market_data", "alpha360_features", "alpha360_labels", "signals"],
    description="Everything a new trading day needs, ending with its signals.",
    executor_def=ONE_PROCESS,
    config=QUIET_CONSOLE,
)
signals_job = dg.define_asset_job("signals_job", selection=["signals"], executor_def=ONE_PROCESS, config=QUIET_CONSOLE)
krnn_model_job = dg.define_asset_job("krnn_model_job", selection=["krnn_model"])
reports_job = dg.define_asset_job("reports_job", selection=["ic_report", "backtest_report"])
