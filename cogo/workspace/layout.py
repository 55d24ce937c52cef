"""The workspace layout, {org}/{user}/{conversation}/files/{uploads|generated|attachments}/...: what a path
says about its organisation, user, conversation and kind. A path that does not fit is refused with a reason;
the disk is reached only through cogo.workspace.fs."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from cogo.workspace.fs import UnsafePath, relative_parts

KIND_DIRS = {"uploads": "upload", "generated": "generated", "attachments": "attachment"}
ORG_RE = re.compile(r"org_[A-Za-z0-9_-]+")  # used with fullmatch ('$' would take a trailing newline)
USER_RE = re.compile(r"user_[A-Za-z0-9_-]+")


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
    try:
        parts = relative_parts(storage_path)
    except UnsafePath as exc:
        raise Refused(exc.reason) from None
    org = parts[0] if parts else None
    if len(parts) < 6 or parts[3] != "files" or parts[4] not in KIND_DIRS:
        raise Refused(
            "does not fit the layout {org}/{user}/{conversation}/files/{uploads|generated|attachments}/<file>",
            organization_id=org if org and ORG_RE.fullmatch(org) else None,
        )
    org, user, conv = parts[0], parts[1], parts[2]
    if not ORG_RE.fullmatch(org):
        raise Refused(f"{org!r} is not an organisation id (org_...)")
    if not USER_RE.fullmatch(user):
        raise Refused(f"{user!r} is not a user id (user_...)", organization_id=org)
    try:
        conversation_id = uuid.UUID(conv)
    except ValueError:
        raise Refused(f"{conv!r} is not a conversation id (a UUID)", organization_id=org) from None
    if str(conversation_id) != conv:
        # One folder name per conversation: uuid.UUID also takes braces, urn:, upper case and no hyphens.
        raise Refused(f"{conv!r} is not a conversation id in its canonical form", organization_id=org)
    return WorkspacePath(
        storage_path=storage_path,
        organization_id=org,
        user_id=user,
        conversation_id=conversation_id,
        kind=KIND_DIRS[parts[4]],
        filename=parts[-1],
    )
