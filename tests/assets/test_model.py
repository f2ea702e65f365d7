"""The model asset holds the DuckDB warehouse only to read its data and to record the version."""

from __future__ import annotations

import subprocess
import sys

import dagster as dg

from assets import model as model_asset
from assets.names import LocationNames
from assets.resources import PipelineResource
from krnn_core.config import load_config
from krnn_core.model import retraining
from krnn_signals.partitions import build_retraining_periods

# what a daily run does while a model trains: open the warehouse for writing, from another process
WRITER = "import duckdb, sys; duckdb.connect(sys.argv[1]).execute('SELECT count(*) FROM model_versions').fetchall()"


def test_another_process_can_write_the_warehouse_while_the_model_trains(pipeline, test_config_path, monkeypatch):
    real_training, writers = retraining.train_model_version, []

    def training_with_a_concurrent_writer(*args, **kwargs):
        writers.append(subprocess.run([sys.executable, "-c", WRITER, str(pipeline.duckdb_path)], capture_output=True))
        return real_training(*args, **kwargs)

    # the asset imports it from retraining when it runs (torch stays out of the code location's import)
    monkeypatch.setattr(retraining, "train_model_version", training_with_a_concurrent_writer)
    config = load_config(test_config_path)
    retraining_periods, names = build_retraining_periods(config), LocationNames.of(config)
    period = retraining_periods.get_first_partition_key()
    resources = {"pipeline": PipelineResource(config)}
    result = dg.materialize(
        [model_asset.build_krnn_model(retraining_periods, names)], partition_key=period, resources=resources
    )
    assert result.success
    assert [writer.returncode for writer in writers] == [0], writers[0].stderr.decode()[-500:]
    metadata = result.asset_materializations_for_node(names.step("krnn_model"))[0].metadata
    assert metadata["model_version"].value.startswith("krnn-")
