"""Jobs: what the schedule runs each trading day, and the stages people run on their own."""

import dagster as dg

# what define_asset_job returns, resolved when the location loads; Dagster exports no name for it
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition as AssetJob

from assets.names import LocationNames

# The trading-day jobs run their steps one after another in the run's own process. Their steps take
# well under a second a day while a process per step (the multiprocess default) costs the import of
# this code location, 3-5 s each: 35 s for one day's signals. Nothing is lost: their writers queue
# on the `duckdb` pool (limit 1) anyway, and the in-process executor claims the same pool slots, so
# other runs still wait their turn; the warehouse's file lock is taken and released step by step.
ONE_PROCESS = dict(executor_def=dg.in_process_executor)
# the run's console shows INFO and above: a backfill range logs a DEBUG line per partition and asset
# (thousands), which the event log keeps anyway
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}

# job -> (its assets, its description, how its steps run); each code location names them after its market
JOBS = {
    "market_data_job": (
        ["qlib_market_data", "alpha360_features", "alpha360_labels"],
        "Refresh the Qlib folder and store Alpha360 features and matured labels.",
        ONE_PROCESS,
    ),
    "daily_signals_job": (
        ["qlib_market_data", "alpha360_features", "alpha360_labels", "signals"],
        "Everything a new trading day needs, ending with its signals.",
        ONE_PROCESS,
    ),
    "signals_job": (["signals"], None, ONE_PROCESS),
    "krnn_model_job": (["krnn_model"], None, {}),
    "krnn_model_search_job": (
        ["krnn_model_search", "krnn_model"],
        "Search KRNN's kwargs on a retraining period's valid Rank IC, then train its model with the choice.",
        {},
    ),
    "reports_job": (["ic_report", "backtest_report"], None, {}),
}


def build_jobs(names: LocationNames) -> dict[str, AssetJob]:
    """The code location's jobs by their names in JOBS, each named and selecting assets as the location does."""
    return {
        job: dg.define_asset_job(
            names.named(job),
            selection=dg.AssetSelection.assets(*(names.key(asset) for asset in assets)),
            description=description,
            config=QUIET_CONSOLE,
            **executor,
        )
        for job, (assets, description, executor) in JOBS.items()
    }
