"""Where the pipeline's Qlib folder gets its days from: one interface, three sources.

A source knows its trading days (the partitions are built from them) and brings the pipeline's
folder, a symlink managed by `versioned_folder`, up to a day: it never shrinks the folder, never
writes a day it has no data for, and publishes the new version only once it is complete.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pandas as pd

from krnn_core.data import qlib_store
from krnn_core.data.appender import DayBatch, append_days, rewritten_folders
from krnn_core.data.market_data import MarketDataNotAvailable
from krnn_core.data.quarantine import QuarantinedValue
from krnn_core.data.versioned_folder import current_version, next_version

__all__ = ["MarketDataNotAvailable", "MarketSource", "RefreshReport", "refresh_by_days"]


@dataclass
class RefreshReport:
    """What one refresh did, for the asset's metadata and the quarantine table."""

    days_added: int = 0
    first_added: pd.Timestamp | None = None  # the quarantine rows from first_added on are this refresh's
    instruments_written: int = 0
    quarantined: list[QuarantinedValue] = field(default_factory=list)
    notes: dict[str, object] = field(default_factory=dict)


class MarketSource(Protocol):
    """A market feed the pipeline's Qlib folder is built from."""

    def trading_days(self) -> pd.DatetimeIndex:
        """Every session the source has, then those it announces (a future calendar), ascending."""

    def refresh(self, provider_uri: Path, end: pd.Timestamp) -> RefreshReport:
        """Bring the folder at `provider_uri` up to `end`; refuse with MarketDataNotAvailable past the data."""


class DaySource(Protocol):
    """A source that reads its bars day by day: the Qlib folder and CSV feeds."""

    def read_days(self, after: pd.Timestamp | None, end: pd.Timestamp) -> tuple[DayBatch, list[QuarantinedValue]]:
        """The screened bars of the source's days in (after, end] and the values it rejected."""


def folder_last_day(provider_uri: Path) -> pd.Timestamp | None:
    """The last day of the published folder, None before the first refresh."""
    version = current_version(Path(provider_uri))
    if version is None or not (version / "calendars" / "day.txt").exists():
        return None
    return qlib_store.read_calendar(version)[-1]


def refresh_by_days(source: DaySource, provider_uri: Path, end: pd.Timestamp) -> RefreshReport:
    """Append the source's days after the folder's last day through `end`, as one new version."""
    last = folder_last_day(provider_uri)
    if last is not None and last >= end:
        return RefreshReport()
    batch, quarantined = source.read_days(last, end)
    previous = current_version(Path(provider_uri))
    with next_version(Path(provider_uri), rewritten_folders(batch)) as folder:
        changed = append_days(folder, batch, previous)
    first = batch.days[0] if len(batch.days) else None
    return RefreshReport(len(batch.days), first, len(changed), quarantined, batch.notes)
