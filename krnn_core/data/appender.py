"""Append trading days to a Qlib folder against its global calendar, padding NaN where a bar is missing.

Each instrument's fields share one span: from its first bar to its last one, so a file never ends
with missing bars and an import through day D followed by a one-day append gives the same bytes as
an import through D+1. An instrument without a bar on the new days keeps its files untouched; one
with a bar gets new files: its stored values, NaN for every calendar day since its last bar, then
the new days' values (a gap or a relisting never shifts later values).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from krnn_core.data import qlib_store
from krnn_core.data.versioned_folder import for_each_in_threads


@dataclass
class DayBatch:
    """What a source adds to the folder: new trading days, their bars and the full instrument files."""

    days: pd.DatetimeIndex
    bars: dict[str, dict[str, np.ndarray]]  # code -> field -> one value per new day (NaN: no bar)
    instruments: dict[str, qlib_store.Spans]  # market -> spans, replacing the folder's files
    future_days: pd.DatetimeIndex | None = None  # sessions after the last day, for day_future.txt
    notes: dict[str, object] = field(default_factory=dict)  # what the metadata should say


def rewritten_folders(batch: DayBatch) -> list[str]:
    """The instrument folders append_days writes anew: those of the codes with a bar on the new days."""
    return [f"features/{code.lower()}" for code, fields in batch.bars.items() if _bar_days(fields).size]


def append_days(folder: Path, batch: DayBatch, previous: Path | None = None) -> list[str]:
    """Write the batch into `folder` (calendar, instruments, fields); return the codes whose files changed.

    `previous`: the folder the stored values are read from when the rewritten instrument folders
    of `folder` start empty (versioned_folder's `rewritten`); by default `folder` itself.
    """
    old_calendar = _calendar_or_empty(folder)
    if len(old_calendar) and len(batch.days) and batch.days[0] <= old_calendar[-1]:
        raise qlib_store.QlibDataError(
            f"{folder}: appended day {batch.days[0].date()} is not after the last day {old_calendar[-1].date()}"
        )
    calendar = old_calendar.append(batch.days)
    codes = sorted(batch.bars)
    written = for_each_in_threads(
        lambda code: _append_instrument(folder, previous or folder, code, batch.bars[code], old_calendar, calendar),
        codes,
    )
    changed = [code for code, wrote in zip(codes, written, strict=True) if wrote]
    for market, spans in batch.instruments.items():
        qlib_store.write_instruments(folder, market, spans)
    qlib_store.write_calendar(folder, calendar, batch.future_days)
    return changed


def _calendar_or_empty(folder: Path) -> pd.DatetimeIndex:
    if (Path(folder) / "calendars" / "day.txt").exists():
        return qlib_store.read_calendar(folder)
    return pd.DatetimeIndex([])


def _bar_days(fields: dict[str, np.ndarray]) -> np.ndarray:
    """Positions among the new days where the instrument has any value."""
    return np.flatnonzero(np.any([np.isfinite(values) for values in fields.values()], axis=0))


def _append_instrument(
    folder: Path,
    stored: Path,
    code: str,
    new: dict[str, np.ndarray],
    old_calendar: pd.DatetimeIndex,
    calendar: pd.DatetimeIndex,
) -> bool:
    """Rewrite one instrument's files (its old values read from `stored`) when the new days hold a bar of it."""
    present = _bar_days(new)
    if not present.size:
        return False
    first_new = len(old_calendar)
    old = {
        name: qlib_store.read_bin(qlib_store.field_path(stored, code, name), len(old_calendar))
        for name in qlib_store.stored_fields(stored, code)
    }
    old_span = _span(old)
    start = old_span[0] if old_span else first_new + present[0]
    old_end = old_span[0] + old_span[1] if old_span else first_new
    take = slice(start - first_new if not old_span else 0, present[-1] + 1)
    fields = sorted(set(old) | {name for name, values in new.items() if np.isfinite(values).any()})
    for name in fields:
        head = _aligned(old.get(name), old_span, name, code)
        gap = np.full(first_new - old_end, np.nan, dtype=np.float32)
        tail = np.asarray(new.get(name, np.full(len(calendar) - first_new, np.nan)), dtype=np.float32)[take]
        qlib_store.write_field(folder, code, name, np.concatenate([head, gap, tail]), start, unpublished=True)
    return True


def _span(old: dict[str, tuple[int, np.ndarray] | None]) -> tuple[int, int] | None:
    """(first position, length) of the instrument's stored values, taken from its close file."""
    if not old:
        return None
    stored = old["close"] if "close" in old else old[min(old)]
    return None if stored is None else (stored[0], stored[1].size)


def _aligned(stored: tuple[int, np.ndarray] | None, span: tuple[int, int] | None, name: str, code: str) -> np.ndarray:
    """A field's stored values over the instrument's span (NaN for a field it did not have)."""
    if span is None:
        return np.empty(0, dtype=np.float32)
    if stored is None:
        return np.full(span[1], np.nan, dtype=np.float32)
    if (stored[0], stored[1].size) != span:
        raise qlib_store.QlibDataError(
            f"{code} {name}: stored from position {stored[0]} for {stored[1].size} days, "
            f"but its close from {span[0]} for {span[1]} days"
        )
    return stored[1]
