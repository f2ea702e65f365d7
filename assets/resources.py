"""What every asset takes: the pipeline's loaded config and connections to the warehouse it names."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import dagster as dg
import duckdb

from krnn_core.config import PipelineConfig, warehouse_location
from krnn_core.signals.read_snapshot import open_snapshot, publish_for_readers
from krnn_core.warehouse import connect


class PipelineResource:
    """The config the code location loaded once, and connections to the warehouse it names."""

    def __init__(self, config: PipelineConfig) -> None:
        self.config = config
        self.warehouse = warehouse_location(config)

    @contextmanager
    def duckdb(self, publish: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """A writer connection (the DuckDB file's only one); on success the served tables are republished."""
        with connect(self.warehouse) as con:  # on the DuckDB file, other steps and runs wait until this block ends
            yield con
            if publish:
                publish_for_readers(con, self.warehouse)

    def reader(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        """A read-only connection to the warehouse itself, for what the snapshot does not serve: waits for a writer."""
        return connect(self.warehouse, read_only=True)

    def snapshot(self) -> duckdb.DuckDBPyConnection:
        """A read-only connection to the served tables' last committed state: it never waits."""
        return open_snapshot(self.warehouse)


# how assets, checks and sensors ask for it: Dagster hands them the object the code location built
Pipeline = dg.ResourceParam[PipelineResource]
