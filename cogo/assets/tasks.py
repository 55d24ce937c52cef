"""[tasks] Daily rollups of the agent task logs, the checks on those logs, and the hourly schedule."""
# No `from __future__ import annotations` in asset modules: Dagster inspects the real annotations.

import datetime as dt
import os
from collections.abc import Mapping

import dagster as dg
import psycopg
from pydantic import Field

from cogo.config import Settings
from cogo.resources import PostgresResource
from cogo.tasks import checks as task_checks
from cogo.tasks.chart import trend_markdown
from cogo.tasks.report import AgentLine, by_agent, daily_series, range_totals
from cogo.tasks.rollup import RollupResult, rollup_days

START_ENV = "COGO_TASK_ROLLUPS_START"
TREND_DAYS = 30
TREND_KEY = f"trend_{TREND_DAYS}_days"
# The group's owners and tags as cogo.pipelines.definitions gives its assets; Dagster takes them on a job or
# schedule only when it is built, so they are repeated here (tests/test_definitions.py keeps them equal).
OWNERS = ["team:data-platform"]
TAGS = {"layer": "derived", "tenant_data": "true"}


def partitions_start(env: Mapping[str, str], today: dt.date) -> dt.date:
    """COGO_TASK_ROLLUPS_START (YYYY-MM-DD), else the retention window back from today: older days may have
    lost their conversations' messages to the sweep, so rebuilding them would undercount tokens and cost."""
    raw = env.get(START_ENV, "").strip()
    if not raw:
        return today - dt.timedelta(days=max(Settings.from_env(env).retention_days, 1) - 1)
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{START_ENV}={raw!r} is not a date; give it as YYYY-MM-DD") from None


def daily_partitions(start: dt.date) -> dg.DailyPartitionsDefinition:
    # end_offset=1: today's partition exists (and fills up during the day), not only finished days.
    return dg.DailyPartitionsDefinition(start_date=start.isoformat(), end_offset=1, timezone="UTC")


# Read when the code location loads: a partition set is part of the definitions, not of a run.
DAILY = daily_partitions(partitions_start(os.environ, dt.datetime.now(dt.UTC).date()))

AGENT_TABLE_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("agent", "string"),
        dg.TableColumn("tasks", "int"),
        dg.TableColumn("completed", "int"),
        dg.TableColumn("failed", "int"),
        dg.TableColumn("success_rate", "float"),
        dg.TableColumn("run_time_max_s", "float"),
        dg.TableColumn("top_failing_step", "string"),
        dg.TableColumn("tokens", "int"),
        dg.TableColumn("estimated_cost_usd", "float"),
    ]
)


def _agent_table(lines: list[AgentLine]) -> dg.TableMetadataValue:
    return dg.MetadataValue.table(
        # Every record carries every column (Dagster requires it); an agent with nothing failed has None.
        [dg.TableRecord(dict(vars(line))) for line in lines],
        schema=AGENT_TABLE_SCHEMA,
    )


def day_metadata(conn: psycopg.Connection, day: dt.date, result: RollupResult) -> dict[str, object]:
    """One day's own figures: what its partition's materialization shows and plots."""
    totals = range_totals(conn, day, day)
    success_rate = totals["success_rate"]
    inserted = result.inserted_by_day.get(day, 0)
    return {
        "tasks": totals["tasks"],
        "completed": totals["completed"],
        "failed": totals["failed"],
        "cancelled": totals["cancelled"],
        "running": totals["running"],
        "pending": totals["pending"],
        "never_started": totals["never_started"],
        "success_rate": dg.MetadataValue.null() if success_rate is None else dg.MetadataValue.float(success_rate),
        "steps": totals["steps"],
        "input_tokens": totals["input_tokens"],
        "output_tokens": totals["output_tokens"],
        "unpriced_tokens": totals["unpriced_tokens"],
        "estimated_cost_usd": dg.MetadataValue.float(round(totals["estimated_cost_usd"], 4)),
        "by_agent": _agent_table(by_agent(conn, day, day)),
        "dagster/row_count": inserted,
        "rows_inserted": inserted,
        "rows_deleted": result.deleted_by_day.get(day, 0),
    }


def _days_label(first_day: dt.date, last_day: dt.date) -> str:
    return f"{first_day}..{last_day}" if first_day != last_day else str(first_day)


@dg.asset(
    group_name="tasks",
    kinds={"postgres"},
    partitions_def=DAILY,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=["platform_schema"],
)
def task_rollups(context: dg.AssetExecutionContext, postgres: PostgresResource) -> dg.MaterializeResult:
    """Per UTC day x organisation x agent x task status: task count, success rate, queue wait and run time
    (p50/p95/max), steps per task, the most frequent failing step, tokens of the task's conversation and
    their estimated cost (model_prices). Each run replaces its days exactly; a backfill of any range of
    days is one run and one statement, and records one materialization per day with that day's own
    figures. A task counts on the day it was created (UTC)."""
    key_range = context.partition_key_range
    first_day, last_day = dt.date.fromisoformat(key_range.start), dt.date.fromisoformat(key_range.end)
    with postgres.connection() as conn:
        result = rollup_days(conn, first_day, last_day)
        days = {key: day_metadata(conn, dt.date.fromisoformat(key), result) for key in context.partition_keys}
        chart = trend_markdown(daily_series(conn, last_day, TREND_DAYS))
    run = {"run_days": _days_label(first_day, last_day), "run_duration_s": result.duration_s}
    for key, figures in days.items():
        # One chart per run (about 30 kB of PNG), on its newest day: the chart shows the run's other days too.
        trend = chart if key == key_range.end else f"In the materialization of {last_day}, the newest day of this run."
        context.add_asset_metadata({**figures, **run, TREND_KEY: dg.MetadataValue.md(trend)}, partition_key=key)
    context.log.info(
        f"task_rollups {run['run_days']}: {result.rows_inserted} rows "
        f"({result.rows_deleted} replaced) in {result.duration_s}s"
    )
    # Every figure was given per partition above; a value here would be copied onto each of them.
    return dg.MaterializeResult()


def _rows_markdown(rows: list[dict], count: int) -> dg.MetadataValue:
    if not rows:
        return dg.MetadataValue.md("none")
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("" if r[h] is None else str(r[h]) for h in header) + " |" for r in rows]
    if count > len(rows):
        lines.append(f"\n… and {count - len(rows)} more (oldest shown first).")
    return dg.MetadataValue.md("\n".join(lines))


def _check_result(finding: task_checks.Finding, **extra: object) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=finding.passed,
        metadata={
            "offending_rows": finding.count,
            **finding.detail,
            **extra,
            "rows": _rows_markdown(finding.rows, finding.count),
        },
        description=None if finding.passed else f"{finding.count} offending rows",
    )


@dg.asset_check(asset=task_rollups, description="agent_tasks: created_at <= started_at <= completed_at.")
def task_timestamps_in_order(postgres: PostgresResource) -> dg.AssetCheckResult:
    with postgres.connection() as conn:
        return _check_result(task_checks.timestamps_out_of_order(conn))


@dg.asset_check(asset=task_rollups, description="COMPLETED and FAILED tasks have completed_at and a final_output.")
def finished_tasks_have_outcome(postgres: PostgresResource) -> dg.AssetCheckResult:
    with postgres.connection() as conn:
        return _check_result(task_checks.finished_without_outcome(conn))


class StuckRunningConfig(dg.Config):
    limit_hours: float = Field(default=6.0, gt=0, description="A RUNNING task older than this is stuck.")


@dg.asset_check(asset=task_rollups, description="No task has been RUNNING for longer than limit_hours (default 6).")
def no_task_stuck_running(config: StuckRunningConfig, postgres: PostgresResource) -> dg.AssetCheckResult:
    with postgres.connection() as conn:
        finding = task_checks.stuck_running(conn, dt.timedelta(hours=config.limit_hours))
    return _check_result(finding, limit_hours=config.limit_hours)


@dg.asset_check(
    asset=task_rollups,
    description="Every task_steps row has its task (checked set-based, not trusting the foreign key), "
    "and that task has started.",
)
def no_step_without_task(postgres: PostgresResource) -> dg.AssetCheckResult:
    with postgres.connection() as conn:
        return _check_result(task_checks.steps_without_task(conn))


task_rollups_job = dg.define_asset_job(
    "task_rollups_job",
    selection=dg.AssetSelection.assets(task_rollups),
    description="task_rollups for one day (or a range, as one run) and the checks on the task logs.",
    owners=OWNERS,
    tags=TAGS,
)


@dg.schedule(
    cron_schedule="5 * * * *",
    job=task_rollups_job,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every hour at :05, today's task_rollups partition (UTC). The first tick of a day also closes "
    "yesterday's, so tasks that finished after midnight are counted there; later changes to older days need "
    "a backfill.",
    owners=OWNERS,
    tags=TAGS,
)
def task_rollups_hourly(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
    now = context.scheduled_execution_time.astimezone(dt.UTC)
    days = [now.date()]
    if now.hour == 0:
        days.insert(0, now.date() - dt.timedelta(days=1))
    return [
        dg.RunRequest(run_key=f"{day.isoformat()}@{now:%Y-%m-%dT%H:%M}", partition_key=day.isoformat()) for day in days
    ]


assets = [task_rollups]
checks = [task_timestamps_in_order, finished_tasks_have_outcome, no_task_stuck_running, no_step_without_task]
jobs = [task_rollups_job]
schedules = [task_rollups_hourly]
