"""Daily KRNN scores per universe member, each stamped with the model version that made it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pandas as pd

from krnn_core.data import qlib_store
from krnn_core.data.market_checks import ProblemsByDay, listed_members
from krnn_core.features.alpha360 import ALPHA360_COLUMNS, FIELDS, MarketPanel, load_panel
from krnn_core.features.store import FeatureMatrix, iter_features
from krnn_core.tables import MODEL_VERSIONS_TABLE, SIGNALS_TABLE
from krnn_core.warehouse import read_indexed, replace_rows

if TYPE_CHECKING:
    from krnn_core.model.versions import ServedModel

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {SIGNALS_TABLE} (
    datetime DATE NOT NULL, instrument VARCHAR NOT NULL, score DOUBLE NOT NULL,
    rank INTEGER NOT NULL, model_version VARCHAR NOT NULL
);
"""
_CLOSE0 = ALPHA360_COLUMNS.index("CLOSE0")
_QUOTED = 5  # rows quoted per problem; the count says how many there are


def score_days(con: duckdb.DuckDBPyConnection, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Scores of every trading day in [start, end] from the version trained before each day.

    The features are read a chunk of days at a time, so a long range never holds all of them."""
    from krnn_core.model.versions import ensure_model_versions

    ensure_model_versions(con)  # a registry written before ensembles gains their columns
    models: dict[str, ServedModel] = {}
    frames = [frame for data in iter_features(con, start, end) for frame in _scored_chunk(con, data, models)]
    if not frames:
        raise ValueError(f"no alpha360_features stored for {start.date()}..{end.date()}: materialize them first")
    return pd.concat(frames, ignore_index=True)


def traded_rows(x: np.ndarray) -> np.ndarray:
    """Which raw Alpha360 rows (n, 360) get a score: a suspended member has no bar (CLOSE0 = $close/$close is NaN)."""
    return np.isfinite(x[:, _CLOSE0])


def _scored_chunk(
    con: duckdb.DuckDBPyConnection, data: FeatureMatrix, models: dict[str, ServedModel]
) -> list[pd.DataFrame]:
    """One ranked frame per day of the chunk; `models` caches the versions loaded so far."""
    # the model's modules import torch (1-3 s): only a run that scores pays for it, not every process
    # that loads the code location (a backfill's run, the checks, the CLI)
    from krnn_core.model.versions import load_served, model_version_for

    days = data.index.get_level_values("datetime")
    traded = traded_rows(data.x)
    frames = []
    for day in days.unique():
        version = model_version_for(con, day.date())
        if version is None:
            raise ValueError(f"no model version whose training labels end before {day.date()}: train krnn_model first")
        if version["model_version"] not in models:  # setdefault would read and hash the artifacts every day
            models[version["model_version"]] = load_served(con, version)
        rows = (days == day) & traded
        frames.append(_ranked(data.index[rows], models[version["model_version"]], data.x[rows], version))
    return frames


def write_signals(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> int:
    """Replace the signals of days [start, end] in one transaction."""
    con.execute(SCHEMA)
    # for backfills and re-execution, delete all existing signals of the window first
    return replace_rows(con, SIGNALS_TABLE, frame, "datetime BETWEEN ? AND ?", [start.date(), end.date()])


def read_signals(con: duckdb.DuckDBPyConnection, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
    """Stored scores of days [start, end], indexed by (datetime, instrument) as Qlib's `pred.pkl`."""
    sql = f"SELECT datetime, instrument, score FROM {SIGNALS_TABLE} WHERE datetime BETWEEN ? AND ? ORDER BY 1, 2"
    return read_indexed(con, sql, [start.date(), end.date()])["score"]


def _ranked(index: pd.MultiIndex, model: ServedModel, x: np.ndarray, version: dict) -> pd.DataFrame:
    """One day's scores, ranked 1 = best, stamped with the served version (an ensemble's, not its members')."""
    scores = model.score(index, x)
    frame = pd.DataFrame(
        {
            "datetime": index.get_level_values("datetime"),
            "instrument": index.get_level_values("instrument"),
            "score": scores.astype(np.float64),
        }
    )
    frame["rank"] = frame["score"].rank(ascending=False, method="first").astype(np.int32)
    frame["model_version"] = version["model_version"]
    return frame.sort_values("rank", ignore_index=True)


def signal_universe_problems(
    stored: pd.Series, provider_uri: str | Path, market: str, start: pd.Timestamp, end: pd.Timestamp
) -> ProblemsByDay:
    """Each trading day in [start, end]: how `stored` (read_signals) differs from one finite score per index member
    with a bar.

    Members and bars come from the Qlib folder, not from the feature rows the scores were made from.
    """
    panel = load_panel(provider_uri, market, start, end)
    has_bar = panel.member & np.isfinite(panel.values[:, :, FIELDS.index("close")])
    listed = listed_members(panel, qlib_store.read_instruments(provider_uri, market))
    finite = stored.index[np.isfinite(stored.to_numpy())]
    problems = {
        "members with a bar and no finite score": _rows(panel, has_bar).difference(finite),
        "scores of instruments that are not index members that day": stored.index.difference(_rows(panel, listed)),
        "scores of members without a bar that day": stored.index.intersection(_rows(panel, listed & ~has_bar)),
        "non-finite scores": stored.index.difference(finite),
        "duplicate rows": stored.index[stored.index.duplicated()],
    }
    stored_days = stored.index.get_level_values(0) if len(stored) else pd.DatetimeIndex([])
    by_day: ProblemsByDay = {day: [] for day in panel.calendar.union(stored_days)}
    for what, rows in problems.items():
        days = rows.get_level_values(0)
        for day in days.unique():
            on_day = rows[days == day]
            by_day[day].append(f"{what}: {len(on_day)}, e.g. {_quoted(on_day)}")
    return by_day


def spread_problems(stats: pd.DataFrame, floor: float) -> ProblemsByDay:
    """Each day of `stats` (signal_day_stats) whose cross-sectional score std is below `floor`: a collapsed model."""
    return {
        day: [f"score std {std:.3g} below the floor {floor:g}"] if std < floor else []
        for day, std in zip(pd.to_datetime(stats["datetime"]), stats["score_std"], strict=True)
    }


def model_age_problems(stats: pd.DataFrame, limit_days: int) -> ProblemsByDay:
    """Each day of `stats` (signal_day_stats) scored by a model whose last label is more than `limit_days` older."""
    days, label_end = pd.to_datetime(stats["datetime"]), pd.to_datetime(stats["label_end"])
    return {
        day: (
            [f"model {version} saw labels up to {last.date()}, {(day - last).days} days before (limit {limit_days})"]
            if (day - last).days > limit_days
            else []
        )
        for day, last, version in zip(days, label_end, stats["model_version"], strict=True)
    }


def _rows(panel: MarketPanel, mask: np.ndarray) -> pd.MultiIndex:
    """(datetime, instrument) of the panel's cells where `mask` (days, instruments) holds."""
    days, inst = np.nonzero(mask)
    return pd.MultiIndex.from_arrays(
        [panel.calendar[days], np.asarray(panel.codes)[inst]], names=["datetime", "instrument"]
    )


def _quoted(rows: pd.MultiIndex) -> str:
    return ", ".join(f"{code} {day.date()}" for day, code in rows[:_QUOTED])


def signal_day_stats(con: duckdb.DuckDBPyConnection, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Per day: rows, cross-sectional score std, and the model version with the last day of its labels."""
    return con.execute(
        f"""
        SELECT s.datetime, count(*) AS n, coalesce(stddev_samp(s.score), 0) AS score_std,
               any_value(s.model_version) AS model_version, count(DISTINCT s.model_version) AS versions,
               any_value(m.label_end) AS label_end
        FROM {SIGNALS_TABLE} s LEFT JOIN {MODEL_VERSIONS_TABLE} m USING (model_version)
        WHERE s.datetime BETWEEN ? AND ? GROUP BY s.datetime ORDER BY s.datetime
        """,
        [start.date(), end.date()],
    ).df()
