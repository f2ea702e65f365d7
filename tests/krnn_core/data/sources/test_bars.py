"""Feed conventions: vwap from amount, vwap screening, suspensions as missing bars."""

import numpy as np
import pandas as pd

from krnn_core.data.sources.bars import blank_suspended, derive_vwap, vwap_outside_range


def _bars(**fields: list[float]) -> dict[str, np.ndarray]:
    return {name: np.asarray(values, dtype=np.float32) for name, values in fields.items()}


def test_vwap_from_amount_is_the_adjusted_average_price():
    # raw: 1,000 shares for 10,000 at prices 9.5-10.5; a 2-for-1 factor doubles prices and halves volume
    bars = _bars(low=[19.0, 19.0], high=[21.0, 21.0], volume=[500.0, 0.0], amount=[10_000.0, 0.0], factor=[2.0, 2.0])
    assert derive_vwap(bars)
    np.testing.assert_allclose(bars["vwap"][:1], [20.0])
    assert np.isnan(bars["vwap"][1])  # no volume, no vwap


def test_a_feed_without_amount_has_no_vwap_and_says_so():
    bars = _bars(low=[9.0], high=[11.0], volume=[100.0])
    assert not derive_vwap(bars)
    assert "vwap" not in bars


def test_a_vwap_outside_low_high_is_quarantined_and_blanked():
    days = pd.bdate_range("2024-03-01", periods=2)
    bars = _bars(low=[9.0, 9.0], high=[11.0, 11.0], vwap=[10.0, 20.0])
    rows = vwap_outside_range("SH600000", days, bars, "SH600000.csv")
    assert [(row.datetime, row.field, row.value) for row in rows] == [(days[1], "vwap", 20.0)]
    assert bars["vwap"][0] == 10.0 and np.isnan(bars["vwap"][1])


def test_zero_volume_bars_become_missing_bars():
    bars = _bars(close=[10.0, 10.0, 10.5], volume=[100.0, 0.0, 80.0])
    assert blank_suspended(bars) == 1
    assert np.isnan(bars["close"][1]) and np.isnan(bars["volume"][1]) and bars["close"][2] == 10.5
