"""The workspace layout, {org}/{user}/{conversation}/files/{uploads|generated|attachments}/..., and the
checks that keep every read inside the root: no `..`, no symlink anywhere on the path, nothing that
resolves outside the root. A path that fails them is refused with a reason, never followed."""

from __future__ import annotations

import os
import re
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

KIND_DIRS = {"uploads": "upload", "generated": "generated", "attachments": "attachment"}
ORG_RE = re.compile(r"^org_[A-Za-z0-9_-]+$")
USER_RE = re.compile(r"^user_[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class WorkspacePath:
    storage_path: str  # relative to the root, '/'-separated
    organization_id: str
    user_id: str
    conversation_id: uuid.UUID
    kind: str  # upload | generated | attachment
    filename: str

    @property
    def below_files(self) -> str:
        """The path below files/ (e.g. 'uploads/report.pdf'): what knowledge sources' path_glob matches."""
        return self.storage_path.split("/", 4)[4]


class Refused(Exception):
    """The path is not registered; `pending` when it may be accepted later (a missing organisation...)."""

    def __init__(self, reason: str, *, organization_id: str | None = None, pending: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.organization_id = organization_id
        self.pending = pending


def parse_layout(storage_path: str) -> WorkspacePath:
    """The path's parts, or Refused. Pure: touches no disk."""
    if "\\" in storage_path or "\x00" in storage_path:
        raise Refused("path contains a backslash or NUL")
    pure = PurePosixPath(storage_path)
    if pure.is_absolute():
        raise Refused("absolute path: paths are relative to the workspace root")
    parts = pure.parts
    if any(p in ("..", ".") for p in parts) or ".." in storage_path.split("/"):
        raise Refused("path traversal ('..') is not allowed")
    org = parts[0] if parts else None
    if len(parts) < 6 or parts[3] != "files" or parts[4] not in KIND_DIRS:
        raise Refused(
            "does not fit the layout {org}/{user}/{conversation}/files/{uploads|generated|attachments}/<file>",
            organization_id=org if org and ORG_RE.match(org) else None,
        )
    org, user, conv = parts[0], parts[1], parts[2]
    if not ORG_RE.match(org):
        raise Refused(f"{org!r} is not an organisation id (org_...)")
    if not USER_RE.match(user):
        raise Refused(f"{user!r} is not a user id (user_...)", organization_id=org)
    try:
        conversation_id = uuid.UUID(conv)
    except ValueError:
        raise Refused(f"{conv!r} is not a conversation id (a UUID)", organization_id=org) from None
    return WorkspacePath(
        storage_path=str(pure),
        organization_id=org,
        user_id=user,
        conversation_id=conversation_id,
        kind=KIND_DIRS[parts[4]],
        filename=parts[-1],
    )


def check_on_disk(root: Path, wp: WorkspacePath) -> os.stat_result | None:
    """lstat of the file if it exists as a regular file inside the root with no symlink on the way;
    None if it does not exist; Refused otherwise. Every component is lstat'ed, so a symlinked directory
    anywhere on the path is caught even if it points back inside the root."""
    current = root
    parts = PurePosixPath(wp.storage_path).parts
    for i, part in enumerate(parts):
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            return None
        except NotADirectoryError:
            raise Refused("a component of the path is not a directory", organization_id=wp.organization_id) from None
        if stat.S_ISLNK(st.st_mode):
            where = "/".join(parts[: i + 1])
            raise Refused(f"symlink at {where}: symlinks are never followed", organization_id=wp.organization_id)
        last = i == len(parts) - 1
        if not last and not stat.S_ISDIR(st.st_mode):
            raise Refused("a component of the path is not a directory", organization_id=wp.organization_id)
        if last and not stat.S_ISREG(st.st_mode):
            raise Refused("not a regular file", organization_id=wp.organization_id)
    # Belt and braces: the real path must still be below the real root.
    if not str(current.resolve()).startswith(str(root.resolve()) + os.sep):
        raise Refused("resolves outside the workspace root", organization_id=wp.organization_id)
    return st
