"""Who keeps what for how long: the default window and each organisation's override."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import psycopg

OVERRIDE_KEY = "retention_days"


@dataclass(frozen=True)
class OrgWindow:
    """An organisation's retention window: rows last active before `cutoff` are expired."""

    organization_id: str
    days: int
    cutoff: dt.datetime


@dataclass(frozen=True)
class Policy:
    as_of: dt.datetime
    default_days: int
    windows: tuple[OrgWindow, ...]
    # Overrides that are not a positive whole number of days: the default applies, and the run says so.
    invalid_overrides: dict[str, Any]

    @property
    def default_cutoff(self) -> dt.datetime:
        return cutoff(self.as_of, self.default_days)


def cutoff(as_of: dt.datetime, days: int) -> dt.datetime:
    return as_of - dt.timedelta(days=days)


def parse_override(value: Any) -> int | None:
    """A positive whole number of days (1, 60, "60"), else None. JSON true is not a number of days."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, float) and value.is_integer() and value > 0:
        return int(value)
    if isinstance(value, str) and value.strip().isdigit() and int(value) > 0:
        return int(value)
    return None


def load_policy(conn: psycopg.Connection, as_of: dt.datetime, default_days: int) -> Policy:
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware (UTC)")
    if default_days <= 0:
        raise ValueError(f"the default retention must be a positive number of days, not {default_days}")
    rows = conn.execute("SELECT id, settings -> %s FROM organizations ORDER BY id", (OVERRIDE_KEY,)).fetchall()
    windows: list[OrgWindow] = []
    invalid: dict[str, Any] = {}
    for org_id, raw in rows:
        days = default_days
        if raw is not None:
            parsed = parse_override(raw)
            if parsed is None:
                invalid[org_id] = raw
            else:
                days = parsed
        windows.append(OrgWindow(org_id, days, cutoff(as_of, days)))
    return Policy(as_of=as_of, default_days=default_days, windows=tuple(windows), invalid_overrides=invalid)
