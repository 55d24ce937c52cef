"""task_rollups on generated task logs: every status, tasks that never started, tasks spanning midnight
UTC, token attribution and prices, late data re-materialized, each check failing on purpose, the
Dagster asset for one partition and for a backfill range, and the hourly schedule."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import dagster as dg
import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from cogo.assets.tasks import (
    DAILY,
    TREND_KEY,
    daily_partitions,
    finished_tasks_have_outcome,
    no_step_without_task,
    no_task_stuck_running,
    partitions_start,
    task_rollups,
    task_rollups_hourly,
    task_rollups_job,
    task_timestamps_in_order,
)
from cogo.resources import PostgresResource
from cogo.tasks import checks
from cogo.tasks.chart import trend_markdown, trend_png
from cogo.tasks.report import by_agent, daily_series, range_totals
from cogo.tasks.rollup import aggregate_days, rollup_days

DAY = dt.date(2026, 3, 10)
# The Dagster tests need a day inside the asset's partitions, which start a retention window back from today.
RECENT = dt.date.fromisoformat(DAILY.get_last_partition_key()) - dt.timedelta(days=1)
ORG = "org_rollup"
OTHER_ORG = "org_other"
UTC = dt.UTC
CHECKS = [task_timestamps_in_order, finished_tasks_have_outcome, no_task_stuck_running, no_step_without_task]


def at(day: dt.date, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute, second), tzinfo=UTC)


@dataclass
class TaskLog:
    """A small generator of task logs: organisations, agents, conversations, tasks, steps, messages."""

    db: psycopg.Connection
    agents: dict[str, uuid.UUID] = field(default_factory=dict)

    def org(self, org: str = ORG) -> None:
        self.db.execute("INSERT INTO organizations (id, name) VALUES (%s, %s) ON CONFLICT DO NOTHING", (org, org))
        self.db.execute("INSERT INTO users (id) VALUES ('user_rollup') ON CONFLICT DO NOTHING")

    def agent(self, slug: str, model: str = "gpt-4o-mini") -> uuid.UUID:
        agent_id = self.db.execute(
            "INSERT INTO agents (slug, name, model_name) VALUES (%s, %s, %s) RETURNING id", (slug, slug.title(), model)
        ).fetchone()[0]  # type: ignore[index]
        self.agents[slug] = agent_id
        return agent_id

    def conversation(self, org: str = ORG, agent: str | None = None) -> uuid.UUID:
        return self.db.execute(
            "INSERT INTO conversations (organization_id, user_id, agent_id) VALUES (%s, 'user_rollup', %s) "
            "RETURNING id",
            (org, self.agents.get(agent) if agent else None),
        ).fetchone()[0]  # type: ignore[index]

    def task(
        self,
        status: str,
        created: dt.datetime,
        *,
        agent: str | None = "alpha",
        org: str = ORG,
        queue_s: float | None = 10,
        run_s: float | None = 60,
        steps: list[tuple[str, str]] | None = None,
        conversation: uuid.UUID | None = None,
        final_output: Any = "default",
    ) -> uuid.UUID:
        """A task; queue_s None: never started; run_s None: not completed. Steps are (name, status)."""
        started = None if queue_s is None else created + dt.timedelta(seconds=queue_s)
        completed = None if started is None or run_s is None else started + dt.timedelta(seconds=run_s)
        if final_output == "default":
            final_output = {"result": "ok"} if status == "COMPLETED" else {"error": "x"} if status == "FAILED" else None
        task_id = self.db.execute(
            "INSERT INTO agent_tasks (organization_id, conversation_id, agent_id, title, status, final_output, "
            "created_at, started_at, completed_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (
                org,
                conversation,
                self.agents.get(agent) if agent else None,
                f"{status} task",
                status,
                None if final_output is None else Jsonb(final_output),
                created,
                started,
                completed,
            ),
        ).fetchone()[0]  # type: ignore[index]
        for k, (name, step_status) in enumerate(steps or []):
            self.step(task_id, name, step_status, (started or created) + dt.timedelta(seconds=k + 1), org=org)
        return task_id

    def step(self, task_id: uuid.UUID, name: str, status: str, created: dt.datetime, org: str = ORG) -> None:
        self.db.execute(
            "INSERT INTO task_steps (task_id, organization_id, step_name, status, created_at) "
            "VALUES (%s, %s, %s, %s, %s)",
            (task_id, org, name, status, created),
        )

    def message(
        self,
        conversation: uuid.UUID,
        role: str,
        tokens: int,
        created: dt.datetime,
        model: str | None = None,
        org: str = ORG,
    ) -> None:
        self.db.execute(
            "INSERT INTO messages (conversation_id, organization_id, role, content, token_count, model, created_at) "
            "VALUES (%s, %s, %s, 'm', %s, %s, %s)",
            (conversation, org, role, tokens, model, created),
        )


@pytest.fixture
def log(db: psycopg.Connection) -> TaskLog:
    generator = TaskLog(db)
    generator.org()
    generator.agent("alpha", "gpt-4o-mini")
    generator.agent("beta", "gpt-4o")
    return generator


def rollup_rows(db: psycopg.Connection, day: dt.date | None = None) -> dict[tuple[Any, ...], dict[str, Any]]:
    """task_rollups keyed by (day, organization_id, agent_id, status)."""
    with db.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT * FROM task_rollups WHERE %(day)s::date IS NULL OR day = %(day)s", {"day": day}
        ).fetchall()
    return {(r["day"], r["organization_id"], r["agent_id"], r["status"]): r for r in rows}


def comparable(rows: dict[tuple[Any, ...], dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {k: {c: v for c, v in r.items() if c != "computed_at"} for k, r in rows.items()}


# --- the aggregate ----------------------------------------------------------------------------------------


def generate_day(log: TaskLog, day: dt.date) -> None:
    """Every status for agent alpha, including tasks that never started; one FAILED task for beta."""
    log.task("COMPLETED", at(day, 1), queue_s=10, run_s=100, steps=[("Plan", "ok"), ("Code", "ok")])
    log.task("COMPLETED", at(day, 2), queue_s=20, run_s=200, steps=[("Plan", "ok")])
    log.task("COMPLETED", at(day, 3), queue_s=30, run_s=300, steps=[("Plan", "ok"), ("Code", "ok"), ("Review", "ok")])
    log.task("FAILED", at(day, 4), queue_s=40, run_s=50, steps=[("Plan", "ok"), ("Sandbox", "error")])
    log.task("FAILED", at(day, 5), queue_s=50, run_s=70, steps=[("Sandbox", "error"), ("Code", "error")])
    log.task("CANCELLED", at(day, 6), queue_s=5, run_s=15, steps=[("Plan", "skipped")])
    log.task("CANCELLED", at(day, 6, 30), queue_s=None, final_output=None)  # cancelled before it started
    log.task("RUNNING", at(day, 7), queue_s=60, run_s=None, steps=[("Plan", "ok")])
    log.task("PENDING", at(day, 8), queue_s=None)
    log.task("PENDING", at(day, 9), queue_s=None)
    log.task("FAILED", at(day, 10), agent="beta", queue_s=1, run_s=2, steps=[("Review", "error")])


def test_every_status_and_tasks_that_never_started(db: psycopg.Connection, log: TaskLog) -> None:
    generate_day(log, DAY)
    result = rollup_days(db, DAY, DAY)
    rows = rollup_rows(db)
    alpha, beta = log.agents["alpha"], log.agents["beta"]
    assert result.rows_inserted == len(rows) == 6 and result.rows_deleted == 0
    assert {k[3] for k in rows if k[2] == alpha} == {"COMPLETED", "FAILED", "CANCELLED", "RUNNING", "PENDING"}

    completed = rows[(DAY, ORG, alpha, "COMPLETED")]
    assert completed["task_count"] == completed["started_count"] == 3
    assert completed["success_rate"] == pytest.approx(3 / 5)
    assert completed["queue_wait_p50_s"] == 20 and completed["queue_wait_max_s"] == 30
    assert completed["queue_wait_p95_s"] == pytest.approx(29)  # percentile_cont between 20 and 30
    assert completed["run_time_p50_s"] == 200 and completed["run_time_max_s"] == 300
    assert completed["step_count"] == 6 and completed["steps_per_task"] == 2
    assert completed["failed_step_count"] == 0 and completed["top_failing_step"] is None

    failed = rows[(DAY, ORG, alpha, "FAILED")]
    assert failed["task_count"] == 2 and failed["failed_step_count"] == 3
    assert failed["top_failing_step"] == "Sandbox"  # twice, against Code once
    assert failed["success_rate"] == pytest.approx(3 / 5)  # the same on each row of the agent's day

    cancelled = rows[(DAY, ORG, alpha, "CANCELLED")]
    assert cancelled["task_count"] == 2 and cancelled["started_count"] == 1
    assert cancelled["queue_wait_p50_s"] == 5 and cancelled["run_time_max_s"] == 15

    running = rows[(DAY, ORG, alpha, "RUNNING")]
    assert running["queue_wait_max_s"] == 60 and running["run_time_p50_s"] is None

    pending = rows[(DAY, ORG, alpha, "PENDING")]
    assert pending["task_count"] == 2 and pending["started_count"] == 0
    assert pending["queue_wait_p50_s"] is None and pending["step_count"] == 0 and pending["steps_per_task"] == 0

    beta_failed = rows[(DAY, ORG, beta, "FAILED")]
    assert beta_failed["success_rate"] == 0 and beta_failed["top_failing_step"] == "Review"


def test_tasks_without_agent_and_per_organisation(db: psycopg.Connection, log: TaskLog) -> None:
    log.org(OTHER_ORG)
    log.task("COMPLETED", at(DAY, 1), agent=None)
    log.task("COMPLETED", at(DAY, 2), agent=None)
    log.task("FAILED", at(DAY, 3), org=OTHER_ORG)
    rollup_days(db, DAY, DAY)
    rollup_days(db, DAY, DAY)  # NULL agent rows are replaced too, not duplicated
    rows = rollup_rows(db)
    assert rows[(DAY, ORG, None, "COMPLETED")]["task_count"] == 2
    assert rows[(DAY, OTHER_ORG, log.agents["alpha"], "FAILED")]["task_count"] == 1
    assert len(rows) == 2


def test_task_spanning_midnight_counts_on_its_creation_day(db: psycopg.Connection, log: TaskLog) -> None:
    next_day = DAY + dt.timedelta(days=1)
    conversation = log.conversation()
    log.task("COMPLETED", at(DAY, 23, 50), queue_s=300, run_s=1800, conversation=conversation)
    log.message(conversation, "assistant", 1000, at(next_day, 0, 10))  # after midnight: still that task's
    log.task("COMPLETED", at(next_day, 0, 0, 0), agent="beta", queue_s=0, run_s=1)  # midnight itself: next day
    rollup_days(db, DAY, next_day)
    rows = rollup_rows(db)
    spanning = rows[(DAY, ORG, log.agents["alpha"], "COMPLETED")]
    assert spanning["task_count"] == 1 and spanning["run_time_max_s"] == 1800
    assert spanning["output_tokens"] == 1000
    assert rows[(next_day, ORG, log.agents["beta"], "COMPLETED")]["task_count"] == 1
    assert len(rows) == 2


def test_tokens_follow_the_latest_task_of_the_conversation_and_are_priced(db: psycopg.Connection, log: TaskLog) -> None:
    db.execute(
        "INSERT INTO model_prices (model, effective_from, input_usd_per_mtok, output_usd_per_mtok) VALUES "
        "('gpt-4o-mini', %s, 1, 2)",  # a price change from noon's day on: 1/2 instead of 0.15/0.60
        (DAY + dt.timedelta(days=1),),
    )
    conv = log.conversation()
    log.message(conv, "user", 7777, at(DAY, 0, 30))  # before any task of the conversation: nobody's
    first = log.task("COMPLETED", at(DAY, 1), conversation=conv)
    log.message(conv, "user", 100, at(DAY, 1, 0, 1))
    log.message(conv, "assistant", 1000, at(DAY, 1, 5))
    log.message(conv, "assistant", 500, at(DAY, 1, 6), model="gpt-4o")  # the message's own model wins
    log.message(conv, "tool", 40, at(DAY, 1, 7), model="homegrown-llm")  # no price: counted, unpriced
    log.task("FAILED", at(DAY, 2), conversation=conv)  # from here on, the second task's messages
    log.message(conv, "assistant", 2000, at(DAY, 2, 1))
    log.message(conv, "assistant", 3000, at(DAY + dt.timedelta(days=1), 9))  # next day's price, still task 2
    rollup_days(db, DAY, DAY)
    rows = rollup_rows(db)
    alpha = log.agents["alpha"]
    done = rows[(DAY, ORG, alpha, "COMPLETED")]
    assert (done["input_tokens"], done["output_tokens"], done["unpriced_tokens"]) == (140, 1500, 40)
    expected = (100 * Decimal("0.15") + 1000 * Decimal("0.60") + 500 * Decimal("10.00")) / 1_000_000
    assert done["estimated_cost_usd"] == expected
    failed = rows[(DAY, ORG, alpha, "FAILED")]
    assert (failed["input_tokens"], failed["output_tokens"]) == (0, 5000)
    assert failed["estimated_cost_usd"] == (2000 * Decimal("0.60") + 3000 * Decimal("2")) / 1_000_000
    assert first is not None


def test_late_data_rematerialized_replaces_the_partition_exactly(db: psycopg.Connection, log: TaskLog) -> None:
    before, after = DAY - dt.timedelta(days=1), DAY + dt.timedelta(days=1)
    for day in (before, DAY, after):
        generate_day(log, day)
    rollup_days(db, before, after)
    neighbours = comparable(rollup_rows(db, before)) | comparable(rollup_rows(db, after))
    first = comparable(rollup_rows(db, DAY))

    # Late data for DAY: a task reported after the fact, and the RUNNING task finishing.
    log.task("COMPLETED", at(DAY, 12), agent="beta", queue_s=1, run_s=9, steps=[("Plan", "ok")])
    db.execute(
        "UPDATE agent_tasks SET status = 'COMPLETED', completed_at = started_at + interval '90 seconds', "
        "final_output = '{\"result\": \"late\"}' WHERE status = 'RUNNING' AND created_at::date = %s",
        (DAY,),
    )
    result = rollup_days(db, DAY, DAY)
    second = comparable(rollup_rows(db, DAY))
    assert result.rows_deleted == len(first)
    assert (DAY, ORG, log.agents["alpha"], "RUNNING") not in second
    assert second[(DAY, ORG, log.agents["alpha"], "COMPLETED")]["task_count"] == 4
    assert second[(DAY, ORG, log.agents["beta"], "COMPLETED")]["task_count"] == 1
    assert second[(DAY, ORG, log.agents["beta"], "FAILED")]["success_rate"] == pytest.approx(1 / 2)

    # Exactly what a first-time aggregate gives, and the other days untouched.
    fresh = {(r[0], r[1], r[2], r[3]) for r in aggregate_days(db, DAY, DAY)}
    assert set(second) == fresh
    assert comparable(rollup_rows(db, before)) | comparable(rollup_rows(db, after)) == neighbours
    rollup_days(db, DAY, DAY)
    assert comparable(rollup_rows(db, DAY)) == second  # idempotent


def test_report_totals_by_agent_and_trend_chart(db: psycopg.Connection, log: TaskLog) -> None:
    generate_day(log, DAY)
    generate_day(log, DAY - dt.timedelta(days=3))
    rollup_days(db, DAY - dt.timedelta(days=3), DAY)
    totals = range_totals(db, DAY, DAY)
    assert totals["tasks"] == 11 and totals["completed"] == 3 and totals["failed"] == 3
    assert totals["pending"] == 2 and totals["never_started"] == 3 and totals["success_rate"] == 0.5
    lines = by_agent(db, DAY, DAY)
    assert [(line.agent, line.tasks, line.failed, line.top_failing_step) for line in lines] == [
        ("Alpha", 10, 2, "Sandbox"),
        ("Beta", 1, 1, "Review"),
    ]
    points = daily_series(db, DAY, 30)
    assert len(points) == 30 and points[-1].day == DAY and points[-1].tasks == 11
    assert points[-4].tasks == 11 and points[-2].tasks == 0
    assert trend_png(points).startswith(b"\x89PNG\r\n\x1a\n")
    assert trend_markdown(points).startswith("![tasks per day, last 30 days](data:image/png;base64,iVBOR")


# --- the checks -------------------------------------------------------------------------------------------


def test_checks_pass_on_consistent_logs(db: psycopg.Connection, log: TaskLog) -> None:
    now = at(DAY, 9)
    generate_day(log, DAY)
    assert checks.timestamps_out_of_order(db).passed
    assert checks.finished_without_outcome(db).passed
    assert checks.stuck_running(db, dt.timedelta(hours=6), now=now).passed  # RUNNING since 07:01
    assert checks.steps_without_task(db).passed


def test_timestamps_out_of_order_fails_and_names_the_rows(db: psycopg.Connection, log: TaskLog) -> None:
    generate_day(log, DAY)
    early_start = log.task("COMPLETED", at(DAY, 11), queue_s=-30)
    early_end = log.task("FAILED", at(DAY, 12), queue_s=10, run_s=-5)
    finding = checks.timestamps_out_of_order(db)
    assert finding.count == 2 and [r["id"] for r in finding.rows] == [early_start, early_end]


def test_finished_without_outcome_fails(db: psycopg.Connection, log: TaskLog) -> None:
    generate_day(log, DAY)
    no_output = log.task("COMPLETED", at(DAY, 11), final_output=None)
    json_null = log.task("FAILED", at(DAY, 12), final_output=None)
    db.execute("UPDATE agent_tasks SET final_output = 'null'::jsonb WHERE id = %s", (json_null,))
    no_end = log.task("FAILED", at(DAY, 13), run_s=None)
    log.task("CANCELLED", at(DAY, 14), final_output=None)  # not required of a cancelled task
    finding = checks.finished_without_outcome(db)
    assert finding.count == 3 and [r["id"] for r in finding.rows] == [no_output, json_null, no_end]
    assert [r["has_final_output"] for r in finding.rows] == [False, False, True]


def test_stuck_running_lists_the_tasks_over_the_limit(db: psycopg.Connection, log: TaskLog) -> None:
    old = log.task("RUNNING", at(DAY, 1), queue_s=0, run_s=None)
    log.task("RUNNING", at(DAY, 10), queue_s=0, run_s=None)
    finding = checks.stuck_running(db, dt.timedelta(hours=6), now=at(DAY, 12))
    assert finding.count == 1 and finding.rows[0]["id"] == old
    assert finding.rows[0]["running_for"] == dt.timedelta(hours=11)
    assert checks.stuck_running(db, dt.timedelta(hours=1), now=at(DAY, 12)).count == 2


def test_steps_without_task_fails_when_the_foreign_key_was_bypassed(db: psycopg.Connection, log: TaskLog) -> None:
    generate_day(log, DAY)
    pending = log.task("PENDING", at(DAY, 11), queue_s=None)
    log.step(pending, "Plan", "ok", at(DAY, 11, 1))  # a step of a task that never started
    # A bulk load that skipped the constraint: the foreign key is gone, a step points at no task.
    db.execute("ALTER TABLE task_steps DROP CONSTRAINT task_steps_task_id_organization_id_fkey")
    ghost = uuid.uuid4()
    log.step(ghost, "Plan", "ok", at(DAY, 12))
    log.step(ghost, "Code", "error", at(DAY, 12, 1))
    finding = checks.steps_without_task(db)
    assert finding.count == 3 and finding.detail == {"no_such_task": 2, "task_never_started": 1}
    assert [r["task_id"] for r in finding.rows] == [ghost, ghost, pending]
    assert [r["problem"] for r in finding.rows] == ["no such task", "no such task", "task never started"]


# --- Dagster ----------------------------------------------------------------------------------------------


def checks_config(limit_hours: float) -> dict[str, Any]:
    return {"ops": {"task_rollups_no_task_stuck_running": {"config": {"limit_hours": limit_hours}}}}


def test_materialize_one_partition_with_metadata_and_checks(database_url: str, db: psycopg.Connection) -> None:
    log = TaskLog(db)
    log.org()
    log.agent("alpha")
    log.agent("beta", "gpt-4o")
    generate_day(log, RECENT)
    generate_day(log, RECENT - dt.timedelta(days=1))
    result = dg.materialize(
        [task_rollups, *CHECKS],
        partition_key=RECENT.isoformat(),
        resources={"postgres": PostgresResource(database_url=database_url)},
        run_config=checks_config(24 * 3650),
    )
    assert result.success
    (materialization,) = result.asset_materializations_for_node("task_rollups")
    assert materialization.partition == RECENT.isoformat()
    meta = materialization.metadata
    assert meta["dagster/row_count"].value == 6 and meta["tasks"].value == 11
    assert meta["success_rate"].value == 0.5 and meta["never_started"].value == 3
    assert meta["run_days"].value == RECENT.isoformat()
    agents = meta["by_agent"].value.records  # type: ignore[union-attr]
    assert [(r.data["agent"], r.data["tasks"]) for r in agents] == [("Alpha", 10), ("Beta", 1)]
    assert "data:image/png;base64," in meta[TREND_KEY].value  # type: ignore[operator]
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == {c.check_key.name for c in CHECKS}
    assert all(e.passed for e in evaluations.values())
    assert {r[0] for r in db.execute("SELECT DISTINCT day FROM task_rollups").fetchall()} == {RECENT}


def test_failing_checks_show_in_the_run(database_url: str, db: psycopg.Connection) -> None:
    log = TaskLog(db)
    log.org()
    log.agent("alpha")
    generate_day(log, RECENT)
    log.task("COMPLETED", at(RECENT, 11), queue_s=-30)
    result = dg.materialize(
        [task_rollups, *CHECKS],
        partition_key=RECENT.isoformat(),
        resources={"postgres": PostgresResource(database_url=database_url)},
        run_config=checks_config(1),
    )
    assert result.success  # checks report, they do not fail the run
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    stuck = evaluations["no_task_stuck_running"]
    assert not stuck.passed and stuck.metadata["offending_rows"].value == 1
    assert stuck.metadata["limit_hours"].value == 1
    assert "RUNNING task" in stuck.metadata["rows"].value  # type: ignore[operator]
    assert not evaluations["task_timestamps_in_order"].passed
    assert evaluations["finished_tasks_have_outcome"].passed and evaluations["no_step_without_task"].passed


def range_tags(first: dt.date, last: dt.date) -> dict[str, str]:
    return {
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
    }


def latest_metadata(instance: dg.DagsterInstance, day: dt.date) -> dict[str, Any]:
    """The stored metadata of a partition's latest materialization, read back through the instance."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=task_rollups.key, asset_partitions=[day.isoformat()]), limit=1
    ).records
    assert records, f"no materialization of {day}"
    materialization = records[0].asset_materialization
    assert materialization is not None
    return {name: value.value for name, value in materialization.metadata.items()}


def test_a_range_backfill_is_one_run_and_each_day_keeps_its_own_figures(
    database_url: str, db: psycopg.Connection
) -> None:
    log = TaskLog(db)
    log.org()
    log.agent("alpha")
    log.agent("beta")
    first, last = RECENT - dt.timedelta(days=6), RECENT
    days = [first + dt.timedelta(days=o) for o in range(7)]
    for day in days[0::2]:
        generate_day(log, day)
    # The middle busy day has two more tasks, both completed: its figures differ from the other busy days.
    log.task("COMPLETED", at(days[2], 20))
    log.task("COMPLETED", at(days[2], 21))
    db.execute(
        "INSERT INTO task_rollups (day, organization_id, status, task_count, started_count, step_count, "
        "steps_per_task, failed_step_count, input_tokens, output_tokens, estimated_cost_usd, unpriced_tokens) "
        "VALUES (%s, %s, 'PENDING', 99, 0, 0, 0, 0, 0, 0, 0, 0)",
        (days[1], ORG),
    )
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [task_rollups],
        instance=instance,
        resources={"postgres": PostgresResource(database_url=database_url)},
        tags=range_tags(first, last),
    )
    assert result.success
    assert len(instance.get_runs()) == 1
    assert [m.partition for m in result.asset_materializations_for_node("task_rollups")] == [str(d) for d in days]

    stored = {day: latest_metadata(instance, day) for day in days}
    assert [stored[d]["tasks"] for d in days] == [11, 0, 13, 0, 11, 0, 11]
    assert [stored[d]["dagster/row_count"] for d in days] == [6, 0, 6, 0, 6, 0, 6]
    assert [stored[d]["rows_deleted"] for d in days] == [0, 1, 0, 0, 0, 0, 0]  # the stale row of days[1]
    assert stored[days[0]]["success_rate"] == 0.5 and stored[days[2]]["success_rate"] == 5 / 8
    assert stored[days[1]]["success_rate"] is None  # nothing finished that day
    assert [r.data["tasks"] for r in stored[days[2]]["by_agent"].records] == [12, 1]
    assert all(meta["run_days"] == f"{first}..{last}" for meta in stored.values())
    # The chart (30 days up to the run's newest day) is stored once, on that day.
    assert stored[last][TREND_KEY].startswith("![tasks per day")
    assert all(
        meta[TREND_KEY] == f"In the materialization of {last}, the newest day of this run."
        for meta in (stored[d] for d in days[:-1])
    )
    latest = instance.get_latest_materialization_event(task_rollups.key)
    assert latest is not None and latest.asset_materialization.partition == last.isoformat()  # type: ignore[union-attr]
    rebuilt = {r[0] for r in db.execute("SELECT DISTINCT day FROM task_rollups").fetchall()}
    assert rebuilt == set(days[0::2])
    assert task_rollups.backfill_policy == dg.BackfillPolicy.single_run()


def test_hourly_schedule_requests_today_and_closes_yesterday_after_midnight() -> None:
    context = dg.build_schedule_context(scheduled_execution_time=at(DAY, 14, 5))
    requests = task_rollups_hourly(context)
    assert [r.partition_key for r in requests] == [DAY.isoformat()]  # type: ignore[union-attr]
    context = dg.build_schedule_context(scheduled_execution_time=at(DAY, 0, 5))
    requests = task_rollups_hourly(context)
    assert [r.partition_key for r in requests] == [str(DAY - dt.timedelta(days=1)), str(DAY)]  # type: ignore[union-attr]
    assert task_rollups_hourly.job_name == task_rollups_job.name


def test_definitions_have_the_tasks_stage() -> None:
    from cogo.pipelines import defs

    graph = defs.resolve_asset_graph()
    key = dg.AssetKey("task_rollups")
    assert graph.get(key).group_name == "tasks"
    assert {c.name for c in graph.asset_check_keys if c.asset_key == key} == {c.check_key.name for c in CHECKS}
    assert defs.resolve_schedule_def("task_rollups_hourly").cron_schedule == "5 * * * *"
    today = dt.datetime.now(UTC).date()
    assert DAILY.get_last_partition_key() == today.isoformat()
    assert DAILY.get_first_partition_key() == partitions_start(os.environ, today).isoformat()


def test_partitions_start_with_the_retention_window_unless_a_date_is_given() -> None:
    today = dt.date(2026, 12, 3)
    # The default window: 30 days, today included; no 2024 partitions to show as missing.
    assert partitions_start({}, today) == dt.date(2026, 11, 4)
    assert (today - partitions_start({}, today)).days + 1 == 30
    assert partitions_start({"COGO_RETENTION_DAYS": "60"}, today) == dt.date(2026, 10, 5)
    assert partitions_start({"COGO_TASK_ROLLUPS_START": "2025-01-01"}, today) == dt.date(2025, 1, 1)
    with pytest.raises(ValueError, match="COGO_TASK_ROLLUPS_START='last year' is not a date"):
        partitions_start({"COGO_TASK_ROLLUPS_START": "last year"}, today)


def test_backfill_of_a_year_is_one_run_with_each_days_own_figures(database_url: str, db: psycopg.Connection) -> None:
    """What COGO_TASK_ROLLUPS_START a year back allows: the asset with partitions from that day on."""
    log = TaskLog(db)
    log.org()
    log.agent("alpha")
    first, last = DAY - dt.timedelta(days=365), DAY
    log.task("COMPLETED", at(first, 0, 0, 1))
    log.task("FAILED", at(last, 23, 59, 59), queue_s=0, run_s=0.5)
    from_first = daily_partitions(first)
    (year_rollups,) = dg.map_asset_specs(
        lambda spec: spec.replace_attributes(partitions_def=from_first), [task_rollups]
    )
    result = dg.materialize(
        [year_rollups],
        resources={"postgres": PostgresResource(database_url=database_url)},
        tags=range_tags(first, last),
    )
    assert result.success  # one run, one statement for the 366 days
    materializations = result.asset_materializations_for_node("task_rollups")
    assert len(materializations) == 366
    by_day = {m.partition: m.metadata for m in materializations}
    assert by_day[str(first)]["tasks"].value == 1 and by_day[str(first)]["success_rate"].value == 1.0
    assert by_day[str(last)]["tasks"].value == 1 and by_day[str(last)]["success_rate"].value == 0.0
    assert sum(meta["tasks"].value for meta in by_day.values()) == 2  # type: ignore[misc]
    charts = [day for day, meta in by_day.items() if "data:image/png" in str(meta[TREND_KEY].value)]
    assert charts == [str(last)]  # one chart for the run, not 366 copies
    assert db.execute("SELECT array_agg(day ORDER BY day) FROM task_rollups").fetchone()[0] == [first, last]  # type: ignore[index]


def test_the_agent_table_holds_agents_with_and_without_failures() -> None:
    from cogo.assets.tasks import _agent_table
    from cogo.tasks.report import AgentLine

    table = _agent_table(
        [
            AgentLine("a", 3, 2, 1, 0.67, 12.0, "Review", 100, 0.01),
            AgentLine("b", 1, 0, 0, None, None, None, 0, 0.0),
        ]
    )
    assert [r.data["top_failing_step"] for r in table.records] == ["Review", None]
