"""Names of warehouse tables that light readers query too: the CLI reads the signals without importing torch."""

SIGNALS_TABLE = "signals"
MODEL_VERSIONS_TABLE = "model_versions"
SEARCH_TRIALS_TABLE = "model_search_trials"
