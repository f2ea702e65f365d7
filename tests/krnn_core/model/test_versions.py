"""Model versions: stable ids, verified artifacts that reload to the same scores, and the registry lookup."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import torch

from krnn_core.features.processors import RobustZScoreNorm, fillna
from krnn_core.model.ensemble import combine_scores
from krnn_core.model.krnn import KRNN, KRNNConfig
from krnn_core.model.trainer import predict
from krnn_core.model.versions import (
    MODEL_VERSIONS_DDL,
    load_artifact,
    load_served,
    model_version_for,
    model_version_id,
    record_model_versions,
    save_artifact,
    save_ensemble_artifact,
)

CONFIG = {"cnn_dim": 4, "rnn_dim": 5, "rnn_dups": 2, "rnn_layers": 1, "n_epochs": 3, "seed": 1}
COLUMNS = [f"F{i}" for i in range(360)]


def _saved(tmp_path: Path) -> tuple[Path, str, KRNN, RobustZScoreNorm]:
    torch.manual_seed(0)
    model = KRNN(KRNNConfig(cnn_dim=4, rnn_dim=5, rnn_dups=2, rnn_layers=1))
    norm = RobustZScoreNorm.fit(np.random.default_rng(0).normal(size=(50, 360)).astype(np.float32))
    path, digest = save_artifact(tmp_path / "models", "krnn-test", model.state_dict(), norm, COLUMNS, CONFIG)
    return path, digest, model, norm


def test_version_id_is_deterministic_and_sensitive() -> None:
    windows = {"train": "2010-01-01/2014-12-31", "valid": "2015-01-01/2016-12-31"}
    first = model_version_id(CONFIG, windows, 7)
    assert first == model_version_id(dict(reversed(CONFIG.items())), windows, 7)
    assert first.startswith("krnn-") and len(first) == 17
    assert model_version_id(CONFIG, windows, 8) != first
    assert model_version_id({**CONFIG, "rnn_dim": 6}, windows, 7) != first


def test_round_trip_gives_identical_predictions(tmp_path: Path) -> None:
    path, digest, model, norm = _saved(tmp_path)
    assert path == tmp_path / "models" / "krnn-test.pt"
    assert [p.name for p in path.parent.iterdir()] == ["krnn-test.pt"]  # no temporary file left behind
    torch.load(path, weights_only=True)  # only tensors and plain values inside
    loaded = load_artifact(path, digest)
    raw = np.random.default_rng(1).normal(size=(30, 360)).astype(np.float32)
    raw[0, :5] = np.nan
    np.testing.assert_array_equal(predict(loaded.model, fillna(loaded.norm(raw))), predict(model, fillna(norm(raw))))
    assert not loaded.model.training
    assert loaded.feature_columns == COLUMNS and loaded.config == CONFIG


def test_tampered_artifact_is_refused(tmp_path: Path) -> None:
    path, digest, _, _ = _saved(tmp_path)
    data = bytearray(path.read_bytes())
    data[-30] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="krnn-test.pt"):
        load_artifact(path, digest)


def _row(version: str, label_end: date, created_at: datetime) -> dict:
    return {
        "model_version": version, "period": "2020", "train_start": date(2015, 1, 1), "train_end": date(2018, 12, 31),
        "valid_start": date(2019, 1, 1), "valid_end": label_end, "label_end": label_end, "best_epoch": 4,
        "valid_loss": 0.98, "valid_ic": 0.04, "n_train": 1000, "n_valid": 200, "device": "cpu", "seed": 3,
        "duration_s": 12.5, "artifact_path": f"/models/{version}.pt", "sha256": "0" * 64,
        "config_json": json.dumps(CONFIG), "history_json": "[]", "created_at": created_at, "kind": "single",
    }  # fmt: skip


def test_model_version_for_picks_newest_earlier_label_end() -> None:
    con = duckdb.connect()
    assert model_version_for(con, date(2021, 1, 1)) is None
    record_model_versions(con, [_row("krnn-a", date(2019, 12, 31), datetime(2020, 1, 2))])
    record_model_versions(con, [_row("krnn-b", date(2020, 6, 30), datetime(2020, 7, 1))])
    record_model_versions(con, [_row("krnn-c", date(2020, 6, 30), datetime(2020, 7, 5))])
    record_model_versions(con, [_row("krnn-d", date(2020, 12, 31), datetime(2021, 1, 2))])
    assert model_version_for(con, date(2019, 12, 31)) is None
    assert model_version_for(con, date(2020, 1, 1))["model_version"] == "krnn-a"
    assert model_version_for(con, date(2020, 6, 30))["model_version"] == "krnn-a"
    found = model_version_for(con, date(2020, 12, 31))
    assert found["model_version"] == "krnn-c" and found["label_end"] == date(2020, 6, 30)
    assert model_version_for(con, date(2021, 1, 4))["model_version"] == "krnn-d"


def test_recording_a_version_again_replaces_it() -> None:
    con = duckdb.connect()
    record_model_versions(con, [_row("krnn-a", date(2019, 12, 31), datetime(2020, 1, 2))])
    record_model_versions(con, [{**_row("krnn-a", date(2019, 12, 31), datetime(2020, 1, 3)), "valid_ic": 0.05}])
    rows = con.execute("SELECT model_version, valid_ic, created_at FROM model_versions").fetchall()
    assert rows == [("krnn-a", 0.05, datetime(2020, 1, 3))]
    assert con.execute("SELECT model_version, valid_ic, sha256, device FROM models").fetchall() == [
        ("krnn-a", 0.05, "0" * 64, "cpu")
    ]


def test_another_markets_model_versions_in_the_same_lake_are_not_this_ones() -> None:
    con = duckdb.connect()  # a DuckLake holds each market config's tables in a schema of its own
    con.execute("CREATE SCHEMA other_market")
    con.execute("USE other_market")
    record_model_versions(con, [_row("krnn-other", date(2019, 12, 31), datetime(2020, 1, 2))])
    con.execute("USE main")
    assert model_version_for(con, date(2020, 1, 1)) is None


def test_a_registry_written_before_ensembles_gains_their_columns() -> None:
    con = duckdb.connect()
    con.execute(MODEL_VERSIONS_DDL.format(key="PRIMARY KEY"))  # the first release's table, with a row of it
    old = {k: v for k, v in _row("krnn-old", date(2019, 12, 31), datetime(2020, 1, 2)).items() if k != "kind"}
    con.register("old", pd.DataFrame([old]))
    con.execute("INSERT INTO model_versions BY NAME SELECT * FROM old")
    record_model_versions(con, [_row("krnn-new", date(2020, 6, 30), datetime(2020, 7, 1)) | {"valid_rank_ic": 0.06}])
    rows = con.execute("SELECT model_version, kind, valid_rank_ic FROM models ORDER BY 1").fetchall()
    assert rows == [("krnn-new", "single", 0.06), ("krnn-old", "single", None)]
    assert model_version_for(con, date(2020, 1, 1))["model_version"] == "krnn-old"


def test_members_are_never_served_alone_their_ensemble_is() -> None:
    con = duckdb.connect()
    day = date(2020, 6, 30)
    member = {"kind": "member", "ensemble_version": "krnn-ens-x"}
    record_model_versions(
        con,
        [
            _row("krnn-m0", day, datetime(2020, 7, 1)) | member,
            _row("krnn-ens-x", day, datetime(2020, 7, 2)) | {"kind": "ensemble"},
            _row("krnn-m1", day, datetime(2020, 7, 3)) | member,  # recorded last: newest, yet a member
        ],
    )
    assert model_version_for(con, date(2020, 7, 6))["model_version"] == "krnn-ens-x"


def _ensemble(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> dict:
    """Two members of different weights recorded, and their ensemble's row with its definition file."""
    members = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = KRNN(KRNNConfig(cnn_dim=4, rnn_dim=5, rnn_dups=2, rnn_layers=1))
        norm = RobustZScoreNorm.fit(np.random.default_rng(0).normal(size=(50, 360)).astype(np.float32))
        path, digest = save_artifact(tmp_path, f"krnn-m{seed}", model.state_dict(), norm, COLUMNS, CONFIG)
        row = _row(f"krnn-m{seed}", date(2020, 6, 30), datetime(2020, 7, 1))
        members.append(row | {"kind": "member", "artifact_path": str(path), "sha256": digest})
    path, digest = save_ensemble_artifact(tmp_path, "krnn-ens-x", members, "zscore")
    ensemble = _row("krnn-ens-x", date(2020, 6, 30), datetime(2020, 7, 2))
    ensemble |= {"kind": "ensemble", "artifact_path": str(path), "sha256": digest}
    record_model_versions(con, [*members, ensemble])
    return ensemble


def test_an_ensemble_scores_with_the_combination_of_its_verified_members(tmp_path: Path) -> None:
    con = duckdb.connect()
    served = load_served(con, _ensemble(tmp_path, con))
    raw = np.random.default_rng(1).normal(size=(12, 360)).astype(np.float32)
    index = pd.MultiIndex.from_product([pd.bdate_range("2020-07-01", periods=2), list("ABCDEF")])
    index = index.set_names(["datetime", "instrument"])
    scores = pd.DataFrame({f"m{i}": member.score(raw) for i, member in enumerate(served.members)}, index=index)
    np.testing.assert_allclose(served.score(index, raw), combine_scores(scores, "zscore").to_numpy(), rtol=1e-6)
    assert len(served.members) == 2 and not np.allclose(scores["m0"], scores["m1"])


def test_an_ensemble_whose_member_changed_is_refused(tmp_path: Path) -> None:
    con = duckdb.connect()
    ensemble = _ensemble(tmp_path, con)
    con.execute("UPDATE model_versions SET sha256 = repeat('1', 64) WHERE model_version = 'krnn-m1'")
    with pytest.raises(ValueError, match="ensemble krnn-ens-x: member krnn-m1 is not recorded with the sha256"):
        load_served(con, ensemble)
    Path(ensemble["artifact_path"]).write_text("{}")
    with pytest.raises(ValueError, match="krnn-ens-x.json has sha256"):
        load_served(con, ensemble)
