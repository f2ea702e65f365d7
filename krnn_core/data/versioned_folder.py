"""A data folder published as a symlink to one of its versions, so a refresh replaces it atomically.

    qlib_data -> .qlib_data.versions/7

A refresh hard-links every file of the current version into a new one, replaces the files it
changes with new files (`qlib_store` writes aside and renames, or in a version not yet published
unlinks and writes anew: a linked inode is never modified), then points the symlink at the new
version with one `os.replace`. A process killed at any point leaves the symlink on the old, complete
version; the next refresh discards the half-built one.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

KEEP_VERSIONS = 2
_BUILDING = ".building"
# a file create or unlink costs ~0.6 ms on this project's VM disks and the latency overlaps across
# threads (3,248 files: 2.2 s in one thread, 0.9 s in four); the GIL is released during the syscalls
IO_THREADS = 4


def for_each_in_threads(function: Callable[[object], object], items: Iterable) -> list:
    """`[function(item) for item in items]` run on IO_THREADS threads; the first exception propagates."""
    with ThreadPoolExecutor(IO_THREADS) as pool:
        return list(pool.map(function, items))


def versions_dir(link: Path) -> Path:
    """The folder that holds the versions of `link`."""
    return link.parent / f".{link.name}.versions"


def current_version(link: Path) -> Path | None:
    """The version folder `link` points at, None before the first refresh."""
    link = Path(link)
    if link.is_symlink():
        return link.resolve()
    if link.is_dir():
        _adopt_plain_folder(link)
        return link.resolve()
    published = _numbered(versions_dir(link))
    if published:  # killed between adopting a plain folder and linking it
        _point(link, published[-1])
        return published[-1]
    return None


@contextmanager
def next_version(link: Path, rewritten: Collection[str] = ()) -> Iterator[Path]:
    """A new version seeded with hard links of the current one; published when the block succeeds.

    `rewritten`: subfolders (relative, e.g. "features/sh600000") the block writes anew; they start
    empty instead of linked, which spares a link and an unlink per file the block replaces.
    """
    link = Path(link)
    current = current_version(link)
    root = versions_dir(link)
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(f"*{_BUILDING}"):
        _remove_tree(stale)
    number = int(current.name) + 1 if current is not None else 1
    building = root / f"{number}{_BUILDING}"
    if current is not None:
        _link_tree(current, building, {Path(path) for path in rewritten})
    else:
        building.mkdir()
    yield building
    final = root / str(number)
    if final.exists():  # left by a run killed after its rename, before the link moved
        _remove_tree(final)
    building.rename(final)
    _point(link, final)
    for old in _numbered(root)[:-KEEP_VERSIONS]:
        _remove_tree(old)


def _link_tree(source: Path, target: Path, empty: set[Path]) -> None:
    """A copy of the folder tree `source` whose files are hard links, the second-level folders in `empty`
    created empty; one thread per second-level entry."""
    target.mkdir()
    subtrees = [path for path in source.iterdir() if path.is_dir()]
    for path in source.iterdir():
        if not path.is_dir():
            os.link(path, target / path.name)
    # features/ holds one folder per instrument: spread those, not the three top-level folders
    spread = [child for tree in subtrees for child in tree.iterdir()]
    for tree in subtrees:
        (target / tree.name).mkdir()
    for_each_in_threads(lambda child: _link_entry(child, target / child.relative_to(source), empty), spread)


def _link_entry(entry: Path, copy: Path, empty: set[Path]) -> None:
    """Hard-link one file, or copy one folder's tree as hard links (as an empty folder when it is in `empty`)."""
    if not entry.is_dir():
        os.link(entry, copy)
    elif Path(copy.parent.name, copy.name) in empty:
        copy.mkdir()
    else:
        shutil.copytree(entry, copy, copy_function=os.link)


def _remove_tree(folder: Path) -> None:
    """shutil.rmtree with the top two levels' subtrees removed in parallel first."""
    children = [child for tree in folder.iterdir() if tree.is_dir() for child in tree.iterdir()]
    for_each_in_threads(lambda child: shutil.rmtree(child) if child.is_dir() else child.unlink(), children)
    shutil.rmtree(folder)


def _point(link: Path, target: Path) -> None:
    """Make `link` point at `target` (relative) by renaming a new symlink over it."""
    fresh = link.parent / f".{link.name}.link"
    fresh.unlink(missing_ok=True)
    fresh.symlink_to(os.path.relpath(target, link.parent))
    os.replace(fresh, link)


def _numbered(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))


def _adopt_plain_folder(link: Path) -> None:
    """Turn a folder written before versioning into version 1 behind a symlink."""
    root = versions_dir(link)
    root.mkdir(parents=True, exist_ok=True)
    first = root / "1"
    link.rename(first)
    _point(link, first)
