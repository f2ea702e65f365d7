"""The model asset: the warehouse held only to read and to record; ensembles of seeds; the model search."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import yaml

from assets import model as model_asset
from assets.names import LocationNames
from assets.resources import PipelineResource
from krnn_core.config import Ensemble, PipelineConfig, load_config
from krnn_core.features.alpha360 import ALPHA360_COLUMNS
from krnn_core.features.processors import cs_rank_norm
from krnn_core.features.store import read_features
from krnn_core.model import retraining
from krnn_core.model.ensemble import combine_scores
from krnn_core.model.versions import load_artifact
from krnn_core.reports.evaluation import daily_ic
from krnn_core.signals.queries import model_table
from krnn_core.signals.read_snapshot import open_snapshot
from krnn_core.signals.scoring import score_days
from krnn_core.warehouse import connect
from krnn_signals.cli import main
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
        [model_asset.build_krnn_model(retraining_periods, names, Ensemble())], partition_key=period, resources=resources
    )
    assert result.success
    assert [writer.returncode for writer in writers] == [0], writers[0].stderr.decode()[-500:]
    metadata = result.asset_materializations_for_node(names.step("krnn_model"))[0].metadata
    assert metadata["model_version"].value.startswith("krnn-")


def _variant(pipeline, test_config_path, tmp_path, **changes) -> PipelineConfig:
    """The test pipeline's config on a copy of its warehouse, 1 epoch: the versions a test trains stay in tmp_path."""
    shutil.copy(pipeline.duckdb_path, tmp_path / "w.duckdb")
    raw = yaml.safe_load(test_config_path.read_text())
    raw |= {"duckdb_path": str(tmp_path / "w.duckdb"), "model_dir": str(tmp_path / "models"), **changes}
    raw["qlib_init"]["provider_uri"] = str(pipeline.qlib_init.provider_uri)
    raw["task"]["model"]["kwargs"] |= {"n_epochs": 1}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    return load_config(tmp_path / "config.yaml")


def _materialize(config: PipelineConfig, *builders) -> dg.ExecuteInProcessResult:
    periods, names = build_retraining_periods(config), LocationNames.of(config)
    assets = [build(periods, names) for build in builders]
    resources = {"pipeline": PipelineResource(config)}
    result = dg.materialize(assets, partition_key=periods.get_first_partition_key(), resources=resources)
    assert result.success
    return result


@pytest.fixture(scope="module")
def ensemble_run(pipeline, test_config_path, tmp_path_factory) -> tuple[PipelineConfig, dict]:
    """A period's model of two seeds, z-score combined, on a copy of the test warehouse; its config and metadata."""
    tmp_path = tmp_path_factory.mktemp("ensemble")
    config = _variant(pipeline, test_config_path, tmp_path, ensemble={"seeds": 2, "combine": "zscore"})
    result = _materialize(config, lambda periods, names: model_asset.build_krnn_model(periods, names, config.ensemble))
    recorded = result.asset_materializations_for_node(LocationNames.of(config).step("krnn_model"))[0].metadata
    return config, {key: value.value for key, value in recorded.items()}


def _members(metadata: dict) -> list[dict]:
    return [record.data for record in metadata["members"].records]


def _member_scores(config: PipelineConfig, members: list[dict], index: pd.MultiIndex, x: np.ndarray) -> pd.DataFrame:
    """Each member's scores of raw rows, through its own verified artifact."""
    artifacts = {
        m["model_version"]: load_artifact(config.model_dir / f"{m['model_version']}.pt", m["sha256"]) for m in members
    }
    return pd.DataFrame({version: model.score(x) for version, model in artifacts.items()}, index=index)


def test_an_ensemble_records_its_members_and_its_signals_name_it(ensemble_run):
    config, metadata = ensemble_run
    ensemble, members = metadata["model_version"], _members(metadata)
    assert metadata["kind"] == "ensemble" and ensemble.startswith("krnn-ens-")
    assert [m["seed"] for m in members] == [3, 4]  # the config's seed, then the next
    for metric in ("valid_ic", "valid_rank_ic"):
        mean = np.mean([m[metric] for m in members])
        assert metadata[f"{metric}_gain"] == pytest.approx(metadata[metric] - mean, abs=1e-12)

    with open_snapshot(config.duckdb_path) as con:
        listed = model_table(con)
    new = listed[listed["model_version"].isin([ensemble, *(m["model_version"] for m in members)])]
    assert new["kind"].tolist() == ["ensemble", "member", "member"]  # the ensemble first, then its members
    assert new["ensemble"].tolist()[1:] == [ensemble, ensemble]

    day = pd.Timestamp(config.task.dataset.segments.test[0])
    with connect(config.duckdb_path) as con:
        signals = score_days(con, day, day)
        stored = read_features(con, day, day)
    assert set(signals["model_version"]) == {ensemble}
    traded = np.isfinite(stored.x[:, ALPHA360_COLUMNS.index("CLOSE0")])
    scores = _member_scores(config, members, stored.index[traded], stored.x[traded])
    expected = combine_scores(scores, "zscore").droplevel("datetime")
    served = signals.set_index("instrument")["score"]
    np.testing.assert_allclose(served.sort_index(), expected.sort_index().to_numpy(), rtol=1e-6)


def test_the_metadata_holds_the_valid_ic_of_each_member_and_of_their_combination(ensemble_run):
    config, metadata = ensemble_run
    start, end = pd.Timestamp(metadata["valid_start"]), pd.Timestamp(metadata["valid_end"])
    with connect(config.duckdb_path, read_only=True) as con:
        valid = read_features(con, start, end, with_labels=True)
    labelled = np.isfinite(valid.y)
    index = valid.index[labelled]
    day = pd.factorize(index.get_level_values("datetime"))[0]
    # trained on CSRankNorm labels (Qlib's), so IC is measured against them; Rank IC is the same against raw labels
    labels = {
        "ic": pd.Series(cs_rank_norm(valid.y[labelled], day), index),
        "rank_ic": pd.Series(valid.y[labelled], index),
    }
    scores = _member_scores(config, _members(metadata), index, valid.x[labelled])
    recorded = [(m, scores[m["model_version"]]) for m in _members(metadata)]
    for figures, score in [*recorded, (metadata, combine_scores(scores, "zscore"))]:
        for metric, label in labels.items():
            measured = daily_ic(score, label)[metric].mean()
            assert figures[f"valid_{metric}"] == pytest.approx(measured, abs=1e-5), (figures["model_version"], metric)
    assert abs(metadata["valid_rank_ic"]) > 0.05  # the synthetic market's signal: the figures are not noise


def test_the_cli_lists_the_ensemble_then_its_members(ensemble_run, monkeypatch, capsys):
    config, metadata = ensemble_run
    monkeypatch.setenv("KRNN_CONFIG", str(config.duckdb_path.parent / "config.yaml"))  # where _variant wrote it
    main(["models"])
    header, *lines = capsys.readouterr().out.splitlines()
    columns, rows = header.split(), {line.split()[0]: line.split() for line in lines}
    ensemble, members = metadata["model_version"], [m["model_version"] for m in _members(metadata)]
    listed = {version: {name: rows[version][columns.index(name)] for name in ("kind", "ensemble")} for version in rows}
    assert listed[ensemble] == {"kind": "ensemble", "ensemble": "None"}
    assert [listed[version] for version in members] == [{"kind": "member", "ensemble": ensemble}] * 2
    assert float(rows[ensemble][columns.index("valid_rank_ic")]) == round(metadata["valid_rank_ic"], 4)
    assert list(rows).index(ensemble) < min(list(rows).index(version) for version in members)


def test_the_search_job_chooses_on_valid_rank_ic_and_the_period_trains_the_choice(pipeline, test_config_path, tmp_path):
    space = {"cnn_dim": [4, 8], "rnn_dim": [4, 8], "rnn_dups": [1], "rnn_layers": [1], "batch_size": [800]}
    config = _variant(pipeline, test_config_path, tmp_path, search={"trials": 3, "seed": 1, "space": space})
    result = _materialize(
        config,
        model_asset.build_krnn_model_search,
        lambda periods, names: model_asset.build_krnn_model(periods, names, config.ensemble),
    )
    searched = result.asset_materializations_for_node(LocationNames.of(config).step("krnn_model_search"))[0].metadata
    assert len(searched["trials"].value.records) == 3
    with connect(config.duckdb_path, read_only=True) as con:
        trials = con.execute("SELECT * FROM model_search_trials ORDER BY trial").df()
        version = con.execute(
            "SELECT config_json, search_period FROM model_versions WHERE model_version = ?",
            [
                result.asset_materializations_for_node(LocationNames.of(config).step("krnn_model"))[0]
                .metadata["model_version"]
                .value
            ],
        ).fetchall()[0]
    chosen = trials[trials["chosen"]]
    assert len(chosen) == 1 and chosen["valid_rank_ic"].item() == trials["valid_rank_ic"].max()
    assert searched["chosen_trial"].value == chosen["trial"].item()
    assert json.loads(version[0]) == json.loads(chosen["kwargs_json"].item())  # the chosen config, saved with it
    assert version[1] == chosen["period"].item()
