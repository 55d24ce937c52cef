"""Removing one workspace file, never anything outside the workspace root.

The path is walked one component at a time from a descriptor of the root, with O_NOFOLLOW: a symlinked
directory anywhere on the way is refused rather than followed, so no row, however it reads, can make the
sweep delete outside the root (and a symlink swapped in mid-walk cannot either: nothing is resolved
twice). The last component is unlinked by its directory's descriptor; if it is itself a symlink, the
link (inside the root) is removed, never its target.
"""

from __future__ import annotations

import errno
import os
import stat
from enum import Enum
from pathlib import Path, PurePosixPath

from cogo.errors import CogoError


class UnsafePath(CogoError):
    """A path the sweep refuses to touch: absolute, with '..', or through a symlink or non-directory."""


class Removal(Enum):
    REMOVED = "removed"
    MISSING = "missing"  # already gone: the deletion is done all the same


def relative_parts(storage_path: str) -> list[str]:
    if not storage_path or "\x00" in storage_path:
        raise UnsafePath(f"{storage_path!r}: empty or contains NUL")
    pure = PurePosixPath(storage_path)
    if pure.is_absolute() or "\\" in storage_path:
        raise UnsafePath(f"{storage_path!r}: not relative to the workspace root")
    parts = storage_path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise UnsafePath(f"{storage_path!r}: empty, '.' or '..' component")
    return parts


def remove_under_root(root: Path, storage_path: str, *, prune_empty_dirs: bool = True) -> Removal:
    """Unlink root/storage_path. Raises UnsafePath for a path that leaves the root (or could), OSError
    for anything else the filesystem refuses (permissions, a directory where a file should be)."""
    parts = relative_parts(storage_path)
    fds: list[int] = [os.open(root, os.O_RDONLY | os.O_DIRECTORY)]
    try:
        for depth, part in enumerate(parts[:-1]):
            try:
                fds.append(os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fds[-1]))
            except FileNotFoundError:
                return Removal.MISSING
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    where = "/".join(parts[: depth + 1])
                    raise UnsafePath(f"{storage_path!r}: {where!r} is a symlink or not a directory") from None
                raise
        name = parts[-1]
        try:
            mode = os.lstat(name, dir_fd=fds[-1]).st_mode
        except FileNotFoundError:
            return Removal.MISSING
        if stat.S_ISDIR(mode):
            raise OSError(errno.EISDIR, f"{storage_path!r} is a directory, not a file")
        try:
            os.unlink(name, dir_fd=fds[-1])
        except FileNotFoundError:
            return Removal.MISSING
        if prune_empty_dirs:
            _prune(fds, parts)
        return Removal.REMOVED
    finally:
        for fd in fds:
            os.close(fd)


def _prune(fds: list[int], parts: list[str]) -> None:
    """Remove directories the unlink left empty, deepest first, keeping the organisation's own folder.
    rmdir only removes an empty directory, so a file written there meanwhile stops the pruning."""
    for depth in range(len(parts) - 2, 0, -1):
        try:
            os.rmdir(parts[depth], dir_fd=fds[depth])
        except OSError:
            return
