"""Stage 3: a KRNN model version per retraining period."""

import dagster as dg
import pandas as pd

from assets.names import LocationNames
from assets.placement import ON_GPU_NODE
from assets.resources import Pipeline
from krnn_core.config import segments
from krnn_core.data import qlib_store

# the model reads a rolling window of history that ends before its period (see rolling_windows);
# Dagster's time-window mappings cannot say "N trading days before" across partition definitions
_HISTORY = dg.AllPartitionMapping()


def krnn_model(context: dg.AssetExecutionContext, pipeline: Pipeline) -> dg.MaterializeResult:
    """A KRNN model version trained on the labels that matured before its retraining period starts."""
    # torch (1-3 s to import) only in the runs that train, not in every process that loads the code location
    from krnn_core.model.retraining import load_training_data, rolling_windows, scratch_folder, train_model_version
    from krnn_core.model.versions import record_model_version

    config = pipeline.config
    calendar = qlib_store.read_calendar(config.qlib_init.provider_uri, future=True)
    windows = rolling_windows(calendar, pd.Timestamp(context.partition_key), segments(config), config.rolling.rtype)
    context.log.info(f"training windows {windows.as_dict()}")
    kwargs = config.task.model.kwargs.model_dump()
    # the warehouse is held only to read and to record: other runs write between (training takes minutes)
    with scratch_folder(config.model_dir) as scratch:
        with pipeline.reader() as con:
            train, valid = load_training_data(con, windows, scratch)
        row = train_model_version(train, valid, config.model_dir, windows, kwargs, log=context.log.info)
    with pipeline.duckdb() as con:
        record_model_version(con, row)
    return dg.MaterializeResult(metadata=_metadata(row))


def build_krnn_model(retraining_periods: dg.PartitionsDefinition, names: LocationNames) -> dg.AssetsDefinition:
    """The model asset over the code location's retraining periods."""
    return dg.asset(
        key=names.key("krnn_model"),
        partitions_def=retraining_periods,
        deps=[
            dg.AssetDep(names.key("alpha360_features"), partition_mapping=_HISTORY),
            dg.AssetDep(names.key("alpha360_labels"), partition_mapping=_HISTORY),
        ],
        pool="gpu",  # every market's: the machine's one device
        op_tags=ON_GPU_NODE,
        kinds={"pytorch"},
        group_name=names.named("model"),
    )(krnn_model)


def _metadata(row: dict) -> dict:
    """What a reviewer of a model version looks at first, and its loss curve."""
    history = pd.read_json(pd.io.common.StringIO(row["history_json"]))
    curve = dg.TableMetadataValue(
        records=[dg.TableRecord({k: float(v) for k, v in epoch.items()}) for epoch in history.to_dict("records")],
        schema=dg.TableSchema(columns=[dg.TableColumn(name, "float") for name in history.columns]),
    )
    keys = ("model_version", "train_start", "train_end", "valid_start", "valid_end", "device", "sha256")
    return {key: str(row[key]) for key in keys} | {
        "best_epoch": int(row["best_epoch"]),
        "valid_loss": float(row["valid_loss"]),
        "valid_ic": float(row["valid_ic"]),
        "duration_s": float(row["duration_s"]),
        "loss_curve": curve,
    }
