"""Build task_rollups for a range of UTC days: one set-based statement, replacing those days exactly."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

import psycopg

# A placeholder for "no agent" inside the query only: joins on it stay hashable (NULL never matches).
NO_AGENT = "00000000-0000-0000-0000-000000000000"
# Sorts and hashes of a month of tasks fit in memory at this size instead of spilling to disk (measured in
# bench/bench_task_rollups.py: about 1.5x faster than the default 4MB). Set per transaction only.
WORK_MEM = "64MB"

# The aggregate for [%(start)s, %(end)s): every CTE reads only the tasks created in that window, plus
# their steps and the messages of their conversations. Percentiles are Postgres's percentile_cont.
ROLLUP_SELECT = f"""
WITH scope AS MATERIALIZED (
    SELECT t.id, t.organization_id, t.status, t.conversation_id, t.created_at,
           (t.created_at AT TIME ZONE 'UTC')::date AS day,
           coalesce(t.agent_id, '{NO_AGENT}'::uuid) AS agent_key,
           t.started_at IS NOT NULL AS started,
           extract(epoch FROM t.started_at - t.created_at)::double precision AS queue_wait_s,
           extract(epoch FROM t.completed_at - t.started_at)::double precision AS run_time_s,
           a.model_name AS agent_model
      FROM agent_tasks t
      LEFT JOIN agents a ON a.id = t.agent_id
     WHERE t.created_at >= %(start)s AND t.created_at < %(end)s
),
token_windows AS MATERIALIZED (
    -- A task's messages run from its creation to the creation of the next task of its conversation
    -- (which may lie outside the days being built, so every task of those conversations is read).
    SELECT s.id, s.organization_id, s.conversation_id, s.day, s.agent_key, s.status, s.agent_model,
           s.created_at, coalesce(n.window_end, 'infinity') AS window_end
      FROM scope s
      JOIN (SELECT t.id, lead(t.created_at) OVER (PARTITION BY t.conversation_id ORDER BY t.created_at, t.id)
                       AS window_end
              FROM agent_tasks t
             WHERE t.conversation_id IN (SELECT conversation_id FROM scope)) n ON n.id = s.id
),
task_stats AS (
    SELECT day, organization_id, agent_key, status,
           count(*) AS task_count,
           count(*) FILTER (WHERE started) AS started_count,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY queue_wait_s) AS queue_wait_p50_s,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY queue_wait_s) AS queue_wait_p95_s,
           max(queue_wait_s) AS queue_wait_max_s,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY run_time_s) AS run_time_p50_s,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY run_time_s) AS run_time_p95_s,
           max(run_time_s) AS run_time_max_s
      FROM scope
     GROUP BY day, organization_id, agent_key, status
),
step_stats AS (
    -- Plain counts only, so Postgres can hash-aggregate the steps instead of sorting them all.
    SELECT s.day, s.organization_id, s.agent_key, s.status,
           count(*) AS step_count,
           count(*) FILTER (WHERE ts.status = 'error') AS failed_step_count
      FROM scope s
      JOIN task_steps ts ON ts.task_id = s.id AND ts.organization_id = s.organization_id
     GROUP BY s.day, s.organization_id, s.agent_key, s.status
),
failing_steps AS (
    -- The error steps alone (a partial index holds them): the most frequent name, ties to the first name.
    SELECT DISTINCT ON (s.day, s.organization_id, s.agent_key, s.status)
           s.day, s.organization_id, s.agent_key, s.status, ts.step_name AS top_failing_step
      FROM scope s
      JOIN task_steps ts ON ts.task_id = s.id AND ts.organization_id = s.organization_id AND ts.status = 'error'
     GROUP BY s.day, s.organization_id, s.agent_key, s.status, ts.step_name
     ORDER BY s.day, s.organization_id, s.agent_key, s.status, count(*) DESC, ts.step_name NULLS LAST
),
prices AS (
    SELECT model, input_usd_per_mtok, output_usd_per_mtok,
           effective_from::timestamp AT TIME ZONE 'UTC' AS valid_from,
           coalesce(lead(effective_from::timestamp AT TIME ZONE 'UTC')
                        OVER (PARTITION BY model ORDER BY effective_from), 'infinity') AS valid_until
      FROM model_prices
),
token_stats AS (
    SELECT w.day, w.organization_id, w.agent_key, w.status,
           sum(m.token_count) FILTER (WHERE m.role <> 'assistant') AS input_tokens,
           sum(m.token_count) FILTER (WHERE m.role = 'assistant') AS output_tokens,
           sum(m.token_count * CASE WHEN m.role = 'assistant' THEN p.output_usd_per_mtok
                                    ELSE p.input_usd_per_mtok END) / 1000000 AS estimated_cost_usd,
           sum(m.token_count) FILTER (WHERE p.model IS NULL) AS unpriced_tokens
      FROM token_windows w
      JOIN messages m ON m.conversation_id = w.conversation_id AND m.organization_id = w.organization_id
                     AND m.created_at >= w.created_at AND m.created_at < w.window_end
      LEFT JOIN prices p ON p.model = coalesce(m.model, w.agent_model)
                        AND m.created_at >= p.valid_from AND m.created_at < p.valid_until
     GROUP BY w.day, w.organization_id, w.agent_key, w.status
)
SELECT k.day, k.organization_id, nullif(k.agent_key, '{NO_AGENT}'::uuid) AS agent_id, k.status,
       k.task_count, k.started_count,
       coalesce(sum(k.task_count) FILTER (WHERE k.status = 'COMPLETED') OVER same_agent_day, 0)::double precision
           / nullif(sum(k.task_count) FILTER (WHERE k.status IN ('COMPLETED', 'FAILED')) OVER same_agent_day, 0)
           AS success_rate,
       k.queue_wait_p50_s, k.queue_wait_p95_s, k.queue_wait_max_s,
       k.run_time_p50_s, k.run_time_p95_s, k.run_time_max_s,
       coalesce(st.step_count, 0) AS step_count,
       coalesce(st.step_count, 0)::double precision / k.task_count AS steps_per_task,
       coalesce(st.failed_step_count, 0) AS failed_step_count,
       fs.top_failing_step,
       coalesce(tk.input_tokens, 0) AS input_tokens,
       coalesce(tk.output_tokens, 0) AS output_tokens,
       round(coalesce(tk.estimated_cost_usd, 0), 6) AS estimated_cost_usd,
       coalesce(tk.unpriced_tokens, 0) AS unpriced_tokens
  FROM task_stats k
  LEFT JOIN step_stats st USING (day, organization_id, agent_key, status)
  LEFT JOIN failing_steps fs USING (day, organization_id, agent_key, status)
  LEFT JOIN token_stats tk USING (day, organization_id, agent_key, status)
WINDOW same_agent_day AS (PARTITION BY k.day, k.organization_id, k.agent_key)
"""

COLUMNS = (
    "day, organization_id, agent_id, status, task_count, started_count, success_rate, "
    "queue_wait_p50_s, queue_wait_p95_s, queue_wait_max_s, run_time_p50_s, run_time_p95_s, run_time_max_s, "
    "step_count, steps_per_task, failed_step_count, top_failing_step, input_tokens, output_tokens, "
    "estimated_cost_usd, unpriced_tokens"
)


@dataclass(frozen=True)
class RollupResult:
    first_day: dt.date
    last_day: dt.date
    # Per day, so that each day's partition can say what happened to it (a day without rows is absent).
    deleted_by_day: dict[dt.date, int]
    inserted_by_day: dict[dt.date, int]
    duration_s: float

    @property
    def rows_deleted(self) -> int:
        return sum(self.deleted_by_day.values())

    @property
    def rows_inserted(self) -> int:
        return sum(self.inserted_by_day.values())


def day_bounds(first_day: dt.date, last_day: dt.date) -> dict[str, dt.datetime]:
    """The half-open UTC window [first_day 00:00, last_day + 1 00:00) as query parameters."""
    if last_day < first_day:
        raise ValueError(f"last_day {last_day} is before first_day {first_day}")
    start = dt.datetime.combine(first_day, dt.time(), tzinfo=dt.UTC)
    end = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    return {"start": start, "end": end}


def rollup_days(conn: psycopg.Connection, first_day: dt.date, last_day: dt.date) -> RollupResult:
    """Replace task_rollups for the UTC days first_day..last_day (inclusive) with a fresh aggregate.

    One transaction: delete the days' rows, insert the aggregate of one statement. Writers of the table
    are serialised by a lock that leaves readers alone, so two runs of the same day cannot interleave;
    readers see the old rows until the commit, then the new ones, never a half-built day.
    """
    started = time.monotonic()
    params: dict[str, Any] = {**day_bounds(first_day, last_day), "first_day": first_day, "last_day": last_day}
    with conn.transaction():
        conn.execute("LOCK TABLE task_rollups IN SHARE ROW EXCLUSIVE MODE")
        conn.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")  # type: ignore[arg-type]  # constant
        deleted = _rows_by_day(
            conn, "DELETE FROM task_rollups WHERE day BETWEEN %(first_day)s AND %(last_day)s RETURNING day", params
        )
        inserted = _rows_by_day(conn, f"INSERT INTO task_rollups ({COLUMNS}) {ROLLUP_SELECT} RETURNING day", params)
    return RollupResult(first_day, last_day, deleted, inserted, round(time.monotonic() - started, 3))


def _rows_by_day(conn: psycopg.Connection, statement: str, params: dict[str, Any]) -> dict[dt.date, int]:
    """Run a DELETE/INSERT ... RETURNING day and count its rows per day, in the same statement."""
    rows = conn.execute(
        f"WITH changed AS ({statement}) SELECT day, count(*) FROM changed GROUP BY day",  # type: ignore[arg-type]
        params,
    ).fetchall()
    return {day: int(n) for day, n in rows}


def aggregate_days(conn: psycopg.Connection, first_day: dt.date, last_day: dt.date) -> list[tuple[Any, ...]]:
    """The aggregate alone, written nowhere (what the benchmark compares the rollup against)."""
    with conn.transaction():
        conn.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")  # type: ignore[arg-type]  # constant
        return conn.execute(ROLLUP_SELECT, day_bounds(first_day, last_day)).fetchall()  # type: ignore[arg-type]
