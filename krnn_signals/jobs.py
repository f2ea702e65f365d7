"""Jobs: what the schedule runs each trading day, and the stages people run on their own."""

import dagster as dg

# what define_asset_job returns, resolved when the location loads; Dagster exports no name for it
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition as AssetJob

from assets.names import LocationNames

# job -> (its assets, its description); each code location names them after its market (assets.names)
JOBS = {
    "market_data_job": (
        ["qlib_market_data", "alpha360_features", "alpha360_labels"],
        "Refresh the Qlib folder and store Alpha360 features and matured labels.",
    ),
    "daily_signals_job": (
        ["qlib_market_data", "alpha360_features", "alpha360_labels", "signals"],
        "Everything a new trading day needs, ending with its signals.",
    ),
    "signals_job": (["signals"], None),
    "krnn_model_job": (["krnn_model"], None),
    "reports_job": (["ic_report", "backtest_report"], None),
}


def build_jobs(names: LocationNames) -> dict[str, AssetJob]:
    """The code location's jobs by their names in JOBS, each named and selecting assets as the location does."""
    return {
        job: dg.define_asset_job(
            names.named(job),
            selection=dg.AssetSelection.assets(*(names.key(asset) for asset in assets)),
            description=description,
        )
        for job, (assets, description) in JOBS.items()
    }
