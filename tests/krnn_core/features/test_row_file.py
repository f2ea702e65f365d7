"""RowFile: rows written in blocks read back exactly, by range, by position and by column; a short file is named."""

import numpy as np
import pytest

from krnn_core.features import row_file
from krnn_core.features.row_file import RowFile


@pytest.fixture
def matrix(tmp_path, monkeypatch):
    """A 1000 x 7 matrix with NaN written in uneven blocks, read back in blocks of 64 rows."""
    monkeypatch.setattr(row_file, "BLOCK_BYTES", 64 * 7 * 4)
    values = np.random.default_rng(0).normal(size=(1000, 7)).astype(np.float32)
    values[::13, 2] = np.nan
    rows = RowFile.create(tmp_path / "m.f32", *values.shape)
    for start in range(0, 1000, 333):
        rows.write(start, values[start : start + 333])
    return rows, values


def test_ranges_positions_and_columns_read_back_what_was_written(matrix):
    rows, values = matrix
    assert rows.shape == values.shape and rows.dtype == np.float32
    np.testing.assert_array_equal(rows.read(0, 1000), values)
    np.testing.assert_array_equal(rows.read(990, 2000), values[990:])  # a stop past the end, as a slice
    positions = np.array([999, 0, 500, 500, 13])
    np.testing.assert_array_equal(rows.take(positions, np.empty((5, 7), np.float32)), values[positions])
    np.testing.assert_array_equal(rows.columns_block(2, 5), values[:, 2:5])
    assert [stop - start for start, stop in rows.blocks()] == [64] * 15 + [40]


def test_a_truncated_file_is_named_in_the_error(matrix):
    rows, _ = matrix
    with open(rows.path, "r+b") as handle:
        handle.truncate(500 * 7 * 4)
    with pytest.raises(ValueError, match=f"{rows.path} is shorter than its 1000 rows: row 700"):
        rows.take(np.array([3, 700]), np.empty((2, 7), np.float32))
    with pytest.raises(ValueError, match=f"{rows.path} is shorter"):
        rows.columns_block(0, 1)


def test_a_block_that_does_not_fit_is_refused(matrix):
    rows, values = matrix
    with pytest.raises(ValueError, match="cannot write"):
        rows.write(990, values[:20])
