"""An `alerts` table: what went wrong in the pipeline, for people and for paging tools to read."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from krnn_core.signals.read_snapshot import publish_for_readers
from krnn_core.warehouse import DuckLake, connect

SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    raised_at TIMESTAMP NOT NULL, source VARCHAR NOT NULL, run_id VARCHAR, job_name VARCHAR,
    partition VARCHAR, message VARCHAR NOT NULL
);
"""


def record_alert(warehouse: Path | DuckLake, alert: dict[str, str | None]) -> None:
    """Append one alert, waiting for a run that holds the DuckDB file's write lock to let go."""
    row = pd.DataFrame([{"raised_at": pd.Timestamp.now(tz="UTC").tz_localize(None)} | alert])
    with connect(warehouse) as con:
        con.execute(SCHEMA)
        con.register("alert_row", row)
        con.execute("INSERT INTO alerts BY NAME SELECT * FROM alert_row")
        publish_for_readers(con, warehouse)
