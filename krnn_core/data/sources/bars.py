"""Conventions every real feed is brought to before its bars are screened and written."""

from __future__ import annotations

import numpy as np

from krnn_core.data.quarantine import QuarantinedValue

VWAP_TOLERANCE = 1e-3  # relative: float32 prices and rounded amounts put a true vwap this far outside low-high


def derive_vwap(bars: dict[str, np.ndarray]) -> bool:
    """Set vwap = amount / volume where the feed has an amount and no vwap; False without one.

    Qlib's convention: prices are adjusted (raw x factor), volume too (raw / factor), amount is
    currency; so amount / volume = raw average price x factor, the adjusted vwap, with no further
    factor. Days without volume get no vwap.
    """
    if "vwap" in bars:
        return True
    if "amount" not in bars:
        return False
    with np.errstate(divide="ignore", invalid="ignore"):
        vwap = np.where(bars["volume"] > 0, bars["amount"] / bars["volume"], np.nan)
    bars["vwap"] = vwap.astype(np.float32)
    return True


def vwap_outside_range(code: str, days, bars: dict[str, np.ndarray], source_file: str) -> list[QuarantinedValue]:
    """Blank vwap values outside [low, high]: a wrong amount or volume unit shows up here."""
    if "vwap" not in bars:
        return []
    vwap, low, high = bars["vwap"], bars["low"], bars["high"]
    with np.errstate(invalid="ignore"):
        bad = (vwap < low * (1 - VWAP_TOLERANCE)) | (vwap > high * (1 + VWAP_TOLERANCE))
    rows = [
        QuarantinedValue(source_file, code, days[i], "vwap", float(vwap[i]), "vwap outside low-high")
        for i in np.flatnonzero(bad)
    ]
    vwap[bad] = np.nan
    return rows


def blank_suspended(bars: dict[str, np.ndarray]) -> int:
    """Turn zero-volume bars (a suspension with carried prices) into missing bars; return how many."""
    suspended = bars["volume"] == 0
    for values in bars.values():
        values[suspended] = np.nan
    return int(suspended.sum())
