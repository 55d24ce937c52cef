"""The sweep's audit trail: one retention_runs row per sweep, counts in retention_run_items."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

# (item, organization_id, reason) -> rows. An item is the table whose rows were deleted, `workspace_files`
# for files removed from disk, or `unlinked_<table>` for rows kept but unlinked (the sweep deletes no task;
# it unlinks the tasks of the conversations it deletes). retention_run_items.table_name holds the item.
Counts = dict[tuple[str, str, str], int]

UNLINKED = "unlinked_"
UNLINKED_AGENT_TASKS = f"{UNLINKED}agent_tasks"
# Runs recorded before unlinks had their own item counted them as 'agent_tasks'.
LEGACY_UNLINKED = ("agent_tasks",)


def is_unlinked(item: str) -> bool:
    return item.startswith(UNLINKED) or item in LEGACY_UNLINKED


def unlinked_table(item: str) -> str:
    """'unlinked_agent_tasks' -> 'agent_tasks': the table whose rows an unlink item counts."""
    return item.removeprefix(UNLINKED)


def start_run(conn: psycopg.Connection, as_of: dt.datetime, default_days: int, dry_run: bool) -> int:
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO retention_runs (as_of, default_days, dry_run) VALUES (%s, %s, %s) RETURNING id",
            (as_of, default_days, dry_run),
        ).fetchone()
    assert row is not None
    return int(row[0])


def record(
    cur: psycopg.Cursor[Any] | psycopg.Connection,
    run_id: int,
    table: str,
    reason: str,
    deleted_by_org: Mapping[str, int],
    refused_by_org: Mapping[str, int] | None = None,
) -> None:
    """Add counts to the run's items; call it inside the transaction that did the deleting."""
    refused_by_org = refused_by_org or {}
    orgs = sorted(set(deleted_by_org) | set(refused_by_org))
    rows = [
        (run_id, table, org, reason, deleted_by_org.get(org, 0), refused_by_org.get(org, 0))
        for org in orgs
        if deleted_by_org.get(org, 0) or refused_by_org.get(org, 0)
    ]
    if not rows:
        return
    cursor = cur.cursor() if isinstance(cur, psycopg.Connection) else cur
    cursor.executemany(
        "INSERT INTO retention_run_items (run_id, table_name, organization_id, reason, rows_deleted, rows_refused) "
        "VALUES (%s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (run_id, table_name, organization_id, reason) DO UPDATE SET "
        "rows_deleted = retention_run_items.rows_deleted + EXCLUDED.rows_deleted, "
        "rows_refused = retention_run_items.rows_refused + EXCLUDED.rows_refused",
        rows,
    )


def finish_run(
    conn: psycopg.Connection, run_id: int, status: str, notes: Mapping[str, Any], error: str | None = None
) -> None:
    with conn.transaction():
        conn.execute(
            "UPDATE retention_runs SET status = %s, finished_at = clock_timestamp(), notes = %s, error = %s "
            "WHERE id = %s",
            (status, Jsonb(dict(notes)), error, run_id),
        )


def run_counts(conn: psycopg.Connection, run_id: int) -> Counts:
    rows = conn.execute(
        "SELECT table_name, organization_id, reason, rows_deleted FROM retention_run_items WHERE run_id = %s",
        (run_id,),
    ).fetchall()
    return {(t, o, r): int(n) for t, o, r, n in rows}


def _totals(conn: psycopg.Connection, run_ids: list[int] | None) -> dict[str, int]:
    rows = conn.execute(
        "SELECT i.table_name, sum(i.rows_deleted) FROM retention_run_items i "
        "JOIN retention_runs r ON r.id = i.run_id "
        "WHERE NOT r.dry_run AND (%(ids)s::bigint[] IS NULL OR r.id = ANY(%(ids)s)) GROUP BY 1",
        {"ids": run_ids},
    ).fetchall()
    return {t: int(n) for t, n in rows}


def totals_by_table(conn: psycopg.Connection, run_ids: list[int] | None = None) -> dict[str, int]:
    """Rows deleted per table over the given runs (all non-dry runs when None); unlinks are not deletions."""
    return {t: n for t, n in _totals(conn, run_ids).items() if not is_unlinked(t)}


def unlinked_by_table(conn: psycopg.Connection, run_ids: list[int] | None = None) -> dict[str, int]:
    """Rows kept but unlinked per table over the given runs (all non-dry runs when None)."""
    unlinked: dict[str, int] = {}
    for item, n in _totals(conn, run_ids).items():
        if is_unlinked(item):
            table = unlinked_table(item)
            unlinked[table] = unlinked.get(table, 0) + n
    return unlinked
