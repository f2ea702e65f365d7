"""The project instance's event log: Dagster's SQLite storage, which writes a batch of asset events in one go.

A run over a range of N trading days logs, per asset, N planned events when it is created and N
materializations when its step ends, and each partitioned check N evaluations (assets/partitions.py).
Dagster's SQLite storage writes each event in its own transactions (the run's file, then the cross-run
index), each on a new connection: about 10 ms an event on this project's machines, 80 of the 90 s a
backfill of the CSI300 snapshot took. Dagster hands such a range's events over as one batch when
DAGSTER_EVENT_BATCH_SIZE is set, but only its PostgreSQL storage writes a batch at once; the SQLite one
stores the events one by one. This storage writes a batch's asset events and day verdicts (a run's
check evaluations of one partition) in one transaction per file (dagster-postgres writes asset events
so, and falls back to one by one for a batch of check evaluations): the verdicts go onto their planned
check-execution rows in one executemany update, where Dagster runs an update per verdict and serializes
each event twice. A range run's planned checks get their row per day with the event serialized once,
not once per row (4 checks x 1,302 days took 1.1 s of the run's start). Every process that logs events
(run workers, the daemon, the webserver, the CLI) loads it from dagster.yaml, so it also turns the
batching on there.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from dagster import DagsterEventType, DagsterInvariantViolationError, Field, StringSource
from dagster._core.events import ASSET_EVENTS
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log import SqlEventLogStorageTable, SqliteEventLogStorage
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable
from dagster_shared.serdes import serialize_value
from sqlalchemy.engine import Connection

BATCH_SIZE_ENV = "DAGSTER_EVENT_BATCH_SIZE"  # read by Dagster at each event
BATCH_SIZE = 5000  # events per transaction: a range of 16 years of one asset is one batch


class BatchedSqliteEventLogStorage(SqliteEventLogStorage):
    """SqliteEventLogStorage that writes a batch's asset events and check evaluations in one transaction per file."""

    def __init__(self, base_dir: str | None = None, inst_data=None) -> None:
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

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """The batch's asset events and day verdicts in two transactions (run file, index); the rest one by one."""
        batched = [event for event in events if _is_batched(event)]
        for run_id in dict.fromkeys(event.run_id for event in batched):
            self._store_batch([event for event in batched if event.run_id == run_id])
        for event in events:
            if not _is_batched(event):
                self.store_event(event)

    def _store_batch(self, events: list[EventLogEntry]) -> None:
        """What store_event does for each of these events of one run, in one transaction per file."""
        rows = [self._event_to_row(event) for event in events]  # each event serialized once for every table
        with self.run_connection(events[0].run_id) as conn:
            _insert_events(conn, rows)
        with self.index_transaction() as conn:
            ids = dict(zip(map(id, events), _insert_events(conn, rows), strict=True))
            assets = [event for event in events if _is_asset_event(event)]
            checks = [event for event in events if not _is_asset_event(event)]
            if assets:
                self._store_asset_event_tags(conn, assets, [ids[id(event)] for event in assets])
            # the asset's row keeps the last event of each kind: storing only those, in batch order,
            # leaves it as storing every event in turn would
            last = {(event.dagster_event.asset_key, event.dagster_event_type): event for event in assets}
            for event in sorted(last.values(), key=assets.index):
                self._store_asset_event(conn, event, ids[id(event)])
            serialized = {id(event): row["event"] for event, row in zip(events, rows, strict=True)}
            self._store_check_verdicts(conn, checks, ids, serialized)

    def _store_check_verdicts(
        self, conn: Connection, events: list[EventLogEntry], ids: dict[int, int], serialized: dict[int, str]
    ) -> None:
        """Per-partition check evaluations of a run onto their planned rows, as Dagster's own
        _update_asset_check_evaluation does one by one: an update per planned row, an insert where none is."""
        if not events:
            return
        verdicts = [self._verdict_row(event, ids[id(event)], serialized[id(event)]) for event in events]
        table = AssetCheckExecutionsTable
        planned = Counter(
            tuple(row)
            for row in conn.execute(
                sa.select(table.c.asset_key, table.c.check_name, table.c.run_id, table.c.partition).where(
                    table.c.run_id.in_({row["run_id"] for row in verdicts}),
                    table.c.check_name.in_({row["check_name"] for row in verdicts}),
                )
            )
        )
        if duplicated := [_key(row) for row in verdicts if planned[_key(row)] > 1]:
            raise DagsterInvariantViolationError(f"check evaluations matching two planned rows: {duplicated[:3]}")
        # a column's own name in an executemany update is its new value: the row's key goes under b_ names
        updates = [_renamed_key(row) for row in verdicts if planned[_key(row)]]
        if updates:
            matches = [table.c[name] == sa.bindparam(f"b_{name}") for name in _ROW_KEY]
            conn.execute(table.update().where(*matches), updates)
        if inserts := [row for row in verdicts if not planned[_key(row)]]:
            conn.execute(table.insert(), inserts)

    def _verdict_row(self, event: EventLogEntry, event_id: int, serialized: str) -> dict[str, Any]:
        """The check-executions row of an evaluation: the values Dagster's _update_asset_check_evaluation writes."""
        evaluation = event.dagster_event.asset_check_evaluation_data
        status = _SUCCEEDED if evaluation.passed else _FAILED
        target = evaluation.target_materialization_data
        return {
            "asset_key": evaluation.asset_key.to_string(),
            "check_name": evaluation.check_name,
            "run_id": event.run_id,
            "partition": evaluation.partition,
            "execution_status": status.value,
            "evaluation_event": serialized,
            "evaluation_event_timestamp": self._event_insert_timestamp(event),
            "evaluation_event_storage_id": event_id,
            "materialization_event_storage_id": target.storage_id if target else None,
        }

    def _store_asset_check_evaluation_planned(self, event: EventLogEntry, event_id: int | None) -> None:
        """Dagster's planned rows, one per partition of the run, with the event serialized once rather than per row."""
        planned = event.dagster_event.event_specific_data
        partitions = planned.partitions_subset.get_partition_keys() if planned.partitions_subset else [None]
        row = {
            "asset_key": planned.asset_key.to_string(),
            "check_name": planned.check_name,
            "run_id": event.run_id,
            "execution_status": AssetCheckExecutionRecordStatus.PLANNED.value,
            "evaluation_event": serialize_value(event),
            "evaluation_event_timestamp": self._event_insert_timestamp(event),
            "evaluation_event_storage_id": event_id,
        }
        with self.index_connection() as conn:
            _insert_rows(conn, AssetCheckExecutionsTable, [row | {"partition": key} for key in partitions])


def _insert_events(conn: Connection, rows: list[dict[str, Any]]) -> range:
    """The event rows inserted within the connection's transaction; their ids, in order."""
    _insert_rows(conn, SqlEventLogStorageTable, rows)
    # the transaction holds the file's write lock from the first row to the last, and a row inserted
    # without an id gets one more than the table's largest: the rows have the ids up to the last one
    last = conn.exec_driver_sql("SELECT last_insert_rowid()").scalar_one()
    return range(last - len(rows) + 1, last + 1)


def _insert_rows(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Rows of the same columns inserted by the driver's own executemany, each value stored as SQLAlchemy stores it.

    SQLAlchemy's executemany spends twice SQLite's own time on its parameters (0.2 of 0.3 s for 7,812 events).
    """
    columns = list(rows[0])
    processors = [table.c[name].type.dialect_impl(conn.dialect).bind_processor(conn.dialect) for name in columns]
    converted = [(i, convert) for i, convert in enumerate(processors) if convert]  # the timestamps
    values = []
    for row in rows:
        value = list(row.values())
        for i, convert in converted:
            value[i] = convert(value[i])
        values.append(tuple(value))
    names, marks = ", ".join(columns), ", ".join("?" * len(columns))
    conn.exec_driver_sql(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", values)


_ROW_KEY = ("asset_key", "check_name", "run_id", "partition")  # one planned row per check, run and partition
_SUCCEEDED, _FAILED = AssetCheckExecutionRecordStatus.SUCCEEDED, AssetCheckExecutionRecordStatus.FAILED


def _key(row: dict[str, Any]) -> tuple:
    return tuple(row[name] for name in _ROW_KEY)


def _renamed_key(row: dict[str, Any]) -> dict[str, Any]:
    return {(f"b_{name}" if name in _ROW_KEY else name): value for name, value in row.items()}


def _is_asset_event(event: EventLogEntry) -> bool:
    return event.is_dagster_event and event.dagster_event_type in ASSET_EVENTS


def _is_batched(event: EventLogEntry) -> bool:
    """An asset event, or a run's check evaluation of one partition (a day verdict); Dagster's own path stores
    the others."""
    return _is_asset_event(event) or (
        event.is_dagster_event
        and event.dagster_event_type == DagsterEventType.ASSET_CHECK_EVALUATION
        and bool(event.run_id)
        and event.dagster_event.asset_check_evaluation_data.partition is not None
    )
