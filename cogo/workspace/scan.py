"""Walking the workspace root with lstat only (no file is opened, no symlink followed: what the walk lists is
only a candidate, read later through cogo.workspace.fs), and the sensor's
cursor: a modification-time watermark.

A new or changed file has a newer mtime than the watermark. A file moved or copied in with its old mtime,
and a deleted file, change their directory's mtime instead: such directories are reported and the asset
reconciles their whole subtree against the database.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cogo.workspace.fs import UnsafePath, check_regular, open_directory


@dataclass(frozen=True)
class Entry:
    path: str  # relative to the root, '/'-separated
    mtime_ns: int
    size: int
    kind: str  # file | dir | symlink | other
    refusal: str | None = None  # why a non-directory is never read (a symlink, a FIFO, a device...)
    links: int = 1  # names of a regular file: with several, new bytes are not taken from it


def walk(root: Path, below: str = "") -> Iterator[Entry]:
    """Every entry under root/below (below itself excluded), depth first. Each directory is opened from its
    parent's descriptor with O_NOFOLLOW, so a symlink is reported, never entered, even one swapped in for a
    directory in the middle of the walk."""
    try:
        fd = open_directory(root, below)
    except (OSError, UnsafePath):
        return
    if fd is None:
        return
    try:
        yield from _walk_directory(fd, below)
    finally:
        os.close(fd)


def _walk_directory(fd: int, rel: str) -> Iterator[Entry]:
    try:
        with os.scandir(fd) as it:
            items = list(it)
    except OSError:
        return
    for item in items:
        child = f"{rel}/{item.name}" if rel else item.name
        try:
            st = item.stat(follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            yield Entry(child, st.st_mtime_ns, 0, "dir")
            try:
                sub = os.open(item.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError:
                continue  # gone, unreadable, or a symlink since the listing: not entered
            try:
                yield from _walk_directory(sub, child)
            finally:
                os.close(sub)
            continue
        kind = "symlink" if stat.S_ISLNK(st.st_mode) else "file" if stat.S_ISREG(st.st_mode) else "other"
        try:
            check_regular(st)
        except UnsafePath as exc:
            yield Entry(child, st.st_mtime_ns, 0, kind, exc.reason)
        else:
            yield Entry(child, st.st_mtime_ns, st.st_size, kind, links=st.st_nlink)


@dataclass
class Cursor:
    """The newest mtime seen, and the paths seen at exactly that mtime (a file written within the same
    clock tick after a scan still counts as new)."""

    watermark_ns: int = -1
    at_watermark: set[str] = field(default_factory=set)

    @classmethod
    def from_json(cls, text: str | None) -> Cursor:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(int(data["w"]), set(data.get("at", [])))

    def to_json(self) -> str:
        return json.dumps({"w": self.watermark_ns, "at": sorted(self.at_watermark)}, separators=(",", ":"))

    @property
    def is_fresh(self) -> bool:
        return self.watermark_ns < 0


@dataclass
class Changes:
    files: list[Entry]  # new or modified files, symlinks and other non-regular entries
    dirs: list[Entry]  # directories whose listing changed: their subtree is reconciled
    cursor: Cursor
    root_changed: bool = False

    def __bool__(self) -> bool:
        return bool(self.files or self.dirs or self.root_changed)


def changes_since(root: Path, cursor: Cursor) -> Changes:
    """What changed under root since `cursor`, and the cursor to keep."""
    max_ns = cursor.watermark_ns
    at_max: set[str] = set(cursor.at_watermark)
    try:
        root_ns = os.stat(root).st_mtime_ns
    except FileNotFoundError:
        return Changes([], [], cursor)
    entries = list(walk(root))
    w = cursor.watermark_ns
    newer = [e for e in entries if e.mtime_ns > w or (e.mtime_ns == w and e.path not in cursor.at_watermark)]
    root_changed = root_ns > cursor.watermark_ns
    for ns, path in [(e.mtime_ns, e.path) for e in entries] + [(root_ns, "")]:
        if ns > max_ns:
            max_ns, at_max = ns, {path}
        elif ns == max_ns:
            at_max.add(path)
    files = [e for e in newer if e.kind != "dir"]
    dirs = _outermost([e for e in newer if e.kind == "dir"])
    covered = [d.path + "/" for d in dirs]
    files = [f for f in files if not any(f.path.startswith(c) for c in covered)]
    return Changes(files, dirs, Cursor(max_ns, at_max), root_changed and not cursor.is_fresh)


def _outermost(dirs: list[Entry]) -> list[Entry]:
    """Drop directories inside another listed one (its subtree is reconciled anyway)."""
    kept: list[Entry] = []
    for d in sorted(dirs, key=lambda e: e.path.count("/")):
        if not any(d.path.startswith(k.path + "/") for k in kept):
            kept.append(d)
    return kept
