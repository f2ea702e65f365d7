"""A refresh killed part-way leaves the previous folder fully readable; a re-run writes the same bytes."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from krnn_core.data import qlib_store
from krnn_core.data.qlib_runtime import init_qlib
from krnn_core.data.sources.qlib_folder import QlibFolderSource
from krnn_core.data.versioned_folder import current_version, next_version
from tests.fixtures import CN_TINY_2019, REPO_ROOT

BEFORE, AFTER = pd.Timestamp("2019-12-20"), pd.Timestamp("2019-12-31")

# runs in a child process: refresh the folder, SIGKILL itself at the chosen point
KILLED_REFRESH = """
import os, signal, sys
import pandas as pd
from pathlib import Path
from krnn_core.data import qlib_store
from krnn_core.data import versioned_folder
from krnn_core.data.sources.qlib_folder import QlibFolderSource

where, count = sys.argv[3], int(sys.argv[4])
module, name = (qlib_store, "write_field") if where == "write_field" else (versioned_folder, "_point")
original, calls = getattr(module, name), []

def dying(*args, **kwargs):
    calls.append(1)
    if len(calls) > count:
        os.kill(os.getpid(), signal.SIGKILL)
    return original(*args, **kwargs)

setattr(module, name, dying)
QlibFolderSource(Path(sys.argv[1])).refresh(Path(sys.argv[2]), pd.Timestamp("2019-12-31"))
"""


def _files(link: Path) -> dict[str, bytes]:
    root = link.resolve()
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def unkilled(tmp_path_factory) -> dict[str, bytes]:
    provider = tmp_path_factory.mktemp("unkilled") / "qlib_data"
    QlibFolderSource(CN_TINY_2019).refresh(provider, BEFORE)
    QlibFolderSource(CN_TINY_2019).refresh(provider, AFTER)
    return _files(provider)


@pytest.mark.parametrize(("where", "count"), [("write_field", 0), ("write_field", 40), ("_point", 0)])
def test_a_killed_refresh_leaves_the_old_folder_and_a_rerun_the_same_bytes(tmp_path, unkilled, where, count):
    provider = tmp_path / "qlib_data"
    QlibFolderSource(CN_TINY_2019).refresh(provider, BEFORE)
    before = _files(provider)
    child = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(KILLED_REFRESH), str(CN_TINY_2019), str(provider), where, str(count)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert _files(provider) == before
    init_qlib(provider)
    from qlib.data import D

    assert D.calendar()[-1] == BEFORE
    assert D.features(["SH600000"], ["$close"]).index.get_level_values("datetime")[-1] == BEFORE
    QlibFolderSource(CN_TINY_2019).refresh(provider, AFTER)
    assert _files(provider) == unkilled


def test_unchanged_files_are_hard_links_and_two_versions_are_kept(tmp_path):
    provider = tmp_path / "qlib_data"
    QlibFolderSource(CN_TINY_2019).refresh(provider, BEFORE)
    old = current_version(provider)
    with next_version(provider) as folder:
        qlib_store.write_field(
            folder,
            "SH600000",
            "close",
            qlib_store.read_fields(old, ["SH600000"], ["close"], qlib_store.read_calendar(old))[:, 0, 0],
            0,
        )
    new = current_version(provider)
    assert os.readlink(provider) == f".qlib_data.versions/{new.name}" and new != old
    assert (new / "features/sh600000/open.day.bin").stat().st_ino == (
        old / "features/sh600000/open.day.bin"
    ).stat().st_ino
    assert (new / "features/sh600000/close.day.bin").stat().st_ino != (
        old / "features/sh600000/close.day.bin"
    ).stat().st_ino
    with next_version(provider):
        pass
    assert sorted(p.name for p in (tmp_path / ".qlib_data.versions").iterdir()) == ["2", "3"]


def test_a_plain_folder_from_before_versioning_is_adopted(tmp_path):
    QlibFolderSource(CN_TINY_2019).refresh(tmp_path / "staging", BEFORE)
    (tmp_path / "staging").resolve().rename(tmp_path / "qlib_data")
    QlibFolderSource(CN_TINY_2019).refresh(tmp_path / "qlib_data", AFTER)
    assert (tmp_path / "qlib_data").is_symlink()
    assert qlib_store.read_calendar(tmp_path / "qlib_data")[-1] == AFTER
