"""A float32 matrix of Alpha360 rows in a plain file, for training windows larger than memory.

Rows are read with ordinary file reads, never through a memory map: on this kernel a mapped file's
pages enter the process's resident memory in 2 MiB folios, so a few thousand random rows of a
mapped matrix make the whole file resident. Read, the bytes stay in the OS page cache, which the
kernel reclaims under pressure, and the process holds only the rows it asked for.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_FLOAT = np.dtype("<f4")
BLOCK_BYTES = 1 << 26  # 64 MiB: what one sequential read or write of rows holds in memory


@dataclass(frozen=True)
class RowFile:
    """A (rows, columns) float32 matrix stored row after row in `path`."""

    path: Path
    rows: int
    columns: int

    @classmethod
    def create(cls, path: Path, rows: int, columns: int) -> RowFile:
        """An empty (zero-filled) file of the matrix's size."""
        with open(path, "wb") as handle:
            handle.truncate(rows * columns * _FLOAT.itemsize)
        return cls(Path(path), rows, columns)

    @property
    def shape(self) -> tuple[int, int]:
        return self.rows, self.columns

    @property
    def dtype(self) -> np.dtype:
        return _FLOAT

    def __len__(self) -> int:
        return self.rows

    def write(self, start: int, block: np.ndarray) -> None:
        """Store `block` (k, columns) as rows start .. start + k - 1."""
        if block.ndim != 2 or block.shape[1] != self.columns or start + len(block) > self.rows:
            raise ValueError(f"{self.path}: cannot write {block.shape} at row {start} of {self.shape}")
        with open(self.path, "r+b") as handle:
            handle.seek(start * self._row_bytes)
            np.ascontiguousarray(block, dtype=_FLOAT).tofile(handle)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows start .. stop - 1 as a (stop - start, columns) array; a stop past the end is the end, as in a slice."""
        stop = min(stop, self.rows)
        count = (stop - start) * self.columns
        values = np.fromfile(self.path, dtype=_FLOAT, count=count, offset=start * self._row_bytes)
        if len(values) != count:
            raise ValueError(f"{self.path} is shorter than its {self.rows} rows: rows {start}..{stop - 1} are missing")
        return values.reshape(-1, self.columns)

    def take(self, positions: np.ndarray, out: np.ndarray) -> np.ndarray:
        """The rows at `positions`, in that order, read into `out` (len(positions), columns) float32."""
        row_bytes = self._row_bytes
        with open(self.path, "rb") as handle:
            fd = handle.fileno()
            for k, position in enumerate(positions.tolist()):
                if os.preadv(fd, [out[k]], position * row_bytes) != row_bytes:
                    raise ValueError(f"{self.path} is shorter than its {self.rows} rows: row {position} is missing")
        return out

    def blocks(self) -> Iterator[tuple[int, int]]:
        """(start, stop) of consecutive row ranges of about BLOCK_BYTES each, covering every row."""
        step = max(1, BLOCK_BYTES // self._row_bytes)
        for start in range(0, self.rows, step):
            yield start, min(start + step, self.rows)

    def columns_block(self, first: int, last: int) -> np.ndarray:
        """Columns first .. last - 1 of every row, as a (rows, last - first) array."""
        out = np.empty((self.rows, last - first), dtype=_FLOAT)
        for start, stop in self.blocks():
            out[start:stop] = self.read(start, stop)[:, first:last]
        return out

    @property
    def _row_bytes(self) -> int:
        return self.columns * _FLOAT.itemsize
