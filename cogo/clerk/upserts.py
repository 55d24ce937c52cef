"""Guarded, set-based writes of Clerk changes into organizations, users and organization_memberships.

The rules make application order-independent, so a batch can be written with one statement per kind:
- an upsert changes a row only if the row is live and its stored clerk_updated_at is older;
- a delete is soft (deleted_at; a user's personal data blanked) and final: it leaves a tombstone even for an
  id never seen, and no later upsert touches a deleted row;
- deleting a user or an organization ends its memberships; a membership whose user or organization is
  already deleted is ended as it arrives; one that arrives before them is kept as is.
Each function takes rows with unique ids and returns the ids it changed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb

UPSERT_ORGANIZATIONS = """
WITH input AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s) AS r(
        id text, name text, slug text, image_url text, public_metadata jsonb,
        max_allowed_memberships integer, created_ms bigint, updated_ms bigint)
)
INSERT INTO organizations AS o (id, name, slug, image_url, public_metadata, max_allowed_memberships,
                                clerk_created_at, clerk_updated_at)
SELECT id, name, slug, image_url, coalesce(public_metadata, '{}'), max_allowed_memberships,
       clerk_ms(created_ms), clerk_ms(updated_ms)
FROM input
ON CONFLICT (id) DO UPDATE SET
    name = EXCLUDED.name, slug = EXCLUDED.slug, image_url = EXCLUDED.image_url,
    public_metadata = EXCLUDED.public_metadata, max_allowed_memberships = EXCLUDED.max_allowed_memberships,
    clerk_created_at = EXCLUDED.clerk_created_at, clerk_updated_at = EXCLUDED.clerk_updated_at
WHERE o.deleted_at IS NULL AND (o.clerk_updated_at IS NULL OR o.clerk_updated_at < EXCLUDED.clerk_updated_at)
RETURNING o.id
"""

UPSERT_USERS = """
WITH input AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s) AS r(
        id text, email text, first_name text, last_name text, username text, image_url text,
        public_metadata jsonb, last_sign_in_ms bigint, created_ms bigint, updated_ms bigint)
)
INSERT INTO users AS u (id, email, first_name, last_name, username, image_url, public_metadata,
                        last_sign_in_at, clerk_created_at, clerk_updated_at)
SELECT id, email, first_name, last_name, username, image_url, coalesce(public_metadata, '{}'),
       clerk_ms(last_sign_in_ms), clerk_ms(created_ms), clerk_ms(updated_ms)
FROM input
ON CONFLICT (id) DO UPDATE SET
    email = EXCLUDED.email, first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name,
    username = EXCLUDED.username, image_url = EXCLUDED.image_url, public_metadata = EXCLUDED.public_metadata,
    last_sign_in_at = EXCLUDED.last_sign_in_at, clerk_created_at = EXCLUDED.clerk_created_at,
    clerk_updated_at = EXCLUDED.clerk_updated_at
WHERE u.deleted_at IS NULL AND (u.clerk_updated_at IS NULL OR u.clerk_updated_at < EXCLUDED.clerk_updated_at)
RETURNING u.id
"""

MEMBERSHIP_INPUT = """
WITH input AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s) AS r(
        id text, organization_id text, user_id text, role text, permissions text[],
        created_ms bigint, updated_ms bigint)
)
"""

# Clerk keeps one membership per (organization, user): a newer-created one replaces an older one whose
# delete has not arrived yet (and the partial unique index would refuse two live ones).
SUPERSEDE_MEMBERSHIPS = (
    MEMBERSHIP_INPUT
    + """
UPDATE organization_memberships o SET deleted_at = now()
FROM input i
WHERE o.organization_id = i.organization_id AND o.user_id = i.user_id AND o.id <> i.id
  AND o.deleted_at IS NULL AND o.clerk_created_at < clerk_ms(i.created_ms)
  AND NOT EXISTS (SELECT 1 FROM organization_memberships d WHERE d.id = i.id AND d.deleted_at IS NOT NULL)
"""
)

UPSERT_MEMBERSHIPS = (
    MEMBERSHIP_INPUT
    + """
INSERT INTO organization_memberships AS m (id, organization_id, user_id, role, permissions,
                                           clerk_created_at, clerk_updated_at, deleted_at)
SELECT i.id, i.organization_id, i.user_id, i.role, coalesce(i.permissions, '{}'),
       clerk_ms(i.created_ms), clerk_ms(i.updated_ms),
       -- a newer membership of the same pair is live: this one was replaced (its delete is on its way);
       -- or its user or organization is already deleted: it ends as it lands (one primary-key probe each)
       CASE WHEN EXISTS (SELECT 1 FROM organization_memberships o
                         WHERE o.organization_id = i.organization_id AND o.user_id = i.user_id
                           AND o.id <> i.id AND o.deleted_at IS NULL)
                 OR (SELECT u.deleted_at FROM users u WHERE u.id = i.user_id) IS NOT NULL
                 OR (SELECT g.deleted_at FROM organizations g WHERE g.id = i.organization_id) IS NOT NULL
            THEN now() END
FROM input i
ON CONFLICT (id) DO UPDATE SET
    role = EXCLUDED.role, permissions = EXCLUDED.permissions,
    clerk_created_at = EXCLUDED.clerk_created_at, clerk_updated_at = EXCLUDED.clerk_updated_at
WHERE m.deleted_at IS NULL AND (m.clerk_updated_at IS NULL OR m.clerk_updated_at < EXCLUDED.clerk_updated_at)
RETURNING m.id, m.xmax = 0  -- true for an inserted row (PostgreSQL's usual insert-or-update tell)
"""
)

DELETE_ORGANIZATIONS = """
WITH input AS (SELECT * FROM jsonb_to_recordset(%(rows)s) AS r(id text, at_ms bigint)),
tombstones AS (
    INSERT INTO organizations (id, name, deleted_at)
    SELECT id, '', coalesce(clerk_ms(at_ms), now()) FROM input
    ON CONFLICT (id) DO NOTHING
    RETURNING id
),
deleted AS (
    UPDATE organizations o SET deleted_at = coalesce(clerk_ms(i.at_ms), now())
    FROM input i WHERE o.id = i.id AND o.deleted_at IS NULL
    RETURNING o.id
)
SELECT id FROM tombstones UNION ALL SELECT id FROM deleted
"""

# Personal data is blanked; the row stays as a tombstone so a late create or update cannot revive it.
DELETE_USERS = """
WITH input AS (SELECT * FROM jsonb_to_recordset(%(rows)s) AS r(id text, at_ms bigint)),
tombstones AS (
    INSERT INTO users (id, deleted_at)
    SELECT id, coalesce(clerk_ms(at_ms), now()) FROM input
    ON CONFLICT (id) DO NOTHING
    RETURNING id
),
deleted AS (
    UPDATE users u SET deleted_at = coalesce(clerk_ms(i.at_ms), now()),
        email = NULL, first_name = NULL, last_name = NULL, username = NULL, image_url = NULL,
        public_metadata = '{}', last_sign_in_at = NULL
    FROM input i WHERE u.id = i.id AND u.deleted_at IS NULL
    RETURNING u.id
)
SELECT id FROM tombstones UNION ALL SELECT id FROM deleted
"""

DELETE_MEMBERSHIPS = """
WITH input AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s) AS r(id text, organization_id text, user_id text, at_ms bigint)
),
tombstones AS (
    INSERT INTO organization_memberships (id, organization_id, user_id, deleted_at)
    SELECT id, organization_id, user_id, coalesce(clerk_ms(at_ms), now()) FROM input
    ON CONFLICT (id) DO NOTHING
    RETURNING id
),
deleted AS (
    UPDATE organization_memberships m SET deleted_at = coalesce(clerk_ms(i.at_ms), now())
    FROM input i WHERE m.id = i.id AND m.deleted_at IS NULL
    RETURNING m.id
)
SELECT id FROM tombstones UNION ALL SELECT id FROM deleted
"""

END_MEMBERSHIPS_OF_USERS = """
UPDATE organization_memberships SET deleted_at = now()
WHERE deleted_at IS NULL AND user_id = ANY(%(ids)s)
"""

END_MEMBERSHIPS_OF_ORGANIZATIONS = """
UPDATE organization_memberships SET deleted_at = now()
WHERE deleted_at IS NULL AND organization_id = ANY(%(ids)s)
"""

# Scalar subqueries: one primary-key probe per membership. (As EXISTS ... OR EXISTS, the planner hashed every
# deleted user, reading the whole users table for each batch.)
END_ORPHANED_MEMBERSHIPS = """
UPDATE organization_memberships m SET deleted_at = now()
WHERE m.id = ANY(%(ids)s) AND m.deleted_at IS NULL
  AND ((SELECT u.deleted_at FROM users u WHERE u.id = m.user_id) IS NOT NULL
       OR (SELECT o.deleted_at FROM organizations o WHERE o.id = m.organization_id) IS NOT NULL)
"""

TABLES = {"organization": "organizations", "user": "users", "membership": "organization_memberships"}

# Rows an upsert would leave as they are: deleted (final), or already as new as the incoming updated_at.
# Filtering them out first is a primary-key probe each; an ON CONFLICT ... DO UPDATE WHERE that refuses them
# still locks (writes) every conflicting row, and a membership also pays its supersede and orphan checks.
CURRENT_AMONG = """
SELECT t.id, t.deleted_at IS NOT NULL
FROM {table} t JOIN unnest(%(ids)b::text[], %(updated_ms)b::bigint[]) AS i(id, updated_ms) ON t.id = i.id
WHERE t.id = ANY(%(ids)b)  -- probes the primary key (joined alone, the planner hashes the whole table)
  AND (t.deleted_at IS NOT NULL OR extract(epoch FROM t.clerk_updated_at) * 1000 >= i.updated_ms)
"""
BIGINT = range(-(2**63), 2**63)


def rows_param(rows: list[dict[str, Any]]) -> Jsonb:
    """Rows as one jsonb parameter, encoded by orjson (several times faster than json.dumps here)."""
    return Jsonb(rows, dumps=_dumps)


def _dumps(rows: Any) -> bytes | str:
    try:
        return orjson.dumps(rows)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits (in metadata, say), which jsonb itself keeps
        return json.dumps(rows)


def _ids(conn: psycopg.Connection, query: str, rows: list[dict[str, Any]]) -> set[str]:
    if not rows:
        return set()
    return {row[0] for row in conn.execute(query, {"rows": rows_param(rows)}).fetchall()}


def current_among(conn: psycopg.Connection, kind: str, rows: list[dict[str, Any]]) -> tuple[set[str], set[str]]:
    """(stale, deleted): the ids among these upsert rows that an upsert would not change, because the stored
    row is at least as new, or deleted."""
    # A row this query cannot even compare (an updated_at beyond bigint) is left to the upsert, which fails
    # it alone; here it would fail the whole batch.
    rows = [row for row in rows if row["updated_ms"] in BIGINT]
    if not rows:
        return set(), set()
    params = {"ids": [row["id"] for row in rows], "updated_ms": [row["updated_ms"] for row in rows]}
    stale: set[str] = set()
    deleted: set[str] = set()
    for object_id, is_deleted in conn.execute(CURRENT_AMONG.format(table=TABLES[kind]), params).fetchall():
        (deleted if is_deleted else stale).add(object_id)
    return stale, deleted


def upsert_organizations(conn: psycopg.Connection, rows: list[dict[str, Any]]) -> set[str]:
    return _ids(conn, UPSERT_ORGANIZATIONS, rows)


def upsert_users(conn: psycopg.Connection, rows: list[dict[str, Any]]) -> set[str]:
    return _ids(conn, UPSERT_USERS, rows)


def upsert_memberships(conn: psycopg.Connection, rows: list[dict[str, Any]]) -> set[str]:
    if not rows:
        return set()
    conn.execute(SUPERSEDE_MEMBERSHIPS, {"rows": rows_param(rows)})
    written = conn.execute(UPSERT_MEMBERSHIPS, {"rows": rows_param(rows)}).fetchall()
    # Inserted rows were checked for deleted parents as they landed; an updated one is checked here.
    updated = [membership_id for membership_id, inserted in written if not inserted]
    if updated:
        end_orphaned_memberships(conn, updated)
    return {membership_id for membership_id, _ in written}


def delete_organizations(conn: psycopg.Connection, rows: list[dict[str, Any]]) -> set[str]:
    deleted = _ids(conn, DELETE_ORGANIZATIONS, rows)
    if deleted:
        conn.execute(END_MEMBERSHIPS_OF_ORGANIZATIONS, {"ids": list(deleted)})
    return deleted


def delete_users(conn: psycopg.Connection, rows: list[dict[str, Any]]) -> set[str]:
    deleted = _ids(conn, DELETE_USERS, rows)
    if deleted:
        conn.execute(END_MEMBERSHIPS_OF_USERS, {"ids": list(deleted)})
    return deleted


def delete_memberships(conn: psycopg.Connection, rows: list[dict[str, Any]]) -> set[str]:
    return _ids(conn, DELETE_MEMBERSHIPS, rows)


def end_orphaned_memberships(conn: psycopg.Connection, membership_ids: list[str]) -> int:
    return conn.execute(END_ORPHANED_MEMBERSHIPS, {"ids": membership_ids}).rowcount


def deleted_among(conn: psycopg.Connection, kind: str, ids: Iterable[str]) -> set[str]:
    """Which of these ids are soft-deleted (an upsert of them is ignored, not stale)."""
    wanted = list(ids)
    if not wanted:
        return set()
    query = f"SELECT id FROM {TABLES[kind]} WHERE id = ANY(%(ids)s) AND deleted_at IS NOT NULL"
    return {row[0] for row in conn.execute(query, {"ids": wanted}).fetchall()}


UPSERTS = {"organization": upsert_organizations, "user": upsert_users, "membership": upsert_memberships}
DELETES = {"organization": delete_organizations, "user": delete_users, "membership": delete_memberships}
