"""The project instance's event log: Dagster's SQLite storage, which writes a batch of asset events in one go.

A run over a range of N trading days logs, per asset, N planned events when it is created and N
materializations when its step ends, and each partitioned check N evaluations (assets/partitions.py).
Dagster's SQLite storage writes each event in its own transactions (the run's file, then the cross-run
index), each on a new connection: about 10 ms an event on this project's machines, 80 of the 90 s a
backfill of the CSI300 snapshot took. Dagster hands such a
range's events over as one batch when DAGSTER_EVENT_BATCH_SIZE is set, but only its PostgreSQL storage
writes a batch at once; the SQLite one stores the events one by one. This storage writes a batch's
asset events and check evaluations in one transaction per file (dagster-postgres writes asset events so,
and falls back to one by one for a batch of check evaluations). Every process that logs events
(run workers, the daemon, the webserver, the CLI) loads it from dagster.yaml, so it also turns the
batching on there.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext

from dagster import DagsterEventType, Field, StringSource
from dagster._core.events import ASSET_EVENTS
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log import SqlEventLogStorageTable, SqliteEventLogStorage
from sqlalchemy.engine import Connection

BATCH_SIZE_ENV = "DAGSTER_EVENT_BATCH_SIZE"  # read by Dagster at each event
BATCH_SIZE = 1000  # events per transaction: a range of years is a few batches


class BatchedSqliteEventLogStorage(SqliteEventLogStorage):
    """SqliteEventLogStorage that writes a batch's asset events and check evaluations in one transaction per file."""

    def __init__(self, base_dir: str | None = None, inst_data=None) -> None:
        self._batch_index = threading.local()  # the index transaction a batch holds open, per thread
        self._has_check_table = False
        # Dagster's own place for a local instance's event logs: the runs logged before stay readable
        super().__init__(base_dir or os.path.join(os.environ["DAGSTER_HOME"], "history", "runs"), inst_data)
        os.environ.setdefault(BATCH_SIZE_ENV, str(BATCH_SIZE))

    @classmethod
    def config_type(cls) -> dict:
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data, config_value: dict) -> BatchedSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    @property
    def supports_asset_checks(self) -> bool:
        """Whether the index has the check-executions table; once it has, it keeps it."""
        # Dagster asks at every check event, with a new engine and connection each time
        if not self._has_check_table:
            self._has_check_table = super().supports_asset_checks
        return self._has_check_table

    def index_connection(self) -> AbstractContextManager[Connection]:
        """The batch's open index transaction while a batch is stored, else a new connection."""
        held = getattr(self._batch_index, "conn", None)
        return nullcontext(held) if held is not None else super().index_connection()

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """The batch's asset events and check evaluations in two transactions (run file, index); the rest one by one."""
        batched = [event for event in events if _is_batched(event)]
        for run_id in dict.fromkeys(event.run_id for event in batched):
            self._store_batch([event for event in batched if event.run_id == run_id])
        for event in events:
            if not _is_batched(event):
                self.store_event(event)

    def _store_batch(self, events: list[EventLogEntry]) -> None:
        """What store_event does for each of these events of one run, in one transaction per file."""
        rows = [self._event_to_row(event) for event in events]  # each event serialized once for both files
        with self.run_connection(events[0].run_id) as conn:
            conn.execute(SqlEventLogStorageTable.insert(), rows)
        with self.index_transaction() as conn:
            inserted = SqlEventLogStorageTable.insert().returning(
                SqlEventLogStorageTable.c.id, sort_by_parameter_order=True
            )
            ids = dict(zip(map(id, events), (row.id for row in conn.execute(inserted, rows)), strict=True))
            assets = [event for event in events if _is_asset_event(event)]
            checks = [event for event in events if not _is_asset_event(event)]
            if assets:
                self._store_asset_event_tags(conn, assets, [ids[id(event)] for event in assets])
            # the asset's row keeps the last event of each kind: storing only those, in batch order,
            # leaves it as storing every event in turn would
            last = {(event.dagster_event.asset_key, event.dagster_event_type): event for event in assets}
            for event in sorted(last.values(), key=assets.index):
                self._store_asset_event(conn, event, ids[id(event)])
            self._batch_index.conn = conn  # Dagster's writes of check executions join this transaction
            try:
                for event in checks:
                    self.store_asset_check_event(event, ids[id(event)])
            finally:
                self._batch_index.conn = None


def _is_asset_event(event: EventLogEntry) -> bool:
    return event.is_dagster_event and event.dagster_event_type in ASSET_EVENTS


def _is_batched(event: EventLogEntry) -> bool:
    return _is_asset_event(event) or (
        event.is_dagster_event and event.dagster_event_type == DagsterEventType.ASSET_CHECK_EVALUATION
    )
