"""Saved model versions: an id derived from what defines the model, a checksummed artifact, a DuckDB registry.

An artifact holds only tensors and plain Python values, so `torch.load(weights_only=True)` reads it
and nothing in the file can execute code. Its sha256 is recorded beside it; a file that no longer
matches is refused rather than scored with.

A version is of one `kind`: `single` (one model, served alone), `member` (one seed of an ensemble,
never served alone) or `ensemble`, whose artifact is a JSON file naming its members and their sha256,
so that it pins the exact member files it was evaluated with.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import BinaryIO

import duckdb
import numpy as np
import pandas as pd
import torch

from krnn_core.features.processors import RobustZScoreNorm, fillna
from krnn_core.model.ensemble import combine_scores
from krnn_core.model.krnn import KRNN
from krnn_core.model.trainer import predict, split_qlib_kwargs
from krnn_core.tables import MODEL_VERSIONS_TABLE
from krnn_core.warehouse import is_lake, replace_rows, table_exists

MODEL_VERSIONS_DDL = f"""
CREATE TABLE IF NOT EXISTS {MODEL_VERSIONS_TABLE}(
    model_version VARCHAR {{key}},
    period VARCHAR,
    train_start DATE, train_end DATE, valid_start DATE, valid_end DATE, label_end DATE,
    best_epoch INTEGER, valid_loss DOUBLE, valid_ic DOUBLE,
    n_train BIGINT, n_valid BIGINT,
    device VARCHAR, seed BIGINT, duration_s DOUBLE,
    artifact_path VARCHAR, sha256 VARCHAR,
    config_json VARCHAR, history_json VARCHAR,
    created_at TIMESTAMP
)
"""
# added after the first release: a registry written before gets them (its rows are single models)
ADDED_COLUMNS = {
    "kind": "VARCHAR DEFAULT 'single'",  # single, member or ensemble
    "ensemble_version": "VARCHAR",  # a member's ensemble
    "valid_rank_ic": "DOUBLE",
    "search_period": "VARCHAR",  # the period of the search whose chosen kwargs it trained, if any
}
# `models` is the short name for ad-hoc queries; the pipeline itself reads model_versions
MODELS_VIEW = f"CREATE OR REPLACE VIEW models AS SELECT * FROM {MODEL_VERSIONS_TABLE}"


@dataclass(frozen=True)
class LoadedModel:
    """A verified artifact, ready to score."""

    model: KRNN  # in eval mode, on the CPU
    norm: RobustZScoreNorm
    feature_columns: list[str]
    config: dict

    def score(self, x: np.ndarray) -> np.ndarray:
        """Scores (n,) of raw Alpha360 rows (n, 360), through the version's own processors."""
        return predict(self.model, fillna(self.norm(x)))


@dataclass(frozen=True)
class ServedModel:
    """What scores a day for a served version: one model, or an ensemble's members and their combination."""

    members: list[LoadedModel]
    combine: str | None  # None: a single model, whose scores are served as they are

    def score(self, index: pd.MultiIndex, x: np.ndarray) -> np.ndarray:
        """Scores (n,) of raw rows (n, 360) indexed by (datetime, instrument); an ensemble combines per day."""
        if self.combine is None:
            return self.members[0].score(x)
        columns = {f"m{i}": member.score(x) for i, member in enumerate(self.members)}
        return combine_scores(pd.DataFrame(columns, index=index), self.combine).to_numpy(np.float32)


def model_version_id(config: dict, windows: dict[str, str], seed: int) -> str:
    """Short id from the sha256 of the canonical JSON of config, windows and seed."""
    canonical = json.dumps({"config": config, "windows": windows, "seed": seed}, sort_keys=True, separators=(",", ":"))
    return "krnn-" + hashlib.sha256(canonical.encode()).hexdigest()[:12]


def save_artifact(
    model_dir: Path,
    version: str,
    state_dict: dict[str, torch.Tensor],
    norm: RobustZScoreNorm,
    feature_columns: list[str],
    config: dict,
) -> tuple[Path, str]:
    """Write model_dir/<version>.pt atomically; returns (path, sha256 hex of the file).

    `config` is the KRNN kwargs in Qlib's names (what `split_qlib_kwargs` reads) and rebuilds the model.
    """
    split_qlib_kwargs(config)  # refuse now a config that load_artifact could not rebuild from
    payload = {
        "version": version,
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        "norm": norm.state_dict(),
        "feature_columns": list(feature_columns),
        "config": config,
    }
    path = model_dir / f"{version}.pt"
    return path, _write_atomically(path, lambda f: torch.save(payload, f))


def save_ensemble_artifact(model_dir: Path, version: str, members: list[dict], combine: str) -> tuple[Path, str]:
    """Write model_dir/<version>.json naming the member versions and their sha256; returns (path, sha256)."""
    definition = {
        "version": version,
        "combine": combine,
        "members": [{"model_version": m["model_version"], "sha256": m["sha256"]} for m in members],
    }
    path = model_dir / f"{version}.json"
    return path, _write_atomically(path, lambda f: f.write(json.dumps(definition, indent=1).encode()))


def _write_atomically(path: Path, write: Callable[[BinaryIO], None]) -> str:
    """Write `path` through a temporary file renamed over it; the sha256 hex of what was written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    os.replace(tmp, path)  # readers see the old file or the complete new one, never a partial write
    return digest


def _verified_bytes(path: Path, sha256: str) -> bytes:
    """The file's bytes, refused unless their sha256 is the recorded one."""
    data = Path(path).read_bytes()  # hash and load the same bytes: no window for a swap in between
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise ValueError(f"model artifact {path} has sha256 {actual}, expected {sha256}: refusing to load it")
    return data


def load_artifact(path: Path, sha256: str) -> LoadedModel:
    """Load an artifact after checking its sha256; the model comes back in eval mode."""
    data = _verified_bytes(path, sha256)
    payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    model = KRNN(split_qlib_kwargs(payload["config"])[0])
    model.load_state_dict(payload["state_dict"])
    return LoadedModel(
        model=model.eval(),
        norm=RobustZScoreNorm.from_state_dict(payload["norm"]),
        feature_columns=payload["feature_columns"],
        config=payload["config"],
    )


def load_served(con: duckdb.DuckDBPyConnection, row: dict) -> ServedModel:
    """The model a served registry row names, every artifact checked against its sha256."""
    if row["kind"] != "ensemble":
        return ServedModel([load_artifact(Path(row["artifact_path"]), row["sha256"])], None)
    definition = json.loads(_verified_bytes(Path(row["artifact_path"]), row["sha256"]))
    members = []
    for member in definition["members"]:
        recorded = _registry_row(con, member["model_version"])
        if recorded is None or recorded["sha256"] != member["sha256"]:
            raise ValueError(
                f"ensemble {row['model_version']}: member {member['model_version']} is not recorded with the sha256 "
                f"{member['sha256']} its definition {row['artifact_path']} names: refusing to score with it"
            )
        members.append(load_artifact(Path(recorded["artifact_path"]), member["sha256"]))
    return ServedModel(members, definition["combine"])


def ensure_model_versions(con: duckdb.DuckDBPyConnection) -> None:
    """Create the registry and its view, and add the columns a registry written before lacks."""
    # DuckLake has no key constraints; there replace_rows alone keeps one row per version
    con.execute(MODEL_VERSIONS_DDL.format(key="NOT NULL" if is_lake(con) else "PRIMARY KEY"))
    for column, sql_type in ADDED_COLUMNS.items():
        con.execute(f"ALTER TABLE {MODEL_VERSIONS_TABLE} ADD COLUMN IF NOT EXISTS {column} {sql_type}")
    con.execute(MODELS_VIEW)


def record_model_versions(con: duckdb.DuckDBPyConnection, rows: list[dict]) -> None:
    """Insert model_versions rows in one transaction, replacing any rows of the same model_version."""
    ensure_model_versions(con)
    versions = [row["model_version"] for row in rows]
    where = f"model_version IN ({', '.join('?' for _ in versions)})"
    replace_rows(con, MODEL_VERSIONS_TABLE, pd.DataFrame(rows), where, versions)


def model_version_for(con: duckdb.DuckDBPyConnection, day: date) -> dict | None:
    """The newest served version (by label_end, then created_at) trained only on labels known before `day`.

    Members of an ensemble are never served alone: their ensemble is. A registry written before
    ensembles existed must have passed through ensure_model_versions.
    """
    if not table_exists(con, MODEL_VERSIONS_TABLE):
        return None
    return _first_row(
        con,
        f"SELECT * FROM {MODEL_VERSIONS_TABLE} WHERE label_end < ? AND kind <> 'member' "
        "ORDER BY label_end DESC, created_at DESC LIMIT 1",
        [day],
    )


def _registry_row(con: duckdb.DuckDBPyConnection, version: str) -> dict | None:
    return _first_row(con, f"SELECT * FROM {MODEL_VERSIONS_TABLE} WHERE model_version = ?", [version])


def _first_row(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> dict | None:
    """The first row of `sql` as a dict; the result is read to its end (DuckDB 2 refuses other work before)."""
    cursor = con.execute(sql, params)
    rows = cursor.fetchall()
    return dict(zip([d[0] for d in cursor.description], rows[0], strict=True)) if rows else None
