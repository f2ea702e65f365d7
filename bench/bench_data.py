"""Time a full import of the shared CSI300 snapshot and a one-day incremental refresh of it.

Usage: .venv/bin/python bench/bench_data.py [--source ../shared/data/cn_csi300_2015_2019]
The last line printed is JSON: {"full_import_s": .., "one_day_refresh_s": .., "instruments": ..}.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from krnn_core.data import qlib_store
from krnn_core.data.sources.qlib_folder import QlibFolderSource
from shared_data import CSI300_2015_2019


def bench(source_path: Path) -> dict[str, float | int]:
    """Import the folder through its last day, then through its second-to-last day and sync the last one."""
    source = QlibFolderSource(source_path)
    last_two = qlib_store.read_calendar(source_path)[-2:]
    with tempfile.TemporaryDirectory(prefix="bench-data-") as scratch:
        started = time.perf_counter()
        report = source.refresh(Path(scratch) / "full" / "qlib_data", last_two[-1])
        full_import_s = time.perf_counter() - started
        source.refresh(Path(scratch) / "daily" / "qlib_data", last_two[0])
        started = time.perf_counter()
        source.refresh(Path(scratch) / "daily" / "qlib_data", last_two[-1])
        one_day_refresh_s = time.perf_counter() - started
    return {
        "full_import_s": round(full_import_s, 3),
        "one_day_refresh_s": round(one_day_refresh_s, 3),
        "instruments": report.instruments_written,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=CSI300_2015_2019)
    print(json.dumps(bench(parser.parse_args().source)))


if __name__ == "__main__":
    main()
