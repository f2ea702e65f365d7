"""Jobs: what the schedule runs each trading day, and the stages people run on their own."""

import dagster as dg

# selections name asset keys: the assets are built with the code location's partitions
market_data_job = dg.define_asset_job(
    "market_data_job",
    selection=["qlib_market_data", "alpha360_features", "alpha360_labels"],
    description="Refresh the Qlib folder and store Alpha360 features and matured labels.",
)
daily_signals_job = dg.define_asset_job(
    "daily_signals_job",
    selection=["qlib_market_data", "alpha360_features", "alpha360_labels", "signals"],
    description="Everything a new trading day needs, ending with its signals.",
)
signals_job = dg.define_asset_job("signals_job", selection=["signals"])
krnn_model_job = dg.define_asset_job("krnn_model_job", selection=["krnn_model"])
krnn_model_search_job = dg.define_asset_job(
    "krnn_model_search_job",
    selection=["krnn_model_search", "krnn_model"],
    description="Search KRNN's kwargs on a retraining period's valid Rank IC, then train its model with the choice.",
)
reports_job = dg.define_asset_job("reports_job", selection=["ic_report", "backtest_report"])
