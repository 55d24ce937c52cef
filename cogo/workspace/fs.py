"""Every read, stat and removal of a workspace file goes through here, and none of them can leave the root.

A path is walked one component at a time from a descriptor of the root, each directory opened relative to
its parent's descriptor with O_NOFOLLOW: a symlink anywhere on the way is refused, never followed, and a
directory swapped for a symlink between two steps is caught by the step that opens it (nothing is resolved
twice). The file itself is opened with O_NOFOLLOW and checked on its descriptor: a regular file with a
single name, since a hard link can give a file from outside the root a name inside it.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import BinaryIO

from cogo.errors import CogoError

# Longer paths could not be indexed by Postgres's btree (the unique index on files.storage_path).
MAX_PATH_BYTES = 1024
MAX_NAME_BYTES = 255  # what Linux filesystems allow for one name


class UnsafePath(CogoError):
    """A path that is not a plain relative path, or that leads through a symlink, a non-directory, to
    something that is not a regular file, or to a file with more than one name."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FileTooLarge(CogoError):
    """The file is larger than a reader will take."""


class ContentChanged(CogoError):
    """The bytes on disk are not the ones registered (their sha256 differs): not read until registered again."""


class Removal(Enum):
    REMOVED = "removed"
    MISSING = "missing"  # already gone: the deletion is done all the same


def relative_parts(storage_path: str) -> list[str]:
    """The components of a storage path, or UnsafePath. The one rule for a path relative to the workspace
    root, which the database's `cogo_safe_relative_path` states again for the `files` table: non-empty
    UTF-8 of at most MAX_PATH_BYTES, no NUL or backslash, '/'-separated components none of which is empty,
    '.' or '..' (so neither absolute nor ending in '/') or longer than MAX_NAME_BYTES. Any other name is fine:
    `notes...v2.txt`, `..x`."""
    if "\x00" in storage_path or "\\" in storage_path:
        raise UnsafePath("unsafe path: path contains a backslash or NUL")
    try:
        size = len(storage_path.encode("utf-8"))
    except UnicodeEncodeError:
        raise UnsafePath("unsafe path: path contains bytes that are not UTF-8") from None
    if size > MAX_PATH_BYTES:
        raise UnsafePath(f"unsafe path: path is longer than {MAX_PATH_BYTES} bytes")
    if storage_path.startswith("/"):
        raise UnsafePath("unsafe path: absolute path (paths are relative to the workspace root)")
    parts = storage_path.split("/")
    if any(part in (".", "..") for part in parts):
        raise UnsafePath("unsafe path: path traversal ('.' or '..' component)")
    if "" in parts:
        raise UnsafePath("unsafe path: empty path or empty component")
    if any(len(part.encode("utf-8")) > MAX_NAME_BYTES for part in parts):
        raise UnsafePath(f"unsafe path: a name longer than {MAX_NAME_BYTES} bytes")
    return parts


@contextmanager
def _directories(root: Path, parts: list[str]) -> Iterator[list[int] | None]:
    """Descriptors of the root and of each directory above the last component; None when one is missing."""
    fds = [os.open(root, os.O_RDONLY | os.O_DIRECTORY)]
    try:
        for depth, part in enumerate(parts[:-1]):
            try:
                fds.append(os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fds[-1]))
            except FileNotFoundError:
                yield None
                return
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    where = "/".join(parts[: depth + 1])
                    raise UnsafePath(f"symlink or non-directory at {where}: symlinks are never followed") from None
                raise
        yield fds
    finally:
        for fd in fds:
            os.close(fd)


def open_directory(root: Path, relative: str) -> int | None:
    """A descriptor of root/relative ('' for the root itself) reached through plain directories; None when it
    does not exist; UnsafePath through a symlink. The caller closes it."""
    if not relative:
        return os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    parts = relative_parts(relative)
    with _directories(root, [*parts, "-"]) as fds:
        return None if fds is None else os.dup(fds[-1])


def lstat(root: Path, storage_path: str) -> os.stat_result | None:
    """The entry's own lstat (a symlink's, not its target's), None when it does not exist; UnsafePath when
    the way to it is not plain directories."""
    parts = relative_parts(storage_path)
    with _directories(root, parts) as fds:
        if fds is None:
            return None
        try:
            return os.stat(parts[-1], dir_fd=fds[-1], follow_symlinks=False)
        except FileNotFoundError:
            return None


def check_regular(st: os.stat_result) -> None:
    """UnsafePath unless `st` is a regular file (not a symlink, FIFO, socket or device)."""
    if stat.S_ISLNK(st.st_mode):
        raise UnsafePath("symlink: symlinks are never followed")
    if not stat.S_ISREG(st.st_mode):
        raise UnsafePath("not a regular file")


def check_file(st: os.stat_result) -> None:
    """UnsafePath unless `st` is a regular file with a single name: another name could be outside the root, so
    bytes not registered yet are never taken from a file with several."""
    check_regular(st)
    if st.st_nlink > 1:
        raise UnsafePath(f"hard link ({st.st_nlink} names): a file with several names is not registered")


def open_file(root: Path, storage_path: str, *, single_name: bool = True) -> BinaryIO:
    """The file opened for reading; FileNotFoundError when it is gone, UnsafePath when it is not a plain
    regular file reached through plain directories, or (`single_name`) when it has several names."""
    parts = relative_parts(storage_path)
    with _directories(root, parts) as fds:
        if fds is None:
            raise FileNotFoundError(errno.ENOENT, "no such file in the workspace", storage_path)
        try:
            fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fds[-1])
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UnsafePath("symlink: symlinks are never followed") from None
            raise
    handle = os.fdopen(fd, "rb")
    try:
        (check_file if single_name else check_regular)(os.fstat(handle.fileno()))
    except BaseException:
        handle.close()
        raise
    return handle


def read_registered(root: Path, storage_path: str, sha256: str | None, *, max_bytes: int) -> bytes:
    """The file's bytes, only if their sha256 is the registered one: whatever was swapped in after the
    registration (by any means) is never extracted. FileTooLarge past `max_bytes`, ContentChanged on a
    different hash, and whatever open_file raises. A second name does not matter here: the hash decides."""
    with open_file(root, storage_path, single_name=False) as f:
        size = os.fstat(f.fileno()).st_size
        if size > max_bytes:
            raise FileTooLarge(f"{size} bytes is over the {max_bytes}-byte limit")
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise FileTooLarge(f"over the {max_bytes}-byte limit (grew while read)")
    if sha256 is None or hashlib.sha256(data).hexdigest() != sha256:
        raise ContentChanged("content differs from its registration: waiting for the next workspace scan")
    return data


def remove(root: Path, storage_path: str, *, prune_empty_dirs: bool = True) -> Removal:
    """Unlink root/storage_path (a symlink there is removed itself, never its target). UnsafePath for a way
    through anything but plain directories, OSError for what the filesystem refuses."""
    parts = relative_parts(storage_path)
    with _directories(root, parts) as fds:
        if fds is None:
            return Removal.MISSING
        name = parts[-1]
        try:
            if stat.S_ISDIR(os.stat(name, dir_fd=fds[-1], follow_symlinks=False).st_mode):
                raise OSError(errno.EISDIR, f"{storage_path!r} is a directory, not a file")
            os.unlink(name, dir_fd=fds[-1])
        except FileNotFoundError:
            return Removal.MISSING
        if prune_empty_dirs:
            _prune(fds, parts)
        return Removal.REMOVED


def _prune(fds: list[int], parts: list[str]) -> None:
    """Remove directories the unlink left empty, deepest first, keeping the organisation's own folder.
    rmdir only removes an empty directory, so a file written there meanwhile stops the pruning."""
    for depth in range(len(parts) - 2, 0, -1):
        try:
            os.rmdir(parts[depth], dir_fd=fds[depth])
        except OSError:
            return
