"""A small good CSV feed and the broken files that must not harm what it already wrote, for any test to reuse.

The good feed holds three instruments over FEED_DAYS; a test refreshes it through GOOD_THROUGH, then
drops one case's file into the feed folder (replacing the good file of the same name, if any) and
refreshes through FEED_DAYS[-1]. A refused case must raise an error holding every one of its words;
a quarantined case must add a quarantine row holding them (file, instrument, date, field, reason)
and write the bar as missing.
"""

from __future__ import annotations

from typing import NamedTuple

import pandas as pd

FEED_DAYS = pd.bdate_range("2024-03-01", periods=8)  # 03-01 .. 03-12
GOOD_THROUGH = FEED_DAYS[5]
NEW_DAY = FEED_DAYS[6]  # the first day the broken refresh adds: line 8 of a file (the header is line 1)
HEADER = "date,open,high,low,close,volume,amount\n"
CODES = ("SH600001", "SH600002", "SZ000003")


class BrokenCsv(NamedTuple):
    """One broken feed file: its case name, file name, bytes, and the words its error or quarantine row must hold."""

    name: str
    file_name: str
    content: bytes
    words: tuple[str, ...]


def _rows(code: str, replace: dict[pd.Timestamp, str] | None = None) -> list[str]:
    """The good feed's lines of one instrument (no header), a day's line swapped where `replace` says."""
    base = 10.0 + CODES.index(code)
    lines = []
    for i, day in enumerate(FEED_DAYS):
        close, volume = base + 0.1 * i, 1000 + 10 * i
        prices = f"{close - 0.05:.2f},{close + 0.2:.2f},{close - 0.2:.2f},{close:.2f}"
        lines.append((replace or {}).get(day, f"{day:%Y-%m-%d},{prices},{volume},{close * volume:.1f}"))
    return lines


def good_csv_feed() -> dict[str, bytes]:
    """File name -> bytes of the good feed; SZ000003's bar of FEED_DAYS[2] has high below low (quarantined)."""
    bad_bar = {FEED_DAYS[2]: f"{FEED_DAYS[2]:%Y-%m-%d},12.2,11.9,12.1,12.2,1020,12444.0"}
    files = {code: _rows(code, bad_bar if code == "SZ000003" else None) for code in CODES}
    return {f"{code}.csv": (HEADER + "".join(line + "\n" for line in lines)).encode() for code, lines in files.items()}


def _sh600001(new_day_line: str | None = None, header: str = HEADER, extra: str = "") -> bytes:
    """SH600001's good file, its NEW_DAY line replaced by `new_day_line`, then `extra` lines appended."""
    lines = _rows("SH600001", {NEW_DAY: new_day_line} if new_day_line is not None else None)
    return (header + "".join(line + "\n" for line in lines) + extra).encode()


_DAY = f"{NEW_DAY:%Y-%m-%d}"
_FILE = "SH600001.csv"


def broken_csv_cases() -> list[BrokenCsv]:
    """Files a refresh must refuse, naming the file (and the line, column or value where there is one)."""
    good = good_csv_feed()[_FILE]
    return [
        BrokenCsv("empty file", _FILE, b"", (_FILE, "line 1", "empty file")),
        BrokenCsv("header only", _FILE, HEADER.encode(), (_FILE, "no rows after the header")),
        BrokenCsv("semicolons", _FILE, good.replace(b",", b";"), (_FILE, "line 1", "not comma-separated")),
        BrokenCsv("tabs", _FILE, good.replace(b",", b"\t"), (_FILE, "line 1", "not comma-separated")),
        BrokenCsv(
            "missing column", _FILE, good.replace(b",volume", b",vol"), (_FILE, "line 1", "missing columns volume")
        ),
        BrokenCsv(
            "repeated column",
            _FILE,
            _sh600001(header=HEADER.replace("amount", "close")),
            (_FILE, "line 1", "column close appears more than once"),
        ),
        BrokenCsv(
            "an HTML error page",
            _FILE,
            b"<html><body><h1>503 Service Unavailable</h1></body></html>\n",
            (_FILE, "line 1", "missing columns"),
        ),
        BrokenCsv(
            "date not YYYY-MM-DD",
            _FILE,
            _sh600001(f"{NEW_DAY:%Y/%m/%d},10.6,10.8,10.4,10.6,1060,11236.0"),
            (_FILE, "line 8", f"{NEW_DAY:%Y/%m/%d}", "not YYYY-MM-DD"),
        ),
        BrokenCsv(
            "date with a time",
            _FILE,
            _sh600001(f"{_DAY} 15:00:00,10.6,10.8,10.4,10.6,1060,11236.0"),
            (_FILE, "line 8", f"{_DAY} 15:00:00"),
        ),
        BrokenCsv("empty date", _FILE, _sh600001(",10.6,10.8,10.4,10.6,1060,11236.0"), (_FILE, "line 8", "date ''")),
        BrokenCsv(
            "duplicate date",
            _FILE,
            _sh600001(extra=f"{_DAY},10.6,10.8,10.4,10.6,1060,11236.0\n"),
            (_FILE, "line 10", f"duplicate date {_DAY}"),
        ),
        BrokenCsv(
            "price not a number",
            _FILE,
            _sh600001(f"{_DAY},10.6,10.8,10.4,abc,1060,11236.0"),
            (_FILE, "line 8", "close 'abc' is not a number"),
        ),
        BrokenCsv(
            "volume with a unit",
            _FILE,
            _sh600001(f"{_DAY},10.6,10.8,10.4,10.6,1k,11236.0"),
            (_FILE, "line 8", "volume '1k' is not a number"),
        ),
        BrokenCsv(
            "a row with an extra cell",
            _FILE,
            _sh600001(f"{_DAY},10.6,10.8,10.4,10.6,1060,11236.0,7"),
            (_FILE, "line 8", "saw 8"),
        ),
        BrokenCsv("binary garbage", _FILE, bytes(range(256)) * 4, (_FILE, "not UTF-8")),
        BrokenCsv("Latin-1 text", _FILE, good.replace(b"amount", "montant_\u00e9".encode("latin-1")), (_FILE, "UTF-8")),
        BrokenCsv(
            "a copy's file name", "SH600001 copy (2).csv", good, ("SH600001 copy (2).csv", "not an instrument code")
        ),
        BrokenCsv("a file name without a code", "prices.csv", good, ("prices.csv", "not an instrument code")),
        BrokenCsv(
            "a second file for a code", "sh600001.csv", good, ("sh600001.csv", "second file for SH600001", _FILE)
        ),
    ]


def quarantined_csv_cases() -> list[BrokenCsv]:
    """Files whose bad values a refresh quarantines: the words of the quarantine row it must write."""
    where = (_FILE, "SH600001", _DAY)
    return [
        BrokenCsv(
            "negative volume",
            _FILE,
            _sh600001(f"{_DAY},10.6,10.8,10.4,10.6,-1060,11236.0"),
            (*where, "volume", "negative volume"),
        ),
        BrokenCsv(
            "high below low",
            _FILE,
            _sh600001(f"{_DAY},10.6,10.2,10.4,10.6,1060,11236.0"),
            (*where, "high", "high below open or close"),
        ),
        BrokenCsv(
            "NaN close",
            _FILE,
            _sh600001(f"{_DAY},10.6,10.8,10.4,NaN,1060,11236.0"),
            (*where, "close", "missing or not finite"),
        ),
        BrokenCsv(
            "infinite close",
            _FILE,
            _sh600001(f"{_DAY},10.6,10.8,10.4,inf,1060,11236.0"),
            (*where, "close", "missing or not finite"),
        ),
        BrokenCsv(
            "zero open", _FILE, _sh600001(f"{_DAY},0,10.8,10.4,10.6,1060,11236.0"), (*where, "open", "non-positive")
        ),
        BrokenCsv("a row cut short", _FILE, _sh600001(f"{_DAY},10.6,10.8"), (*where, "close", "missing or not finite")),
        BrokenCsv(
            "amount in thousands",
            _FILE,
            _sh600001(f"{_DAY},10.6,10.8,10.4,10.6,1060,11.236"),
            (*where, "vwap", "vwap outside low-high"),
        ),
        BrokenCsv(
            "a row dated in 2099",
            _FILE,
            _sh600001(extra="2099-01-05,10.6,10.8,10.4,10.6,1060,11236.0\n"),
            (_FILE, "SH600001", "2099-01-05", "date", "dated after the last closed session"),
        ),
    ]
