"""The one resource every asset uses: the pipeline's config and its DuckDB warehouse."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import duckdb

from krnn_core.read_snapshot import publish_snapshot, snapshot_path
from krnn_core.warehouse import connect
from krnn_signals.config import PipelineConfig, load_config


class PipelineResource(dg.ConfigurableResource):
    """Where the pipeline reads its config, and connections to the DuckDB file it names."""

    config_path: str

    @property
    def config(self) -> PipelineConfig:
        return load_config(self.config_path)

    @contextmanager
    def duckdb(self, publish: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection to the warehouse; on success the served tables are republished for readers."""
        path = self.config.duckdb_path
        con = connect(path)
        try:
            yield con
            if publish:
                publish_snapshot(con, snapshot_path(path))
        finally:
            con.close()
