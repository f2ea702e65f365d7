"""Bars a source delivers that must not reach the Qlib folder: found, blanked, and kept in DuckDB.

A bar (one instrument, one day) is bad when a price or the volume is missing or not finite while
the rest of the bar exists, a price is not positive, the volume is negative, or low/high do not
bound open and close. The whole bar is written as missing; each offending field becomes one row
of the `quarantine` table, which says where it came from and why. A source also quarantines a row
it must not write at all, such as a CSV row dated after the last closed session (field `date`).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from krnn_core.warehouse import replace_rows

BAR_FIELDS = ("open", "high", "low", "close", "volume")
PRICES = ("open", "high", "low", "close")
COLUMNS = ("source_file", "instrument", "datetime", "field", "value", "reason", "detected_at")


@dataclass(frozen=True)
class QuarantinedValue:
    """One rejected value of one bar."""

    source_file: str
    instrument: str
    datetime: pd.Timestamp
    field: str
    value: float
    reason: str


def screen_bars(
    code: str, days: pd.DatetimeIndex, bars: dict[str, np.ndarray], source_file: str
) -> list[QuarantinedValue]:
    """Blank the bad bars of one instrument in place (every field NaN) and return why each was bad."""
    found = []
    for field, reason, bad in bad_bar_rules(bars):
        found += [
            QuarantinedValue(source_file, code, days[i], field, float(bars[field][i]), reason)
            for i in np.flatnonzero(bad)
        ]
    if found:
        blank = np.isin(days, pd.DatetimeIndex([row.datetime for row in found]))
        for values in bars.values():
            values[blank] = np.nan
    return found


def bad_bar_rules(bars: dict[str, np.ndarray]) -> list[tuple[str, str, np.ndarray]]:
    """(field, reason, mask of bad bars) for every rule and field: the one definition of a bad bar.

    The arrays may be of any shape, one instrument's days or a (days, instruments) panel.
    """
    shape = np.shape(next(iter(bars.values())))
    get = {name: bars.get(name, np.full(shape, np.nan)) for name in BAR_FIELDS}
    exists = np.any([np.isfinite(values) for values in get.values()], axis=0)
    with np.errstate(invalid="ignore"):
        rules = [
            (name, "missing or not finite while the bar exists", exists & ~np.isfinite(get[name]))
            for name in BAR_FIELDS
        ]
        rules += [(name, "non-positive price", get[name] <= 0) for name in PRICES]
        rules.append(("volume", "negative volume", get["volume"] < 0))
        rules.append(
            (
                "low",
                "low above open, close or high",
                get["low"] > np.fmin(np.fmin(get["open"], get["close"]), get["high"]),
            )
        )
        rules.append(("high", "high below open or close", get["high"] < np.fmax(get["open"], get["close"])))
    return rules


def write_quarantine(con: duckdb.DuckDBPyConnection, rows: list[QuarantinedValue], start: pd.Timestamp) -> None:
    """Replace the quarantine rows dated `start` or later with `rows`, in one transaction.

    A refresh reports its new days from `start` on and, again each time, every row a source dated
    after the last closed session: so the rows after the refreshed days are always the latest refresh's.
    """
    con.execute(
        "CREATE TABLE IF NOT EXISTS quarantine (source_file VARCHAR, instrument VARCHAR, datetime TIMESTAMP, "
        "field VARCHAR, value DOUBLE, reason VARCHAR, detected_at TIMESTAMP)"
    )
    frame = pd.DataFrame([vars(row) for row in rows], columns=COLUMNS[:-1])
    frame["detected_at"] = pd.Timestamp.now(tz="UTC").tz_localize(None)
    replace_rows(con, "quarantine", frame, "datetime >= ?", [start])
