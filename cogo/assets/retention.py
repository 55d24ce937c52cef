"""[retention] The daily retention sweep: expired data out of Postgres and off the workspace disk, audited."""
# No `from __future__ import annotations` in asset modules: Dagster inspects the real annotations.

import datetime as dt
from pathlib import Path

import dagster as dg
from pydantic import Field

from cogo.config import Settings
from cogo.resources import PostgresResource
from cogo.retention import SweepOptions, SweepReport, audit, sweep

ORG_TABLE_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("organization_id", "string"),
        dg.TableColumn("table", "string"),
        dg.TableColumn("action", "string", description="deleted, or unlinked (the row is kept)"),
        dg.TableColumn("reason", "string"),
        dg.TableColumn("rows", "int"),
    ]
)
# The group's owners and tags as cogo.pipelines.definitions gives its assets; Dagster takes them on a job or
# schedule only when it is built, so they are repeated here (tests/test_definitions.py keeps them equal).
OWNERS = ["team:data-platform"]
TAGS = {"layer": "lifecycle", "tenant_data": "true"}


class RetentionSweepConfig(dg.Config):
    dry_run: bool = Field(default=False, description="Count what would be deleted; delete nothing.")
    retention_days: int | None = Field(
        default=None, description="Default window in days; empty: COGO_RETENTION_DAYS (30). Organisations "
        "override it with settings.retention_days."
    )  # fmt: skip
    workspaces_dir: str | None = Field(default=None, description="Workspace root; empty: COGO_WORKSPACES_DIR.")
    as_of: str | None = Field(
        default=None, description="The sweep's clock, ISO 8601 with a time zone; empty: now (UTC)."
    )
    batch_size: int = Field(default=1000, ge=1, description="Rows per transaction (files, states, inbox, disk).")
    conversation_batch_size: int = Field(default=100, ge=1, description="Conversations per transaction.")


def _organization_rows(report: SweepReport) -> list[dg.TableRecord]:
    rows = []
    for (item, org, reason), n in sorted(report.counts.items()):
        unlinked = audit.is_unlinked(item)
        table, action = (audit.unlinked_table(item), "unlinked") if unlinked else (item, "deleted")
        rows.append(
            dg.TableRecord(
                {"organization_id": org or "-", "table": table, "action": action, "reason": reason, "rows": n}
            )
        )
    return rows


def _count_metadata(report: SweepReport) -> dict[str, int]:
    """deleted_<table> and unlinked_<table> (dry run: would_delete_, would_unlink_), one per table."""
    deleted, unlinked = ("would_delete", "would_unlink") if report.dry_run else ("deleted", "unlinked")
    return {
        **{f"{deleted}_{table}": n for table, n in report.by_table().items()},
        **{f"{unlinked}_{table}": n for table, n in report.unlinked_by_table().items()},
    }


# After the stages that feed it (in one run, `make run`, it sweeps what they have registered), and never beside a
# workspace scan (the two share the "workspace" pool): a file is registered before its conversation is swept.
@dg.asset(
    group_name="retention",
    kinds={"postgres"},
    deps=["platform_schema", "clerk_directory", "workspace_files", "file_embeddings", "message_embeddings"],
    pool="workspace",
)
def retention_sweep(
    context: dg.AssetExecutionContext, config: RetentionSweepConfig, postgres: PostgresResource
) -> dg.MaterializeResult:
    """Deletes what is past its time: conversations without activity for the window (with their messages,
    message files and agent states; their agent tasks are kept, unlinked), files (rows, chunks, embeddings
    and the files on disk), agent states not updated for the window, and applied Clerk webhook events; and
    everything of users deleted in Clerk. In short batches; files on disk only after their rows, through
    pending_file_deletions; never outside the workspace root. Every deletion and unlink is counted in
    retention_runs / retention_run_items."""
    settings = Settings.from_env()
    now = dt.datetime.fromisoformat(config.as_of) if config.as_of else dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        raise dg.Failure(f"as_of {config.as_of!r} has no time zone; add one (e.g. +00:00).", allow_retries=False)
    options = SweepOptions(
        workspaces_dir=Path(config.workspaces_dir).expanduser().absolute()
        if config.workspaces_dir else settings.workspaces_dir,
        default_days=config.retention_days or settings.retention_days,
        dry_run=config.dry_run,
        batch_size=config.batch_size,
        conversation_batch_size=config.conversation_batch_size,
    )  # fmt: skip
    with postgres.connection(autocommit=True) as conn:
        report = sweep(conn, now, options)
    by_table, unlinked = report.by_table(), report.unlinked_by_table()
    verb = "would delete" if report.dry_run else "deleted"
    context.log.info(
        f"retention run {report.run_id} as of {now.isoformat()} {verb}: {by_table or 'nothing'}; "
        f"{'would unlink' if report.dry_run else 'unlinked'}: {unlinked or 'nothing'}"
    )
    if report.refused:
        context.log.warning(f"{len(report.refused)} disk deletions refused (outside the workspace root)")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": report.total,
            "run_id": report.run_id,
            "as_of": now.isoformat(),
            "dry_run": report.dry_run,
            "default_days": options.default_days,
            "workspaces_dir": str(options.workspaces_dir),
            **_count_metadata(report),
            "by_table": dg.MetadataValue.json(by_table),
            "unlinked_by_table": dg.MetadataValue.json(unlinked),
            "by_organization": dg.MetadataValue.table(_organization_rows(report), schema=ORG_TABLE_SCHEMA),
            "refused_paths": dg.MetadataValue.json(report.refused),
            "disk_errors": dg.MetadataValue.json(report.notes.get("disk_errors", [])),
            "already_missing_on_disk": report.notes.get("already_missing", 0),
            "inbox": report.notes.get("inbox", ""),
            "disk": report.notes.get("disk", ""),
            "invalid_overrides": dg.MetadataValue.json(report.notes.get("invalid_overrides", {})),
            "duration_s": report.duration_s,
        }
    )


@dg.asset_check(
    asset=retention_sweep,
    description="The disk-deletion queue holds no path the sweep refused or failed to remove.",
)
def retention_disk_queue_clear(postgres: PostgresResource) -> dg.AssetCheckResult:
    with postgres.connection() as conn:
        stuck = conn.execute(
            "SELECT storage_path, last_error FROM pending_file_deletions WHERE last_error IS NOT NULL "
            "ORDER BY id LIMIT 20"
        ).fetchall()
        row = conn.execute("SELECT count(*) FROM pending_file_deletions WHERE last_error IS NOT NULL").fetchone()
    count = int(row[0]) if row else 0
    return dg.AssetCheckResult(
        passed=count == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"stuck": count, "examples": dg.MetadataValue.json([{"path": p, "error": e} for p, e in stuck])},
    )


retention_sweep_job = dg.define_asset_job(
    "retention_sweep_job",
    selection=[retention_sweep],
    description="The retention sweep and its check.",
    owners=OWNERS,
    tags=TAGS,
)

retention_daily = dg.ScheduleDefinition(
    name="retention_daily",
    job=retention_sweep_job,
    cron_schedule="30 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Runs retention_sweep once a day (03:30 UTC); on by default, as the 30-day promise needs it.",
    owners=OWNERS,
    tags=TAGS,
)

assets = [retention_sweep]
checks = [retention_disk_queue_clear]
jobs = [retention_sweep_job]
schedules = [retention_daily]
