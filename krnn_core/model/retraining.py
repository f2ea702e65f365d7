"""One model version per retraining period: its point-in-time windows, its data, its training."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from krnn_core.features.alpha360 import ALPHA360_COLUMNS, LABEL_HORIZON
from krnn_core.features.processors import RobustZScoreNorm, cs_rank_norm, fillna
from krnn_core.features.row_file import RowFile
from krnn_core.features.store import FeatureMatrix, features_to_file
from krnn_core.model.ensemble import combine_scores, ensemble_version_id
from krnn_core.model.metrics import mean_daily_ic_and_rank_ic
from krnn_core.model.trainer import TrainingSet, predict, split_qlib_kwargs, train_krnn
from krnn_core.model.versions import (
    LoadedModel,
    load_artifact,
    model_version_id,
    save_artifact,
    save_ensemble_artifact,
)


@dataclass(frozen=True)
class ModelWindows:
    """Train and valid windows of one model version, all labels matured before `period_start`."""

    period_start: pd.Timestamp  # first trading day the model predicts
    train: tuple[pd.Timestamp, pd.Timestamp]
    valid: tuple[pd.Timestamp, pd.Timestamp]

    @property
    def label_end(self) -> pd.Timestamp:
        return self.valid[1]

    def as_dict(self) -> dict[str, str]:
        days = {"period_start": self.period_start, "train_start": self.train[0], "train_end": self.train[1]}
        days |= {"valid_start": self.valid[0], "valid_end": self.valid[1]}
        return {key: str(day.date()) for key, day in days.items()}


def rolling_windows(
    calendar: pd.DatetimeIndex, period_start: pd.Timestamp, segments: dict[str, tuple], rtype: str
) -> ModelWindows:
    """Roll the first version's train/valid segments forward to a later period, Qlib's RollingGen style.

    `calendar` must reach the period's first trading day (use the future calendar). Windows move by
    the number of trading days between the test segment's start and the period's start; `expanding`
    keeps the train start fixed. The valid window is cut so its labels matured before the period.
    """
    first = _first_on_or_after(calendar, period_start)
    shift = first - _first_on_or_after(calendar, pd.Timestamp(segments["test"][0]))
    if shift < 0:
        raise ValueError(f"retraining period {period_start.date()} starts before the test segment")
    train_start, train_end = (_first_on_or_after(calendar, pd.Timestamp(day)) for day in segments["train"])
    valid_start, valid_end = (_first_on_or_after(calendar, pd.Timestamp(day)) + shift for day in segments["valid"])
    if rtype == "sliding":
        train_start += shift
    # trained after the close of the day before the period, the model sees labels of days up to 2 before that
    valid_end = min(valid_end, first - 1 - LABEL_HORIZON)
    train_end = min(train_end + shift, valid_start - 1)
    if not train_start <= train_end < valid_start <= valid_end:
        raise ValueError(f"retraining period {period_start.date()}: train/valid windows are empty after cutting")
    pick = calendar.__getitem__
    return ModelWindows(pick(first), (pick(train_start), pick(train_end)), (pick(valid_start), pick(valid_end)))


def load_training_data(
    con: duckdb.DuckDBPyConnection, windows: ModelWindows, scratch: Path
) -> tuple[FeatureMatrix, FeatureMatrix]:
    """The stored features and labels of the train and valid windows, their rows in files under `scratch`
    (a market's windows can be larger than memory); refused where any is missing."""
    train = _matured(features_to_file(con, *windows.train, scratch / "train.f32"), "train", windows.train)
    return train, load_valid_data(con, windows, scratch)


def load_valid_data(con: duckdb.DuckDBPyConnection, windows: ModelWindows, scratch: Path) -> FeatureMatrix:
    """The stored features and labels of the valid window, its rows in a file under `scratch`; refused where any
    is missing."""
    return _matured(features_to_file(con, *windows.valid, scratch / "valid.f32"), "valid", windows.valid)


@contextmanager
def scratch_folder(model_dir: Path) -> Iterator[Path]:
    """A temporary folder under model_dir for one training run's row files, removed with them afterwards."""
    model_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=model_dir, prefix=".training-") as folder:
        yield Path(folder)


def train_model_version(
    train: FeatureMatrix,
    valid: FeatureMatrix,
    model_dir: Path,
    windows: ModelWindows,
    model_kwargs: dict,
    log: Callable[[str], None] = print,
    search_period: str | None = None,
) -> dict:
    """Train KRNN on the windows' data and save the artifact; the `model_versions` row to record.

    `search_period` names the search whose chosen kwargs these are, if a search chose them.
    """
    started = time.monotonic()
    model_config, trainer_config = split_qlib_kwargs(model_kwargs)
    norm, train_set, valid_set = learn_sets(train, valid)
    result = train_krnn(model_config, trainer_config, train_set, valid_set, log)
    _, valid_rank_ic = mean_daily_ic_and_rank_ic(predict(result.model, valid_set.x), valid_set.y, valid_set.day)
    version = model_version_id(model_kwargs, windows.as_dict(), result.seed)
    path, sha256 = save_artifact(model_dir, version, result.state_dict, norm, ALPHA360_COLUMNS, model_kwargs)
    row = {
        "model_version": version,
        "kind": "single",
        **_window_columns(windows),
        "best_epoch": result.best_epoch,
        "valid_loss": result.valid_loss,
        "valid_ic": result.valid_ic,
        "valid_rank_ic": valid_rank_ic,
        "n_train": len(train.index),
        "n_valid": len(valid.index),
        "device": result.device,
        "seed": result.seed,
        "duration_s": time.monotonic() - started,
        "artifact_path": str(path),
        "sha256": sha256,
        "config_json": json.dumps(model_kwargs, sort_keys=True),
        "history_json": json.dumps(result.history),
        "search_period": search_period,
        "created_at": _now(),
    }
    return row


def ensemble_versions(members: list[dict], valid: FeatureMatrix, model_dir: Path, combine: str) -> list[dict]:
    """The members' rows marked as members, then the ensemble's row; its valid IC on the members' valid rows.

    Each member scores the valid window through its own artifact (checked against its sha256), with the
    labels processed as in training (DropnaLabel, CSRankNorm), so the ensemble's and the members' valid
    IC and Rank IC are measured alike.
    """
    keep, day, label = _learned_labels(valid)
    loaded = {m["model_version"]: load_artifact(Path(m["artifact_path"]), m["sha256"]) for m in members}
    scores = {version: _kept_scores(model, valid.x, keep) for version, model in loaded.items()}
    scores = pd.DataFrame(scores, valid.index[keep])
    valid_ic, valid_rank_ic = mean_daily_ic_and_rank_ic(combine_scores(scores, combine).to_numpy(), label, day)
    version = ensemble_version_id(list(scores.columns), combine)
    path, sha256 = save_ensemble_artifact(model_dir, version, members, combine)
    first = members[0]
    model_kwargs = {k: v for k, v in json.loads(first["config_json"]).items() if k != "seed"}
    ensemble = {key: first[key] for key in (*_WINDOW_COLUMNS, "n_train", "n_valid", "device", "search_period")}
    ensemble |= {
        "model_version": version,
        "kind": "ensemble",
        "valid_ic": valid_ic,
        "valid_rank_ic": valid_rank_ic,
        "duration_s": sum(m["duration_s"] for m in members),
        "artifact_path": str(path),
        "sha256": sha256,
        "config_json": json.dumps(
            {"combine": combine, "seeds": [m["seed"] for m in members], "model": model_kwargs}, sort_keys=True
        ),
        "history_json": "[]",
        "created_at": _now(),
    }
    return [m | {"kind": "member", "ensemble_version": version} for m in members] + [ensemble]


def _kept_scores(model: LoadedModel, x: np.ndarray | RowFile, keep: np.ndarray) -> np.ndarray:
    """model.score of the rows of raw `x` where `keep`; a RowFile block by block."""
    if isinstance(x, np.ndarray):
        return model.score(x[keep])
    return np.concatenate([model.score(x.read(start, stop)[keep[start:stop]]) for start, stop in x.blocks()])


def ensemble_gain(rows: list[dict]) -> dict[str, float]:
    """Of ensemble_versions' rows: the members' mean valid IC and Rank IC, and what the ensemble adds to each."""
    *members, ensemble = rows
    gain = {}
    for metric in ("valid_ic", "valid_rank_ic"):
        mean = float(np.mean([m[metric] for m in members]))
        gain |= {f"members_{metric}_mean": mean, f"{metric}_gain": float(ensemble[metric]) - mean}
    return gain


_WINDOW_COLUMNS = ("period", "train_start", "train_end", "valid_start", "valid_end", "label_end")


def _window_columns(windows: ModelWindows) -> dict:
    """The registry's window columns of a version trained on `windows`."""
    days = (windows.train[0], windows.train[1], windows.valid[0], windows.valid[1], windows.label_end)
    return {"period": str(windows.period_start.date())} | {
        column: day.date() for column, day in zip(_WINDOW_COLUMNS[1:], days, strict=True)
    }


def _now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC").tz_localize(None)


def _matured(data: FeatureMatrix, name: str, window: tuple[pd.Timestamp, pd.Timestamp]) -> FeatureMatrix:
    """Refuse a window whose features or labels have not been materialized."""
    days = data.index.get_level_values("datetime")
    if len(days) == 0:
        raise ValueError(f"no alpha360_features stored for the {name} window {window[0].date()}..{window[1].date()}")
    labelled = pd.Series(np.isfinite(data.y), index=days).groupby(level=0).any()
    missing = labelled.index[~labelled.to_numpy()]
    if len(missing):
        raise ValueError(
            f"no alpha360_labels stored for {len(missing)} days of the {name} window, first {missing[0].date()}"
        )
    return data


def learn_sets(train: FeatureMatrix, valid: FeatureMatrix) -> tuple[RobustZScoreNorm, TrainingSet, TrainingSet]:
    """Qlib's processors fitted on the train window only (its fit_start/fit_end) and applied to both windows."""
    norm = RobustZScoreNorm.fit(train.x)
    return norm, _learn_set(train, norm), _learn_set(valid, norm)


def _learn_set(data: FeatureMatrix, norm: RobustZScoreNorm) -> TrainingSet:
    """Qlib's learn processors: DropnaLabel, then CSRankNorm; features RobustZScoreNorm + Fillna."""
    keep, day, label = _learned_labels(data)
    x = fillna(norm(data.x[keep])) if isinstance(data.x, np.ndarray) else _normalized_file(data.x, keep, norm)
    return TrainingSet(x=x, y=label, day=day)


def _learned_labels(data: FeatureMatrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DropnaLabel, then CSRankNorm: the rows kept, their day numbers and their processed labels."""
    keep = np.isfinite(data.y)
    day = pd.factorize(data.index.get_level_values("datetime")[keep])[0]
    return keep, day, cs_rank_norm(data.y[keep], day)


def _normalized_file(x: RowFile, keep: np.ndarray, norm: RobustZScoreNorm) -> RowFile:
    """fillna(norm(x[keep])) of a RowFile, block by block, into a RowFile beside it."""
    out = RowFile.create(x.path.with_suffix(".learn.f32"), int(keep.sum()), x.columns)
    written = 0
    for start, stop in x.blocks():
        block = fillna(norm(x.read(start, stop)[keep[start:stop]]))
        out.write(written, block)
        written += len(block)
    return out


def _first_on_or_after(calendar: pd.DatetimeIndex, day: pd.Timestamp) -> int:
    """Position of the first trading day on or after `day`."""
    pos = int(calendar.searchsorted(day))
    if pos >= len(calendar):
        raise ValueError(f"{day.date()} is after the last day of the trading calendar ({calendar[-1].date()})")
    return pos
