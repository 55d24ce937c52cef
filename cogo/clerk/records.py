"""Clerk's JSON objects (webhook `data`, Backend API list items) as flat rows for the guarded upserts.

Times stay Clerk's millisecond epochs here; the SQL converts them at the edge (to_timestamp(ms / 1000.0)).
A row that cannot be built raises RecordError with the reason, which the caller records as the failure.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

Kind = Literal["organization", "user", "membership"]
Operation = Literal["upsert", "delete"]

# Webhook event type -> (kind, operation). Other types (session.*, email.*, ...) are stored and ignored.
EVENT_TYPES: dict[str, tuple[Kind, Operation]] = {
    "user.created": ("user", "upsert"),
    "user.updated": ("user", "upsert"),
    "user.deleted": ("user", "delete"),
    "organization.created": ("organization", "upsert"),
    "organization.updated": ("organization", "upsert"),
    "organization.deleted": ("organization", "delete"),
    "organizationMembership.created": ("membership", "upsert"),
    "organizationMembership.updated": ("membership", "upsert"),
    "organizationMembership.deleted": ("membership", "delete"),
}


class RecordError(ValueError):
    """A Clerk object that lacks what a row needs."""


@dataclass(frozen=True)
class Change:
    """One change to one Clerk object: an upsert carries the row, a delete the id (and, for a membership,
    its organization and user ids). `at_ms` is when it happened, used for deleted_at."""

    kind: Kind
    operation: Operation
    id: str
    row: dict[str, Any]
    updated_ms: int | None
    at_ms: int | None


def normalize_role(role: str | None) -> str:
    """One form for roles: webhook/API `org:admin` and token `admin` are both `admin`; Clerk's legacy
    `basic_member` is `member`."""
    if not role:
        return "member"
    bare = role.removeprefix("org:")
    return "member" if bare == "basic_member" else bare


def _required_id(data: dict[str, Any], prefix: str) -> str:
    value = data.get("id")
    if not isinstance(value, str) or not value.startswith(prefix):
        raise RecordError(f"id {value!r} is not a Clerk {prefix}… id")
    return value


# The Clerk times the mirror accepts, in milliseconds since the epoch. Clerk's own stamps cannot predate 2000;
# a created_at can (an import may set it), so only the epoch bounds it. More than a day ahead of our clock is a
# bug or a forgery: such an updated_at would make every later update look stale, and the row would not even
# load into a Python datetime.
EARLIEST_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
EARLIEST_CREATED_MS = 0
AHEAD_MS = 86_400_000
# Where an event carries them: the envelope's `timestamp`, and these of its `data` object.
TIME_FIELDS = ("updated_at", "created_at", "last_sign_in_at")


def checked_ms(value: Any, field: str, now_ms: int | None = None) -> int | None:
    """A Clerk time as integer milliseconds (None when absent); RecordError when it is not a number in range."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not _finite(value):
        raise RecordError(f"{field} {value!r} is not a millisecond epoch")
    earliest = EARLIEST_CREATED_MS if field == "created_at" else EARLIEST_MS
    latest = (int(time.time() * 1000) if now_ms is None else now_ms) + AHEAD_MS
    if not earliest <= value <= latest:
        since = datetime.fromtimestamp(earliest / 1000, tz=UTC).date().isoformat()
        raise RecordError(f"{field} {value!r} is not between {since} and a day from now")
    return int(value)


def _finite(value: int | float) -> bool:
    return isinstance(value, int) or math.isfinite(value)  # an int has no NaN and may be too big for a float


def _int32(value: Any, field: str) -> int | None:
    """An integer column's value (None when absent or not an integer); RecordError past what it can hold."""
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    if not -(2**31) <= value < 2**31:
        raise RecordError(f"{field} {value} is out of range")
    return value


def check_event_times(payload: dict[str, Any], now_ms: int | None = None) -> None:
    """RecordError when a time the mirror would read from this event is not a number in the accepted range."""
    checked_ms(payload.get("timestamp"), "timestamp", now_ms)
    data = _object(payload.get("data"))
    for field in TIME_FIELDS:
        checked_ms(data.get(field), field, now_ms)


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def primary_email(data: dict[str, Any]) -> str | None:
    """The address whose id `primary_email_address_id` names (not simply the first one listed)."""
    primary_id = data.get("primary_email_address_id")
    for address in data.get("email_addresses") or []:
        if isinstance(address, dict) and address.get("id") == primary_id and primary_id:
            return address.get("email_address")
    return None


def user_row(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": _required_id(data, "user_"),
        "email": primary_email(data),
        "first_name": data.get("first_name"),
        "last_name": data.get("last_name"),
        "username": data.get("username"),
        "image_url": data.get("image_url") or data.get("profile_image_url"),
        "public_metadata": _object(data.get("public_metadata")),
        "last_sign_in_ms": checked_ms(data.get("last_sign_in_at"), "last_sign_in_at"),
        "created_ms": checked_ms(data.get("created_at"), "created_at"),
        "updated_ms": _required_ms(data),
    }


def organization_row(data: dict[str, Any]) -> dict[str, Any]:
    name = data.get("name")
    if not isinstance(name, str):
        raise RecordError("organization has no name")
    max_members = data.get("max_allowed_memberships")
    return {
        "id": _required_id(data, "org_"),
        "name": name,
        "slug": data.get("slug"),
        "image_url": data.get("image_url") or data.get("logo_url"),
        "public_metadata": _object(data.get("public_metadata")),
        "max_allowed_memberships": _int32(max_members, "max_allowed_memberships"),
        "created_ms": checked_ms(data.get("created_at"), "created_at"),
        "updated_ms": _required_ms(data),
    }


def membership_ids(data: dict[str, Any]) -> tuple[str, str, str]:
    membership_id = data.get("id")
    if not isinstance(membership_id, str) or not membership_id:
        raise RecordError("membership has no id")
    organization_id = _object(data.get("organization")).get("id")
    user_id = _object(data.get("public_user_data")).get("user_id")
    if not isinstance(organization_id, str) or not organization_id.startswith("org_"):
        raise RecordError(f"membership {membership_id} names no organization")
    if not isinstance(user_id, str) or not user_id.startswith("user_"):
        raise RecordError(f"membership {membership_id} names no user")
    return membership_id, organization_id, user_id


def membership_row(data: dict[str, Any]) -> dict[str, Any]:
    membership_id, organization_id, user_id = membership_ids(data)
    role, permissions = data.get("role"), data.get("permissions") or []
    if role is not None and not isinstance(role, str):
        raise RecordError(f"membership {membership_id} role {role!r} is not text")
    if not isinstance(permissions, list):
        raise RecordError(f"membership {membership_id} permissions {permissions!r} is not a list")
    return {
        "id": membership_id,
        "organization_id": organization_id,
        "user_id": user_id,
        "role": normalize_role(role),
        "permissions": [p for p in permissions if isinstance(p, str)],
        "created_ms": checked_ms(data.get("created_at"), "created_at"),
        "updated_ms": _required_ms(data),
    }


def _required_ms(data: dict[str, Any]) -> int:
    updated = checked_ms(data.get("updated_at"), "updated_at")
    if updated is None:
        raise RecordError(f"{data.get('object', 'object')} {data.get('id')} has no updated_at")
    return updated


ROW_BUILDERS = {"user": user_row, "organization": organization_row, "membership": membership_row}
ID_PREFIX = {"user": "user_", "organization": "org_"}


def upsert_change(kind: Kind, data: dict[str, Any]) -> Change:
    row = ROW_BUILDERS[kind](data)
    return Change(kind, "upsert", row["id"], row, row["updated_ms"], row["updated_ms"])


def delete_change(kind: Kind, data: dict[str, Any], at_ms: int | None) -> Change:
    if kind == "membership":
        membership_id, organization_id, user_id = membership_ids(data)
        row = {"id": membership_id, "organization_id": organization_id, "user_id": user_id}
        return Change(kind, "delete", membership_id, row, None, at_ms)
    object_id = _required_id(data, ID_PREFIX[kind])
    return Change(kind, "delete", object_id, {"id": object_id}, None, at_ms)


def change_from_event(event_type: str, payload: dict[str, Any]) -> Change | None:
    """The change a webhook payload describes; None for event types cogo does not mirror."""
    mapped = EVENT_TYPES.get(event_type)
    if mapped is None:
        return None
    kind, operation = mapped
    data = payload.get("data")
    if not isinstance(data, dict):
        raise RecordError(f"{event_type} payload has no data object")
    if operation == "delete":
        return delete_change(kind, data, checked_ms(payload.get("timestamp"), "timestamp"))
    return upsert_change(kind, data)


def event_time_ms(payload: dict[str, Any], svix_timestamp_s: int) -> int:
    """When the event happened: the object's updated_at, else the envelope's timestamp (deletes have no
    updated_at), else the svix-timestamp header."""
    data = _object(payload.get("data"))
    for value, field in ((data.get("updated_at"), "updated_at"), (payload.get("timestamp"), "timestamp")):
        with contextlib.suppress(RecordError):  # not a usable time: the next candidate
            ms = checked_ms(value, field)
            if ms is not None:
                return ms
    return svix_timestamp_s * 1000
