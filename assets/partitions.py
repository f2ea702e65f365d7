"""The trading days a run of a daily-partitioned asset or check covers, how such an asset is declared, and how a
check's verdict reaches each of its days."""

import datetime as dt
import inspect
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import dagster as dg
import pandas as pd
from dagster._core.definitions.asset_checks.asset_check_evaluation import AssetCheckEvaluationTargetMaterializationData
from dagster._core.events import DagsterEvent, DagsterEventBatchMetadata

from assets.resources import Pipeline
from krnn_core.data import qlib_store

_DAYS_LISTED = 5  # failed days whose problems a check's metadata quotes; `failed_days` counts them all

# Dagster's partition panel calls these partitions "Daily ... End offsetted by 1 partition": say what they are
TRADING_DAYS_NOTE = (
    "Partitioned by trading day: weekdays less the exchange's holidays. Dagster's partition panel says \"Daily ... "
    "End offsetted by 1 partition\": a day's partition exists from its start, so the 18:00 schedule can run it."
)


def trading_day_asset(
    fn: Callable, trading_days: dg.TimeWindowPartitionsDefinition, **asset_kwargs
) -> dg.AssetsDefinition:
    """`fn` as an asset partitioned by trading day, a backfill range run as one pass, described as such."""
    notes = [inspect.cleandoc(fn.__doc__), TRADING_DAYS_NOTE]
    if trading_days.end is not None:  # the UI shows no freshness at all then: say why
        last_day = (trading_days.end - dt.timedelta(days=1)).date()  # the partitions' end is exclusive
        notes.append(
            f"A finished market: its data ends on {last_day} (the config's end_time), a snapshot that gains no day. No "
            "partition comes after it, the daily schedule starts off, and there is no freshness check: no day is late."
        )
    with _stable_enough_dagster_apis():
        return dg.asset(
            partitions_def=trading_days,
            backfill_policy=dg.BackfillPolicy.single_run(),
            description="\n\n".join(notes),
            **asset_kwargs,
        )(fn)


def trading_day_check(
    fn: Callable, trading_days: dg.TimeWindowPartitionsDefinition, **check_kwargs
) -> dg.AssetChecksDefinition:
    """`fn` as a check of each trading day's partition of its asset."""
    with _stable_enough_dagster_apis():
        return dg.asset_check(partitions_def=trading_days, **check_kwargs)(fn)


@contextmanager
def _stable_enough_dagster_apis() -> Iterator[None]:
    """Dagster's notices that the two APIs these declarations use may still change, silenced where they are used."""
    # Partitioned checks (preview) and single-run backfills (beta) are the design: a day's checks and a backfill
    # range in one pass. Their notices tell an operator nothing to do; an upgrade is checked by the tests.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*backfill_policy")
        warnings.filterwarnings("ignore", category=dg.PreviewWarning, message=".*partitions_def on an AssetCheckSpec")
        yield


def partition_days(
    context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext,
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last trading day of the partitions this run materializes (one, or a backfill range)."""
    keys = context.partition_key_range
    return pd.Timestamp(keys.start), pd.Timestamp(keys.end)


def daily_check_result(
    context: dg.AssetCheckExecutionContext,
    pipeline: Pipeline,
    problems_by_day: Mapping[pd.Timestamp, list[str]],
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
    **metadata: float | int | str,
) -> dg.AssetCheckResult:
    """The check's result over the days of its run; in a range run, each day's own evaluation is logged too.

    Dagster records a partitioned check against a partition only when its run has a single partition key: the
    result of a range run would record no partition, and the UI would then call every day of it skipped.
    """
    sessions = qlib_store.read_calendar(pipeline.config.qlib_init.provider_uri)
    problems = {key: _day_problems(pd.Timestamp(key), problems_by_day, sessions) for key in context.partition_keys}
    if not context.has_partition_key:
        _log_each_day(context, problems, severity)
    return dg.AssetCheckResult(
        passed=not any(problems.values()), severity=severity, metadata={**_verdict(problems), **metadata}
    )


def _day_problems(
    day: pd.Timestamp, problems_by_day: Mapping[pd.Timestamp, list[str]], sessions: pd.DatetimeIndex
) -> list[str]:
    """A day's problems; a weekday the refreshed calendar skips is an exchange holiday, with nothing to check."""
    if day in problems_by_day:
        return problems_by_day[day]
    # partitions built before a source's first refresh know no holidays yet, so a backfill range holds them
    if len(sessions) and day < sessions[-1] and day not in sessions:
        return []
    return ["nothing to check: no data stored for the day"]


def _log_each_day(
    context: dg.AssetCheckExecutionContext, problems: Mapping[str, list[str]], severity: dg.AssetCheckSeverity
) -> None:
    """One evaluation per partition of a range run, against that partition's latest materialization.

    The evaluations go out as one event batch, which the project's event log stores in one transaction
    (krnn_signals/event_log.py): one by one, a range of years costs ~10 ms a day per check. They go
    straight to the instance, as `log_event` would, but not into the step's own result events.
    """
    spec = context.check_specs[0]
    targets = _latest_materializations(context.instance, spec.asset_key, list(problems))
    step = context.op_execution_context.get_step_execution_context()
    batch, last = str(uuid.uuid4()), len(problems) - 1
    for i, (key, found) in enumerate(problems.items()):
        evaluation = dg.AssetCheckEvaluation(
            asset_key=spec.asset_key,
            check_name=spec.name,
            passed=not found,
            metadata=_verdict({key: found}),
            target_materialization_data=targets.get(key),
            severity=severity,
            blocking=spec.blocking,
            partition=key,
        )
        verdict = "passed" if evaluation.passed else "did not pass"
        DagsterEvent.from_step(
            dg.DagsterEventType.ASSET_CHECK_EVALUATION,
            step,
            evaluation,
            f"Asset check '{spec.name}' on '{spec.asset_key.to_user_string()}' {verdict} for {key}.",
            DagsterEventBatchMetadata(batch, i == last),
        )


def _latest_materializations(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, keys: list[str]
) -> dict[str, AssetCheckEvaluationTargetMaterializationData]:
    """The latest materialization of each partition: a check evaluation targeting it is the partition's current one."""
    materialization = dg.DagsterEventType.ASSET_MATERIALIZATION
    latest = instance.get_latest_storage_id_by_partition(asset_key, materialization, set(keys))
    # the run and time of each from the event log's index columns: fetching the records would read back
    # every day's whole event, 0.2-0.3 s a check for five years (SQLite, PostgreSQL and in-memory storages
    # all keep these tables)
    import sqlalchemy as sa  # imported by the instance's storage already; not by every import of the assets
    from dagster._core.storage.event_log.schema import SqlEventLogStorageTable as events

    query = sa.select(events.c.id, events.c.run_id, events.c.timestamp).where(events.c.id.in_(list(latest.values())))
    with instance.event_log_storage.index_connection() as conn:
        stored = {storage_id: (run_id, timestamp) for storage_id, run_id, timestamp in conn.execute(query)}
    return {
        key: AssetCheckEvaluationTargetMaterializationData(
            run_id=stored[storage_id][0],
            storage_id=storage_id,
            timestamp=stored[storage_id][1].replace(tzinfo=dt.UTC).timestamp(),  # stored as naive UTC
        )
        for key, storage_id in latest.items()
    }


def _verdict(problems: Mapping[str, list[str]]) -> dict[str, str | int]:
    """How many days failed, and the problems of the first of them."""
    failed = [key for key, found in problems.items() if found]
    quoted = "; ".join(f"{key}: {problem}" for key in failed[:_DAYS_LISTED] for problem in problems[key])
    more = f"; and {len(failed) - _DAYS_LISTED} more days" if len(failed) > _DAYS_LISTED else ""
    return {"failed_days": len(failed), "problems": quoted + more or "none"}
