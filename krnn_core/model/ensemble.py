"""Seed ensembles: the members' scores combined day by day into one served score, and the ensemble's id.

`zscore` is Qlib's AverageEnsemble (each member's scores standardized within the day, ddof=1, then
averaged); `rank` averages each member's percentile rank within the day. Both make members of
different scales count alike, and the combined score of a day depends only on that day's rows.
"""

from __future__ import annotations

import hashlib
import json

import pandas as pd

from krnn_core.reports.evaluation import DATE_LEVEL

COMBINE_METHODS = ("zscore", "rank")


def combine_scores(scores: pd.DataFrame, how: str) -> pd.Series:
    """One score per row from the members' score columns; rows indexed with a `datetime` level."""
    by_day = scores.groupby(level=DATE_LEVEL)
    if how == "zscore":
        std = by_day.transform("std")
        # a member whose scores are constant on a day (or a day of one row) ranks nobody: it adds 0, not NaN
        per_member = ((scores - by_day.transform("mean")) / std).where(std > 0, 0.0)
    elif how == "rank":
        per_member = by_day.rank(method="average", pct=True) - 0.5  # centred: 0 is the day's middle
    else:
        raise ValueError(f"ensemble combine={how!r} is not one of {COMBINE_METHODS}")
    return per_member.mean(axis=1).rename("score")


def ensemble_version_id(members: list[str], how: str) -> str:
    """Short id from the sha256 of the member versions and the combination."""
    canonical = json.dumps({"members": sorted(members), "combine": how}, separators=(",", ":"))
    return "krnn-ens-" + hashlib.sha256(canonical.encode()).hexdigest()[:12]


def member_seeds(seed: int | None, count: int) -> list[int | None]:
    """The members' training seeds: seed, seed + 1, ...; None (each draws its own) when the config has none."""
    return [None if seed is None else seed + offset for offset in range(count)]
