"""What an operator sees of task_rollups: totals of a range of days, the same by agent, a daily series."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row

STATUSES = ("COMPLETED", "FAILED", "CANCELLED", "RUNNING", "PENDING")


def _ratio(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def range_totals(conn: psycopg.Connection, first_day: dt.date, last_day: dt.date) -> dict[str, Any]:
    """Tasks by status, success rate, steps, tokens and cost over the days (inclusive)."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            """SELECT count(*) AS rollup_rows,
                      coalesce(sum(task_count), 0) AS tasks,
                      coalesce(sum(task_count) FILTER (WHERE status = 'COMPLETED'), 0) AS completed,
                      coalesce(sum(task_count) FILTER (WHERE status = 'FAILED'), 0) AS failed,
                      coalesce(sum(task_count) FILTER (WHERE status = 'CANCELLED'), 0) AS cancelled,
                      coalesce(sum(task_count) FILTER (WHERE status = 'RUNNING'), 0) AS running,
                      coalesce(sum(task_count) FILTER (WHERE status = 'PENDING'), 0) AS pending,
                      coalesce(sum(task_count - started_count), 0) AS never_started,
                      coalesce(sum(step_count), 0) AS steps,
                      coalesce(sum(failed_step_count), 0) AS failed_steps,
                      coalesce(sum(input_tokens), 0) AS input_tokens,
                      coalesce(sum(output_tokens), 0) AS output_tokens,
                      coalesce(sum(unpriced_tokens), 0) AS unpriced_tokens,
                      coalesce(sum(estimated_cost_usd), 0) AS estimated_cost_usd,
                      count(DISTINCT organization_id) AS organizations,
                      count(DISTINCT agent_id) AS agents
                 FROM task_rollups WHERE day BETWEEN %s AND %s""",
            (first_day, last_day),
        ).fetchone()
    assert row is not None
    totals = {k: (float(v) if isinstance(v, Decimal) else int(v)) for k, v in row.items()}
    totals["success_rate"] = _ratio(totals["completed"], totals["completed"] + totals["failed"])
    return totals


@dataclass(frozen=True)
class AgentLine:
    agent: str
    tasks: int
    completed: int
    failed: int
    success_rate: float | None
    run_time_max_s: float | None
    top_failing_step: str | None
    tokens: int
    estimated_cost_usd: float


def by_agent(conn: psycopg.Connection, first_day: dt.date, last_day: dt.date) -> list[AgentLine]:
    """One line per agent over the days, busiest first. Percentiles do not add up across rows, so the
    line shows the maximum run time; the per-day percentiles are in the table itself."""
    rows = conn.execute(
        """WITH per_agent AS (
               SELECT r.agent_id,
                      sum(r.task_count) AS tasks,
                      coalesce(sum(r.task_count) FILTER (WHERE r.status = 'COMPLETED'), 0) AS completed,
                      coalesce(sum(r.task_count) FILTER (WHERE r.status = 'FAILED'), 0) AS failed,
                      max(r.run_time_max_s) AS run_time_max_s,
                      sum(r.input_tokens + r.output_tokens) AS tokens,
                      sum(r.estimated_cost_usd) AS cost
                 FROM task_rollups r WHERE r.day BETWEEN %(first)s AND %(last)s
                GROUP BY r.agent_id),
           failing AS (
               -- failed_step_count weights each row's top step: the agent's most frequent failing step.
               SELECT DISTINCT ON (agent_id) agent_id, top_failing_step
                 FROM task_rollups
                WHERE day BETWEEN %(first)s AND %(last)s AND top_failing_step IS NOT NULL
                GROUP BY agent_id, top_failing_step
                ORDER BY agent_id, sum(failed_step_count) DESC, top_failing_step)
           SELECT coalesce(a.name, a.slug, p.agent_id::text, '(no agent)'), p.tasks, p.completed, p.failed,
                  p.run_time_max_s, f.top_failing_step, p.tokens, p.cost
             FROM per_agent p
             LEFT JOIN agents a ON a.id = p.agent_id
             LEFT JOIN failing f ON f.agent_id IS NOT DISTINCT FROM p.agent_id
            ORDER BY p.tasks DESC, 1""",
        {"first": first_day, "last": last_day},
    ).fetchall()
    return [
        AgentLine(
            agent=name,
            tasks=int(tasks),
            completed=int(completed),
            failed=int(failed),
            success_rate=_ratio(int(completed), int(completed) + int(failed)),
            run_time_max_s=None if run_max is None else round(float(run_max), 1),
            top_failing_step=top_step,
            tokens=int(tokens),
            estimated_cost_usd=round(float(cost), 4),
        )
        for name, tasks, completed, failed, run_max, top_step, tokens, cost in rows
    ]


@dataclass(frozen=True)
class DayPoint:
    day: dt.date
    tasks_by_status: dict[str, int]
    success_rate: float | None
    estimated_cost_usd: float

    @property
    def tasks(self) -> int:
        return sum(self.tasks_by_status.values())


def daily_series(conn: psycopg.Connection, last_day: dt.date, days: int = 30) -> list[DayPoint]:
    """One point per day for the `days` days ending at last_day, days without tasks included as zeros."""
    first_day = last_day - dt.timedelta(days=days - 1)
    rows = conn.execute(
        """SELECT day, status::text, sum(task_count), sum(estimated_cost_usd)
             FROM task_rollups WHERE day BETWEEN %s AND %s GROUP BY day, status""",
        (first_day, last_day),
    ).fetchall()
    counts: dict[dt.date, dict[str, int]] = {}
    costs: dict[dt.date, float] = {}
    for day, status, n, cost in rows:
        counts.setdefault(day, {})[status] = int(n)
        costs[day] = costs.get(day, 0.0) + float(cost)
    points = []
    for offset in range(days):
        day = first_day + dt.timedelta(days=offset)
        by_status = {s: counts.get(day, {}).get(s, 0) for s in STATUSES}
        points.append(
            DayPoint(
                day=day,
                tasks_by_status=by_status,
                success_rate=_ratio(by_status["COMPLETED"], by_status["COMPLETED"] + by_status["FAILED"]),
                estimated_cost_usd=round(costs.get(day, 0.0), 4),
            )
        )
    return points
