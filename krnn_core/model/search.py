"""Model selection on IC: a bounded search over Qlib's KRNN kwargs, chosen on valid Rank IC alone.

A search of a retraining period trains each candidate on that period's train window and scores it on
its valid window, the data `load_training_data` reads: no label after the period's `label_end`, so
never a test label. Trial 0 is the config's own kwargs, so the choice is never rated lower on valid
than what the pipeline trains without a search. The models of a period use the choice of the newest
search whose labels end before the period starts (`chosen_kwargs`), the rule model versions follow.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable

import duckdb
import numpy as np
import pandas as pd

from krnn_core.features.store import FeatureMatrix
from krnn_core.model.config import SEARCH_KEYS
from krnn_core.model.metrics import mean_daily_ic_and_rank_ic
from krnn_core.model.retraining import ModelWindows, learn_sets
from krnn_core.model.trainer import TrainingSet, predict, split_qlib_kwargs, train_krnn
from krnn_core.tables import SEARCH_TRIALS_TABLE
from krnn_core.warehouse import replace_rows, table_exists

TRIALS_DDL = f"""
CREATE TABLE IF NOT EXISTS {SEARCH_TRIALS_TABLE}(
    period VARCHAR, label_end DATE, trial INTEGER, chosen BOOLEAN,
    valid_rank_ic DOUBLE, valid_ic DOUBLE, best_epoch INTEGER, epochs INTEGER, seconds DOUBLE,
    params_json VARCHAR, kwargs_json VARCHAR, created_at TIMESTAMP
)
"""


def sample_candidates(base: dict, space: dict[str, list], trials: int, seed: int) -> list[dict]:
    """Up to `trials` distinct kwargs: `base` first, then points of the space's grid in an order drawn with `seed`."""
    keys = list(space)
    sizes = [len(space[key]) for key in keys]
    candidates, seen = [base], {_params_key(base, keys)}
    for index in np.random.default_rng(seed).permutation(math.prod(sizes)):
        if len(candidates) >= trials:
            break
        drawn = {key: space[key][int(pos)] for key, pos in zip(keys, np.unravel_index(index, sizes), strict=True)}
        candidate = _effective({**base, **drawn})
        if _params_key(candidate, keys) not in seen:
            seen.add(_params_key(candidate, keys))
            candidates.append(candidate)
    return candidates


def _effective(kwargs: dict) -> dict:
    """The kwargs with a dropout that acts: dropout works between GRU layers (Qlib's and nn.GRU's), so none in one."""
    return kwargs | {"dropout": 0.0} if kwargs.get("rnn_layers") == 1 else kwargs


def _params_key(kwargs: dict, keys: list[str]) -> tuple:
    return tuple(kwargs.get(key) for key in keys)


def run_search(
    train: FeatureMatrix,
    valid: FeatureMatrix,
    windows: ModelWindows,
    candidates: list[dict],
    log: Callable[[str], None] = print,
) -> pd.DataFrame:
    """Train every candidate on the train window; the trials with their valid IC and Rank IC, the best `chosen`."""
    _, train_set, valid_set = learn_sets(train, valid)
    trials = pd.DataFrame([_trial(n, kwargs, train_set, valid_set, log) for n, kwargs in enumerate(candidates)])
    if trials["valid_rank_ic"].isna().all():
        raise ValueError(f"search of {windows.period_start.date()}: no trial has a defined valid Rank IC")
    trials["chosen"] = trials.index == trials["valid_rank_ic"].idxmax()  # the first of equal bests
    trials["period"] = str(windows.period_start.date())
    trials["label_end"] = windows.label_end.date()
    trials["created_at"] = pd.Timestamp.now(tz="UTC").tz_localize(None)
    return trials


def _trial(number: int, kwargs: dict, train: TrainingSet, valid: TrainingSet, log: Callable[[str], None]) -> dict:
    """Train one candidate with early stopping on valid; its record."""
    started = time.monotonic()
    result = train_krnn(*split_qlib_kwargs(kwargs), train, valid, log=lambda line: None)
    ic, rank_ic = mean_daily_ic_and_rank_ic(predict(result.model, valid.x), valid.y, valid.day)
    params = {key: kwargs[key] for key in SEARCH_KEYS if key in kwargs}
    seconds = time.monotonic() - started
    log(
        f"trial {number}: valid Rank IC {rank_ic:.4f}, IC {ic:.4f}, best epoch {result.best_epoch} of "
        f"{len(result.history)}, {seconds:.0f}s, {params}"
    )
    return {
        "trial": number,
        "valid_rank_ic": rank_ic,
        "valid_ic": ic,
        "best_epoch": result.best_epoch,
        "epochs": len(result.history),
        "seconds": seconds,
        "params_json": json.dumps(params, sort_keys=True),
        "kwargs_json": json.dumps(kwargs, sort_keys=True),
    }


def record_trials(con: duckdb.DuckDBPyConnection, trials: pd.DataFrame) -> None:
    """Replace the recorded trials of the trials' period with these, in one transaction."""
    con.execute(TRIALS_DDL)
    replace_rows(con, SEARCH_TRIALS_TABLE, trials, "period = ?", [trials["period"].iloc[0]])


def chosen_kwargs(con: duckdb.DuckDBPyConnection, period_start: pd.Timestamp) -> tuple[dict, str] | None:
    """(kwargs, its search's period) chosen by the newest search whose labels end before `period_start`."""
    if not table_exists(con, SEARCH_TRIALS_TABLE):
        return None
    found = con.execute(
        f"SELECT kwargs_json, period FROM {SEARCH_TRIALS_TABLE} WHERE chosen AND label_end < ? "
        "ORDER BY label_end DESC, created_at DESC LIMIT 1",
        [period_start.date()],
    ).fetchall()
    return (json.loads(found[0][0]), found[0][1]) if found else None
