"""Stage 3: a KRNN model version per retraining period, one model or an ensemble of seeds, and the model search.

`krnn_model` is one asset per retraining period whose run trains each seed as its own step: the steps
are in the pool `gpu`, so the multiprocess executor trains as many seeds at once as that pool's limit
allows, and the run's timeline shows them side by side. The last step evaluates the ensemble on valid
and records the members and the ensemble in `model_versions` in one transaction.

torch (1-3 s to import) is imported only in the steps that train or score, not in every process that
loads the code location: krnn_core.model's modules are imported inside the functions here.
"""

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import dagster as dg
import pandas as pd

from assets.names import LocationNames
from assets.placement import ON_CPU_NODE, ON_GPU_NODE
from assets.resources import Pipeline
from krnn_core.config import Ensemble, PipelineConfig, segments
from krnn_core.data import qlib_store
from krnn_core.model.ensemble import member_seeds

if TYPE_CHECKING:
    from krnn_core.model.retraining import ModelWindows

# the model reads a rolling window of history that ends before its period (see rolling_windows), and the
# newest search before it (chosen_kwargs); Dagster's partition mappings cannot say "the last one before"
_HISTORY = dg.AllPartitionMapping()
_HISTORY_DEPS = ("alpha360_features", "alpha360_labels")
SEARCH_ASSET = "krnn_model_search"


@dataclass(frozen=True)
class TrainingPlan:
    """What every seed of a period trains: its windows, the kwargs, and the search that chose them, if any."""

    windows: "ModelWindows"
    kwargs: dict
    search_period: str | None


def period_windows(config: PipelineConfig, partition_key: str) -> "ModelWindows":
    """The train and valid windows of the retraining period `partition_key`."""
    from krnn_core.model.retraining import rolling_windows

    calendar = qlib_store.read_calendar(config.qlib_init.provider_uri, future=True)
    return rolling_windows(calendar, pd.Timestamp(partition_key), segments(config), config.rolling.rtype)


@dg.op(ins={name: dg.In(dg.Nothing) for name in (*_HISTORY_DEPS, SEARCH_ASSET)}, tags=ON_CPU_NODE)
def training_plan(context: dg.OpExecutionContext, pipeline: Pipeline) -> TrainingPlan:
    """The period's windows and kwargs: those of the newest search before the period, else the config's."""
    from krnn_core.model.search import chosen_kwargs

    config = pipeline.config
    windows = period_windows(config, context.partition_key)
    with pipeline.reader() as con:
        chosen = chosen_kwargs(con, windows.period_start)
    kwargs, search_period = chosen or (config.task.model.kwargs.model_dump(), None)
    context.log.info(f"training windows {windows.as_dict()}, kwargs {kwargs}, chosen by search {search_period}")
    return TrainingPlan(windows, kwargs, search_period)


def _train_seed_op(index: int, count: int) -> dg.OpDefinition:
    """The step that trains member `index` of `count`, in the pool `gpu` (every market's: the machine's one device)."""

    @dg.op(name=f"train_seed_{index}", pool="gpu", tags={"kind": "pytorch", **ON_GPU_NODE})
    def train_seed(context: dg.OpExecutionContext, pipeline: Pipeline, plan: TrainingPlan) -> dict:
        """One seed's model trained on the period's windows and saved; its model_versions row."""
        from krnn_core.model.retraining import load_training_data, scratch_folder, train_model_version

        config = pipeline.config
        kwargs = {**plan.kwargs, "seed": member_seeds(plan.kwargs.get("seed"), count)[index]}
        with scratch_folder(config.model_dir) as scratch:
            # the warehouse is held only to read: other runs write between (training takes minutes)
            with pipeline.reader() as con:
                train, valid = load_training_data(con, plan.windows, scratch)
            return train_model_version(
                train, valid, config.model_dir, plan.windows, kwargs, context.log.info, plan.search_period
            )

    return train_seed


def _record_version_op(ensemble: Ensemble) -> dg.OpDefinition:
    """The step that records one model, or the members and their ensemble evaluated on valid."""

    @dg.op(name="record_version", ins={"members": dg.In(list)}, tags=ON_CPU_NODE)
    def record_version(pipeline: Pipeline, plan: TrainingPlan, members: list) -> dg.Output:
        """The served version recorded: the single model, or the members and the ensemble that combines them."""
        from krnn_core.model.retraining import ensemble_versions, load_valid_data, scratch_folder
        from krnn_core.model.versions import record_model_versions

        model_dir, rows = pipeline.config.model_dir, members
        if len(members) > 1:
            with scratch_folder(model_dir) as scratch:
                with pipeline.reader() as con:
                    valid = load_valid_data(con, plan.windows, scratch)
                rows = ensemble_versions(members, valid, model_dir, ensemble.combine)
        with pipeline.duckdb() as con:
            record_model_versions(con, rows)
        return dg.Output(None, metadata=_metadata(rows))

    return record_version


def build_krnn_model(
    retraining_periods: dg.PartitionsDefinition, names: LocationNames, ensemble: Ensemble
) -> dg.AssetsDefinition:
    """The model asset over the code location's retraining periods: `ensemble.seeds` seeds, then the version."""
    train_seeds = [_train_seed_op(index, ensemble.seeds) for index in range(ensemble.seeds)]
    record_version = _record_version_op(ensemble)

    def krnn_model(alpha360_features, alpha360_labels, krnn_model_search):
        """A KRNN model version (one seed, or an ensemble of seeds) trained on the labels that matured before its
        retraining period starts."""
        plan = training_plan(
            alpha360_features=alpha360_features, alpha360_labels=alpha360_labels, krnn_model_search=krnn_model_search
        )
        return record_version(plan, [train_seed(plan) for train_seed in train_seeds])

    ins = {
        name: dg.AssetIn(key=names.key(name), partition_mapping=_HISTORY, dagster_type=dg.Nothing)
        for name in (*_HISTORY_DEPS, SEARCH_ASSET)
    }
    return dg.graph_asset(
        key=names.key("krnn_model"),
        partitions_def=retraining_periods,
        ins=ins,
        kinds={"pytorch"},
        group_name=names.named("model"),
    )(krnn_model)


def krnn_model_search(context: dg.AssetExecutionContext, pipeline: Pipeline) -> dg.MaterializeResult:
    """Trials of KRNN kwargs on the period's train window, chosen on valid Rank IC; later models train the choice."""
    from krnn_core.model.retraining import load_training_data, scratch_folder
    from krnn_core.model.search import record_trials, run_search, sample_candidates

    config = pipeline.config
    windows = period_windows(config, context.partition_key)
    search = config.search
    base = config.task.model.kwargs.model_dump()
    candidates = sample_candidates(base, search.space.model_dump(), search.trials, search.seed)
    with scratch_folder(config.model_dir) as scratch:
        with pipeline.reader() as con:
            train, valid = load_training_data(con, windows, scratch)
        trials = run_search(train, valid, windows, candidates, log=context.log.info)
    with pipeline.duckdb() as con:
        record_trials(con, trials)
    return dg.MaterializeResult(metadata=_search_metadata(trials))


def build_krnn_model_search(retraining_periods: dg.PartitionsDefinition, names: LocationNames) -> dg.AssetsDefinition:
    """The search asset over the code location's retraining periods; only krnn_model_search_job runs it."""
    return dg.asset(
        key=names.key(SEARCH_ASSET),
        partitions_def=retraining_periods,
        deps=[dg.AssetDep(names.key(name), partition_mapping=_HISTORY) for name in _HISTORY_DEPS],
        pool="gpu",  # every market's: the machine's one device
        op_tags=ON_GPU_NODE,
        kinds={"pytorch"},
        group_name=names.named("model"),
    )(krnn_model_search)


def _metadata(rows: list[dict]) -> dict:
    """What a reviewer of a model version looks at first; for an ensemble its members and what it gains."""
    served = rows[-1]
    keys = ("model_version", "kind", "train_start", "train_end", "valid_start", "valid_end", "device", "sha256")
    metadata = {key: str(served[key]) for key in keys} | {
        "valid_ic": float(served["valid_ic"]),
        "valid_rank_ic": float(served["valid_rank_ic"]),
        "duration_s": float(served["duration_s"]),
        "search_period": str(served["search_period"] or "none"),
        "kwargs": dg.MetadataValue.json(json.loads(served["config_json"])),
    }
    if served["kind"] != "ensemble":
        return metadata | {"best_epoch": int(served["best_epoch"]), "loss_curve": _loss_curve(served)}
    from krnn_core.model.retraining import ensemble_gain

    return metadata | ensemble_gain(rows) | {"members": _table(rows[:-1], MEMBER_COLUMNS)}


def _loss_curve(row: dict) -> dg.TableMetadataValue:
    history = json.loads(row["history_json"])
    return _table(history, {name: "float" for name in history[0]})


MEMBER_COLUMNS = {"model_version": "string", "seed": "int", "best_epoch": "int", "valid_ic": "float"}
MEMBER_COLUMNS |= {"valid_rank_ic": "float", "duration_s": "float", "sha256": "string"}
TRIAL_COLUMNS = {"trial": "int", "chosen": "bool", "valid_rank_ic": "float", "valid_ic": "float"}
TRIAL_COLUMNS |= {"best_epoch": "int", "epochs": "int", "seconds": "float", "params_json": "string"}


def _search_metadata(trials: pd.DataFrame) -> dict:
    """The trials as a table, best valid Rank IC first, and the choice against the config's own kwargs (trial 0)."""
    chosen = trials[trials["chosen"]].iloc[0]
    return {
        "trials": _table(trials.sort_values("valid_rank_ic", ascending=False).to_dict("records"), TRIAL_COLUMNS),
        "chosen_trial": int(chosen["trial"]),
        "chosen_valid_rank_ic": float(chosen["valid_rank_ic"]),
        "config_valid_rank_ic": float(trials["valid_rank_ic"].iloc[0]),
        "chosen_params": dg.MetadataValue.json(json.loads(chosen["params_json"])),
    }


def _table(records: list[dict], columns: dict[str, str]) -> dg.TableMetadataValue:
    """Records as a Dagster table of these columns and types (its cells must be plain Python values)."""
    cast = {"string": str, "int": int, "float": float, "bool": bool}
    return dg.TableMetadataValue(
        records=[dg.TableRecord({name: cast[kind](r[name]) for name, kind in columns.items()}) for r in records],
        schema=dg.TableSchema(columns=[dg.TableColumn(name, kind) for name, kind in columns.items()]),
    )
