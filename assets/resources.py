"""What every asset takes: the pipeline's loaded config and connections to the DuckDB warehouse it names."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import dagster as dg
import duckdb

from krnn_core.config import PipelineConfig
from krnn_core.signals.read_snapshot import open_snapshot, publish_snapshot, snapshot_path
from krnn_core.warehouse import connect


class PipelineResource:
    """The config the code location loaded once, and connections to the DuckDB file it names."""

    def __init__(self, config: PipelineConfig) -> None:
        self.config = config

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


# how assets, checks and sensors ask for it: Dagster hands them the object the code location built
Pipeline = dg.ResourceParam[PipelineResource]
