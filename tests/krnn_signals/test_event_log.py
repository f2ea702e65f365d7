"""A range run on the project's instance: every partition's events recorded, in a handful of transactions."""

import os
import shutil
import warnings

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster._core.storage.event_log.base import PartitionKeyFilter
from dagster._core.storage.event_log.schema import AssetEventTagsTable, SqlEventLogStorageTable

from assets.partitions import _log_each_day
from krnn_signals.event_log import BATCH_SIZE_ENV, BatchedSqliteEventLogStorage
from tests.fixtures import REPO_ROOT

DAYS = dg.DailyPartitionsDefinition(start_date="2023-01-01", end_date="2023-11-01")  # 304 partitions
ERROR = dg.AssetCheckSeverity.ERROR
RANGE = {"dagster/asset_partition_range_start": "2023-01-01", "dagster/asset_partition_range_end": "2023-10-31"}


def _days(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"days": len(context.partition_keys)})


with warnings.catch_warnings():  # single-run backfills are beta: the pipeline's own assets silence it the same way
    warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*backfill_policy")
    daily = dg.asset(name="daily", partitions_def=DAYS, backfill_policy=dg.BackfillPolicy.single_run())(_days)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning, message=".*partitions_def on an AssetCheckSpec")

    @dg.asset_check(asset=daily, partitions_def=DAYS)
    def daily_is_even(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        """Fails on the 15th of each month: each day's verdict logged as a range run's checks log theirs."""
        _log_each_day(context, {key: ["odd"] if key.endswith("-15") else [] for key in context.partition_keys}, ERROR)
        return dg.AssetCheckResult(passed=False)


@pytest.fixture
def instance(tmp_path, monkeypatch):
    """An instance configured by the project's dagster.yaml, in tmp_path."""
    shutil.copy(REPO_ROOT / "dagster_home" / "dagster.yaml", tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setenv(BATCH_SIZE_ENV, "1000")  # what the storage sets, undone after the test
    with dg.DagsterInstance.get() as instance:
        yield instance


def test_a_range_run_records_every_partition_in_a_few_transactions(instance, monkeypatch):
    storage = instance.event_log_storage
    assert isinstance(storage, BatchedSqliteEventLogStorage)
    opened = []
    connect = storage._connect
    monkeypatch.setattr(storage, "_connect", lambda shard: opened.append(shard) or connect(shard))

    result = dg.materialize([daily], instance=instance, tags=RANGE)

    assert result.success
    assert storage.get_materialized_partitions(daily.key) == set(DAYS.get_partition_keys())
    assert instance.get_latest_materialization_event(daily.key).dagster_event.partition == "2023-10-31"
    planned = instance.get_records_for_run(result.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
    assert len(planned.records) == 304
    assert len(opened) < 60  # one or two per event without batches: over 1,200


def test_each_indexed_tag_points_at_the_event_it_came_from(instance):
    dg.materialize([daily], instance=instance, tags=RANGE)

    events = SqlEventLogStorageTable
    with instance.event_log_storage.index_connection() as conn:
        tags = conn.execute(sa.select(AssetEventTagsTable)).mappings().all()
        times = dict(conn.execute(sa.select(events.c.id, events.c.timestamp)).all())
        partitions = dict(conn.execute(sa.select(events.c.id, events.c.partition)).all())
    data_versions = [tag for tag in tags if tag["key"] == "dagster/data_version"]
    assert len(data_versions) == 304
    # each event of the range has its own time: a tag on another event's id would carry another time
    assert all(tag["event_timestamp"] == times[tag["event_id"]] for tag in tags)
    assert {partitions[tag["event_id"]] for tag in data_versions} == set(DAYS.get_partition_keys())


def test_the_storage_turns_dagster_s_batching_on(tmp_path, monkeypatch):
    monkeypatch.setenv(BATCH_SIZE_ENV, "0")  # recorded, so the test leaves the environment as it found it
    monkeypatch.delenv(BATCH_SIZE_ENV)
    BatchedSqliteEventLogStorage(str(tmp_path))
    assert int(os.environ[BATCH_SIZE_ENV]) > 0


def test_a_range_run_s_check_verdicts_are_stored_per_day_in_a_few_transactions(instance, monkeypatch):
    storage = instance.event_log_storage
    opened = []
    connect = storage._connect
    monkeypatch.setattr(storage, "_connect", lambda shard: opened.append(shard) or connect(shard))

    dg.materialize([daily, daily_is_even], instance=instance, tags=RANGE, raise_on_error=False)

    key = daily_is_even.check_key
    state = storage.get_asset_check_state([(key, DAYS)])[key]
    by_status = {
        status.value: set(subset.subset_value.get_partition_keys()) for status, subset in state.subsets.items()
    }
    fifteenths = {day for day in DAYS.get_partition_keys() if day.endswith("-15")}
    assert by_status["FAILED"] == fifteenths and len(fifteenths) == 10
    assert by_status["SUCCEEDED"] == set(DAYS.get_partition_keys()) - fifteenths
    verdict = storage.get_asset_check_execution_history(
        key, limit=1, partition_filter=PartitionKeyFilter(key="2023-03-15")
    )
    assert verdict[0].event.dagster_event.asset_check_evaluation_data.metadata["problems"].value == "2023-03-15: odd"
    assert len(opened) < 80  # one by one: three connections per verdict, over 900


def test_the_check_executions_stored_are_those_dagster_s_own_storage_stores(instance, tmp_path):
    dg.materialize([daily, daily_is_even], instance=instance, tags=RANGE, raise_on_error=False)
    (tmp_path / "dagster_s_own").mkdir()
    with dg.DagsterInstance.local_temp(str(tmp_path / "dagster_s_own")) as reference:
        assert type(reference.event_log_storage) is not BatchedSqliteEventLogStorage
        dg.materialize([daily, daily_is_even], instance=reference, tags=RANGE, raise_on_error=False)

        ours, dagster_s = _check_executions(instance), _check_executions(reference)

    assert ours == dagster_s
    assert len(ours) == 305  # a verdict per day and the range's own, each on the materialization of its day
    assert ours[("2023-03-15", "FAILED")]["metadata"]["problems"].value == "2023-03-15: odd"
    assert ours[("2023-03-15", "FAILED")]["target_day"] == "2023-03-15"
    assert all(row["target_is_that_event"] for key, row in ours.items() if key[0])


def _check_executions(instance: dg.DagsterInstance) -> dict[tuple, dict]:
    """Each row of the check-executions table, without the ids and times that differ between two runs."""
    from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable
    from dagster_shared.serdes import deserialize_value

    events = SqlEventLogStorageTable
    with instance.event_log_storage.index_connection() as conn:
        rows = conn.execute(AssetCheckExecutionsTable.select()).mappings().all()
        stored = dict(conn.execute(sa.select(events.c.id, events.c.event)).all())
        partitions = dict(conn.execute(sa.select(events.c.id, events.c.partition)).all())
    executions = {}
    for row in rows:
        evaluation = deserialize_value(row["evaluation_event"]).dagster_event.asset_check_evaluation_data
        executions[(row["partition"], row["execution_status"])] = {
            **{
                name: getattr(evaluation, name) for name in ("check_name", "passed", "metadata", "severity", "blocking")
            },
            "is_the_stored_event": stored[row["evaluation_event_storage_id"]] == row["evaluation_event"],
            "target_day": partitions.get(row["materialization_event_storage_id"]),
            "target_is_that_event": _is_the_event(evaluation.target_materialization_data, stored),
        }
    return executions


def _is_the_event(target, stored: dict[int, str]) -> bool | None:
    """Whether a check's target materialization names the run and time of the event stored under its id."""
    from dagster_shared.serdes import deserialize_value

    if target is None:
        return None
    event = deserialize_value(stored[target.storage_id])
    return target.run_id == event.run_id and abs(target.timestamp - event.timestamp) < 1e-5
