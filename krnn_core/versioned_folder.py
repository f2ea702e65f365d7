"""A data folder published as a symlink to one of its versions, so a refresh replaces it atomically.

    qlib_data -> .qlib_data.versions/7

A refresh hard-links every file of the current version into a new one, replaces the files it
changes with new files (writers in `qlib_store` write aside and rename, so a linked inode is never
modified), then points the symlink at the new version with one `os.replace`. A process killed at
any point leaves the symlink on the old, complete version; the next refresh discards the half-built one.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

KEEP_VERSIONS = 2
_BUILDING = ".building"


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
def next_version(link: Path) -> Iterator[Path]:
    """A new version seeded with hard links of the current one; published when the block succeeds."""
    link = Path(link)
    current = current_version(link)
    root = versions_dir(link)
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(f"*{_BUILDING}"):
        shutil.rmtree(stale)
    number = int(current.name) + 1 if current is not None else 1
    building = root / f"{number}{_BUILDING}"
    if current is not None:
        shutil.copytree(current, building, copy_function=os.link)
    else:
        building.mkdir()
    yield building
    final = root / str(number)
    if final.exists():  # left by a run killed after its rename, before the link moved
        shutil.rmtree(final)
    building.rename(final)
    _point(link, final)
    for old in _numbered(root)[:-KEEP_VERSIONS]:
        shutil.rmtree(old)


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
