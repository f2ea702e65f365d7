"""Read and write Qlib's binary data folder (the layout of `qlib.data.storage.file_storage`).

calendars/day.txt        one YYYY-MM-DD per line; day_future.txt extends it past the last day
instruments/<market>.txt CODE<TAB>start<TAB>end, one line per membership range
features/<code>/<field>.day.bin  little-endian float32: calendar index of the first value, then
                                 one value per calendar day (NaN for a missing bar)

A write to a published folder goes to a temporary file in the target folder and is then renamed over
the target, so a reader, or a process killed mid-write, never sees half a file. `write_field(...,
unpublished=True)`, for a version no reader sees yet, unlinks the file and writes a new one in place.

Reading: `read_fields` gives many instruments' fields over a window of the calendar; `read_bin` one file
whole as stored, `read_bin_window` one file's window into an array, `bin_span` a file's header only.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

Spans = dict[str, list[tuple[pd.Timestamp, pd.Timestamp]]]
_FLOAT = np.dtype("<f4")


class QlibDataError(ValueError):
    """A Qlib data file that is missing or malformed; the message names the file."""


def _calendar_path(provider_uri: Path | str, future: bool) -> Path:
    return Path(provider_uri) / "calendars" / ("day_future.txt" if future else "day.txt")


def field_path(provider_uri: Path | str, code: str, field: str) -> Path:
    return Path(provider_uri) / "features" / code.lower() / f"{field}.day.bin"


def _atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and `os.replace`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _check_increasing(days: pd.DatetimeIndex, what: str) -> None:
    """Refuse a repeated day or a step back in time, naming the first such day."""
    steps = np.diff(days.asi8)
    if (steps <= 0).any():
        i = int(np.flatnonzero(steps <= 0)[0])
        problem = "is repeated" if steps[i] == 0 else f"comes after {days[i].date()}"
        raise QlibDataError(f"{what} must be strictly increasing without duplicates: {days[i + 1].date()} {problem}")


def read_calendar(provider_uri: Path | str, future: bool = False) -> pd.DatetimeIndex:
    """The trading days of day.txt (or day_future.txt when `future`)."""
    path = _calendar_path(provider_uri, future)
    if not path.exists():
        raise QlibDataError(f"{path} does not exist")
    numbered = [(number, line.strip()) for number, line in enumerate(path.read_text().splitlines(), 1) if line.strip()]
    days = pd.DatetimeIndex(pd.to_datetime([line for _, line in numbered], format="%Y-%m-%d", errors="coerce"))
    if days.isna().any():
        number, line = numbered[int(np.flatnonzero(days.isna())[0])]
        raise QlibDataError(f"{path} line {number}: {line!r} is not a YYYY-MM-DD date")
    if days.empty:
        raise QlibDataError(f"{path} holds no trading day")
    _check_increasing(days, str(path))
    return days


def write_calendar(
    provider_uri: Path | str, days: pd.DatetimeIndex, future_days: pd.DatetimeIndex | None = None
) -> None:
    """Write day.txt, and day_future.txt = `days` + `future_days` when these are given."""
    _check_increasing(days, "calendar days")
    _atomic_write(_calendar_path(provider_uri, False), _calendar_text(days))
    if future_days is not None:
        extended = days.append(future_days)
        _check_increasing(extended, "calendar days followed by future days")
        _atomic_write(_calendar_path(provider_uri, True), _calendar_text(extended))


def _calendar_text(days: pd.DatetimeIndex) -> bytes:
    return "".join(f"{day:%Y-%m-%d}\n" for day in days).encode()


def read_instruments(provider_uri: Path | str, market: str) -> Spans:
    """Code (as written in the file) -> its (start, end) ranges, in file order."""
    path = Path(provider_uri) / "instruments" / f"{market.lower()}.txt"
    if not path.exists():
        raise QlibDataError(f"{path} does not exist")
    spans: Spans = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        try:
            code, start, end = parts[0], pd.Timestamp(parts[1]), pd.Timestamp(parts[2])
        except (IndexError, ValueError) as error:
            raise QlibDataError(f"{path} line {number}: expected CODE<TAB>start<TAB>end, got {line!r}") from error
        if start > end:
            raise QlibDataError(f"{path} line {number}: {code} starts {start.date()} after its end {end.date()}")
        spans.setdefault(code, []).append((start, end))
    return spans


def write_instruments(provider_uri: Path | str, market: str, spans: Spans) -> None:
    """Write instruments/<market>.txt, one line per range, codes and ranges sorted."""
    lines = []
    for code in sorted(spans):
        for start, end in sorted(spans[code]):
            if start > end:
                raise QlibDataError(f"{market}: {code} starts {start.date()} after its end {end.date()}")
            lines.append(f"{code}\t{start:%Y-%m-%d}\t{end:%Y-%m-%d}\n")
    _atomic_write(Path(provider_uri) / "instruments" / f"{market.lower()}.txt", "".join(lines).encode())


def listed_positions(
    calendar: pd.DatetimeIndex, ranges: list[tuple[pd.Timestamp, pd.Timestamp]]
) -> list[tuple[int, int]]:
    """(first, last) calendar positions of the trading days in each of one code's ranges (none: first > last)."""
    return [
        (int(calendar.searchsorted(start)), int(calendar.searchsorted(end, side="right")) - 1) for start, end in ranges
    ]


def members_on(spans: Spans, day: pd.Timestamp) -> list[str]:
    """Sorted codes with a range that contains `day`."""
    return sorted(code for code, ranges in spans.items() if any(start <= day <= end for start, end in ranges))


def bin_span(path: Path, calendar_days: int) -> tuple[int, int] | None:
    """(calendar index of the first value, number of values) from a .bin file's header and size, None without one."""
    if not path.exists():
        return None
    size = path.stat().st_size
    if size == 0 or size % _FLOAT.itemsize:
        raise QlibDataError(f"{path} is empty or truncated ({size} bytes)")
    start, count = np.fromfile(path, dtype=_FLOAT, count=1)[0], size // _FLOAT.itemsize - 1
    if not np.isfinite(start) or start < 0 or start != int(start):
        raise QlibDataError(f"{path}: start index {start} is not a calendar position")
    if int(start) + count > calendar_days:
        raise QlibDataError(
            f"{path}: {count} values from index {int(start)} run past the calendar's {calendar_days} days"
        )
    return int(start), count


def read_bin(path: Path, calendar_days: int) -> tuple[int, np.ndarray] | None:
    """(calendar index of the first value, values) of a whole .bin file as stored, or None when it does not exist."""
    span = bin_span(path, calendar_days)
    if span is None:
        return None
    return span[0], np.fromfile(path, dtype=_FLOAT, offset=_FLOAT.itemsize)


def read_bin_window(path: Path, calendar_days: int, lo: int, out: np.ndarray) -> None:
    """Fill `out` (calendar positions lo .. lo+len(out)-1) with the file's values there; the rest is left as is.

    Only that part of the file is read (a seek past the header), so a window costs its own length of I/O.
    """
    span = bin_span(path, calendar_days)
    if span is None:
        return
    first, last = max(span[0], lo), min(span[0] + span[1], lo + len(out))  # last exclusive
    if last > first:
        offset = (1 + first - span[0]) * _FLOAT.itemsize  # the header and the values before the window
        out[first - lo : last - lo] = np.fromfile(path, dtype=_FLOAT, count=last - first, offset=offset)


def read_fields(
    provider_uri: Path | str, codes: Sequence[str], fields: Sequence[str], window: pd.DatetimeIndex
) -> np.ndarray:
    """Fields of many instruments over `window`, consecutive days of the folder's calendar: float32
    (days, codes, fields), NaN where nothing is stored; only that window of each file is read."""
    calendar = read_calendar(provider_uri)
    out = np.full((len(window), len(codes), len(fields)), np.nan, dtype=np.float32)
    if len(window) == 0:
        return out
    lo = calendar.searchsorted(window[0])
    if not calendar[lo : lo + len(window)].equals(window):
        raise QlibDataError(f"{provider_uri}: {window[0].date()}..{window[-1].date()} is not a run of its calendar")
    for j, code in enumerate(codes):
        for k, field in enumerate(fields):
            read_bin_window(field_path(provider_uri, code, field), len(calendar), lo, out[:, j, k])
    return out


def stored_fields(provider_uri: Path | str, code: str) -> list[str]:
    """Names of the fields an instrument has files for, sorted."""
    folder = Path(provider_uri) / "features" / code.lower()
    return sorted(path.name.removesuffix(".day.bin") for path in folder.glob("*.day.bin")) if folder.is_dir() else []


def data_range(provider_uri: Path | str, code: str, calendar: pd.DatetimeIndex) -> tuple[int, int] | None:
    """Calendar positions of the first and last day in the instrument's close file, None without one."""
    stored = bin_span(field_path(provider_uri, code, "close"), len(calendar))  # the header, not the values
    if stored is None or stored[1] == 0:
        return None
    start, count = stored
    return start, start + count - 1


def write_field(
    provider_uri: Path | str, code: str, field: str, values: np.ndarray, start_index: int, *, unpublished: bool = False
) -> None:
    """Write one field of one instrument from calendar position `start_index` on.

    `unpublished`: the folder is a version no reader sees yet, so the file is replaced by unlinking
    it and writing a new one (never through a hard-linked inode) without the detour of a temporary file.
    """
    values = np.asarray(values)
    if values.ndim != 1:
        raise QlibDataError(f"{code} {field}: values must be one-dimensional, got shape {values.shape}")
    if int(start_index) != start_index or start_index < 0:
        raise QlibDataError(f"{code} {field}: start index {start_index} is not a calendar position")
    data = np.concatenate([[start_index], values]).astype(_FLOAT).tobytes()
    path = field_path(provider_uri, code, field)
    if not unpublished:
        _atomic_write(path, data)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    path.write_bytes(data)
