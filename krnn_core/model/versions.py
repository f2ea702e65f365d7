"""Saved model versions: an id derived from what defines the model, a checksummed artifact, a DuckDB registry.

An artifact holds only tensors and plain Python values, so `torch.load(weights_only=True)` reads it
and nothing in the file can execute code. Its sha256 is recorded beside it; a file that no longer
matches is refused rather than scored with.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import torch

from krnn_core.features.processors import RobustZScoreNorm
from krnn_core.model.krnn import KRNN
from krnn_core.model.trainer import split_qlib_kwargs
from krnn_core.tables import MODEL_VERSIONS_TABLE
from krnn_core.warehouse import is_lake, replace_rows

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
# `models` is the short name for ad-hoc queries; the pipeline itself reads model_versions
MODELS_VIEW = f"CREATE VIEW IF NOT EXISTS models AS SELECT * FROM {MODEL_VERSIONS_TABLE}"


@dataclass(frozen=True)
class LoadedModel:
    """A verified artifact, ready to score."""

    model: KRNN  # in eval mode, on the CPU
    norm: RobustZScoreNorm
    feature_columns: list[str]
    config: dict


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
    model_dir.mkdir(parents=True, exist_ok=True)
    path = model_dir / f"{version}.pt"
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        torch.save(payload, f)
        f.flush()
        os.fsync(f.fileno())
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    os.replace(tmp, path)  # readers see the old file or the complete new one, never a partial write
    return path, digest


def load_artifact(path: Path, sha256: str) -> LoadedModel:
    """Load an artifact after checking its sha256; the model comes back in eval mode."""
    data = Path(path).read_bytes()  # hash and load the same bytes: no window for a swap in between
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise ValueError(f"model artifact {path} has sha256 {actual}, expected {sha256}: refusing to load it")
    payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    model = KRNN(split_qlib_kwargs(payload["config"])[0])
    model.load_state_dict(payload["state_dict"])
    return LoadedModel(
        model=model.eval(),
        norm=RobustZScoreNorm.from_state_dict(payload["norm"]),
        feature_columns=payload["feature_columns"],
        config=payload["config"],
    )


def record_model_version(con: duckdb.DuckDBPyConnection, row: dict) -> None:
    """Insert one model_versions row, replacing any row of the same model_version."""
    # DuckLake has no key constraints; there replace_rows alone keeps one row per version
    con.execute(MODEL_VERSIONS_DDL.format(key="NOT NULL" if is_lake(con) else "PRIMARY KEY"))
    con.execute(MODELS_VIEW)
    replace_rows(con, MODEL_VERSIONS_TABLE, pd.DataFrame([row]), "model_version = ?", [row["model_version"]])


def model_version_for(con: duckdb.DuckDBPyConnection, day: date) -> dict | None:
    """The newest version (by label_end, then created_at) trained only on labels known before `day`."""
    tables = con.execute(
        "SELECT count(*) FROM duckdb_tables() "
        "WHERE database_name = current_database() AND schema_name = current_schema() AND table_name = ?",
        [MODEL_VERSIONS_TABLE],
    )
    exists = tables.fetchone()[0]
    if not exists:
        return None
    cursor = con.execute(
        f"SELECT * FROM {MODEL_VERSIONS_TABLE} WHERE label_end < ? ORDER BY label_end DESC, created_at DESC LIMIT 1",
        [day],
    )
    found = cursor.fetchone()
    return None if found is None else dict(zip([d[0] for d in cursor.description], found, strict=True))
