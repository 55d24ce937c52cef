"""Consistency checks on agent_tasks and task_steps. Each returns how many rows break the rule and the
first of them (oldest first), so a failing check says which rows and how many."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

SAMPLE_ROWS = 20


@dataclass(frozen=True)
class Finding:
    count: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    detail: dict[str, int] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.count == 0


def _finding(conn: psycopg.Connection, query: str, params: dict[str, Any], sample: int) -> Finding:
    """`query` selects the offending rows with a `total` column (count(*) OVER ()), oldest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(f"{query} LIMIT %(sample)s", {**params, "sample": sample}).fetchall()  # type: ignore[arg-type]
    total = int(rows[0].pop("total")) if rows else 0
    for row in rows[1:]:
        row.pop("total")
    return Finding(total, rows)


def timestamps_out_of_order(conn: psycopg.Connection, sample: int = SAMPLE_ROWS) -> Finding:
    """Tasks breaking created_at <= started_at <= completed_at (a missing timestamp breaks nothing)."""
    return _finding(
        conn,
        """SELECT id, organization_id, status::text, created_at, started_at, completed_at, count(*) OVER () AS total
             FROM agent_tasks
            WHERE started_at < created_at OR completed_at < started_at OR completed_at < created_at
            ORDER BY created_at, id""",
        {},
        sample,
    )


def finished_without_outcome(conn: psycopg.Connection, sample: int = SAMPLE_ROWS) -> Finding:
    """COMPLETED and FAILED tasks lacking completed_at or final_output (JSON null counts as missing)."""
    return _finding(
        conn,
        """SELECT id, organization_id, status::text, completed_at,
                  final_output IS NOT NULL AND final_output <> 'null'::jsonb AS has_final_output,
                  count(*) OVER () AS total
             FROM agent_tasks
            WHERE status IN ('COMPLETED', 'FAILED')
              AND (completed_at IS NULL OR final_output IS NULL OR final_output = 'null'::jsonb)
            ORDER BY created_at, id""",
        {},
        sample,
    )


def stuck_running(
    conn: psycopg.Connection, limit: dt.timedelta, now: dt.datetime | None = None, sample: int = SAMPLE_ROWS
) -> Finding:
    """RUNNING tasks started (or, lacking started_at, created) longer than `limit` before `now`."""
    return _finding(
        conn,
        """SELECT id, organization_id, agent_id, title, created_at, started_at,
                  date_trunc('second', %(now)s - coalesce(started_at, created_at)) AS running_for,
                  count(*) OVER () AS total
             FROM agent_tasks
            WHERE status = 'RUNNING' AND coalesce(started_at, created_at) < %(now)s - %(limit)s
            ORDER BY coalesce(started_at, created_at), id""",
        {"now": now or dt.datetime.now(dt.UTC), "limit": limit},
        sample,
    )


def steps_without_task(conn: psycopg.Connection, sample: int = SAMPLE_ROWS) -> Finding:
    """Steps whose task is missing. The foreign key (task_id, organization_id) prevents that while it is
    enforced, but a bulk load with session_replication_role = replica, a dropped or NOT VALID constraint
    or a restore of one table alone gets past it, so the check is set-based and does not trust it. Also
    counted: steps of a task that never started (no started_at), whose task is missing its start.
    """
    finding = _finding(
        conn,
        """SELECT ts.id AS step_id, ts.task_id, ts.organization_id, ts.step_name, ts.created_at,
                  CASE WHEN t.id IS NULL THEN 'no such task' ELSE 'task never started' END AS problem,
                  count(*) OVER () AS total
             FROM task_steps ts
             LEFT JOIN agent_tasks t ON t.id = ts.task_id AND t.organization_id = ts.organization_id
            WHERE t.id IS NULL OR t.started_at IS NULL
            ORDER BY (t.id IS NOT NULL), ts.created_at, ts.id""",
        {},
        sample,
    )
    if finding.passed:
        return finding
    missing, never_started = conn.execute(
        """SELECT count(*) FILTER (WHERE t.id IS NULL), count(*) FILTER (WHERE t.id IS NOT NULL)
             FROM task_steps ts
             LEFT JOIN agent_tasks t ON t.id = ts.task_id AND t.organization_id = ts.organization_id
            WHERE t.id IS NULL OR t.started_at IS NULL"""
    ).fetchone()  # type: ignore[misc]
    return Finding(finding.count, finding.rows, {"no_such_task": missing, "task_never_started": never_started})
