"""The one resource every asset uses: the pipeline's config and its DuckDB warehouse."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import dagster as dg
import duckdb

from krnn_core.signals.read_snapshot import open_snapshot, publish_snapshot, snapshot_path
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
        """The warehouse's one writer connection; on success the served tables are republished for readers."""
        path = self.config.duckdb_path
        with connect(path) as con:  # other steps and runs wait until this block ends
            yield con
            if publish:
                publish_snapshot(con, snapshot_path(path))

    def reader(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        """A read-only connection to the warehouse itself, for what the snapshot does not serve: waits for a writer."""
        return connect(self.config.duckdb_path, read_only=True)

    def snapshot(self) -> duckdb.DuckDBPyConnection:
        """A read-only connection to the served tables' last published snapshot: it never waits."""
        return open_snapshot(self.config.duckdb_path)
