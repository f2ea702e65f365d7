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
# A deployment's executor (deploy/: k8s_job_executor, a pod per step) replaces it.

# the run's console shows INFO and above: a backfill range logs a DEBUG line per partition and asset
# (thousands), which the event log keeps anyway
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}

# job -> (its assets, its description, whether its steps share the run's process); each code location names
# them after its market
JOBS = {
    "market_data_job": (
        ["qlib_market_data", "alpha360_features", "alpha360_labels"],
        "Refresh the Qlib folder and store Alpha360 features and matured labels.",
        True,
    ),
    "daily_signals_job": (
        ["qlib_market_data", "alpha360_features", "alpha360_labels", "signals"],
        "Everything a new trading day needs, ending with its signals.",
        True,
    ),
    "signals_job": (["signals"], None, True),
    "krnn_model_job": (["krnn_model"], None, False),
    "krnn_model_search_job": (
        ["krnn_model_search", "krnn_model"],
        "Search KRNN's kwargs on a retraining period's valid Rank IC, then train its model with the choice.",
        False,
    ),
    "reports_job": (["ic_report", "backtest_report"], None, False),
}


def build_jobs(names: LocationNames, executor: dg.ExecutorDefinition | None = None) -> dict[str, AssetJob]:
    """The code location's jobs by their names in JOBS, named and selecting assets as the location does; a
    deployment's `executor` runs them all, else trading-day jobs run in one process and the others by default."""
    return {
        job: dg.define_asset_job(
            names.named(job),
            selection=dg.AssetSelection.assets(*(names.key(asset) for asset in assets)),
            description=description,
            config=QUIET_CONSOLE,
            executor_def=executor or (dg.in_process_executor if one_process else None),
        )
        for job, (assets, description, one_process) in JOBS.items()
    }
