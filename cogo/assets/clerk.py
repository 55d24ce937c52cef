"""[clerk] Organizations, users and memberships mirrored from Clerk: webhooks applied from the inbox
(clerk_inbox_sensor -> clerk_directory) and a daily pull from the Backend API (clerk_reconcile_daily ->
clerk_reconciliation). Thin shells over cogo.clerk."""
# No `from __future__ import annotations` in asset modules: Dagster inspects the real annotations.

import dagster as dg
import psycopg
from psycopg import sql
from pydantic import Field

from cogo.clerk.inbox import apply_inbox, due_events, unapplied_summary
from cogo.clerk.reconcile import DEFAULT_MAX_DELETE_FRACTION, reconcile
from cogo.errors import CogoError
from cogo.resources import PostgresResource
from cogo.resources.clerk import ClerkApiResource

STALE_INBOX_S = 3600  # an event still unapplied after an hour needs a person
# The group's owners and tags as cogo.pipelines.definitions gives its assets; Dagster takes them on a job,
# sensor or schedule only when it is built, so they are repeated here (tests/test_definitions.py keeps them equal).
OWNERS = ["team:data-platform"]
TAGS = {"layer": "ingest", "tenant_data": "true"}
# What the mirror holds after a run; soft-deleted rows stay (a delete is final), so both are counted.
DIRECTORY_TABLES = {
    "organizations": "organizations",
    "users": "users",
    "memberships": "organization_memberships",
}


def directory_counts(conn: psycopg.Connection) -> dict[str, int]:
    """{organizations,users,memberships}_{active,deleted}: the directory as it stands, not this run's changes."""
    counts: dict[str, int] = {}
    for name, table in DIRECTORY_TABLES.items():
        row = conn.execute(
            sql.SQL("SELECT count(*) FILTER (WHERE deleted_at IS NULL), count(deleted_at) FROM {}").format(
                sql.Identifier(table)
            )
        ).fetchone()
        active, deleted = row if row else (0, 0)
        counts[f"{name}_active"], counts[f"{name}_deleted"] = int(active), int(deleted)
    return counts


@dg.asset(group_name="clerk", kinds={"postgres"}, deps=["platform_schema"])
def clerk_directory(context: dg.AssetExecutionContext, postgres: PostgresResource) -> dg.MaterializeResult:
    """organizations, users and organization_memberships as Clerk's webhooks describe them. Applies every
    unapplied event in clerk_webhook_inbox in event-time order with guarded upserts: an update older than
    the stored one changes nothing, deletes are soft and final, a membership may precede its user or
    organization. An event that cannot be applied is marked with its error and retried on the next run."""
    with postgres.connection(autocommit=True) as conn:
        run = apply_inbox(conn)
        directory = directory_counts(conn)
    for error in run.errors:
        context.log.warning(f"Clerk event not applied: {error}")
    return dg.MaterializeResult(
        metadata={**run.as_metadata(), **directory}
    )


@dg.asset_check(asset=clerk_directory, description="No Clerk webhook has waited unapplied for over an hour.")
def clerk_inbox_drained(postgres: PostgresResource) -> dg.AssetCheckResult:
    with postgres.connection(autocommit=True) as conn:
        unapplied, oldest_age_s = unapplied_summary(conn)
        failed = conn.execute(
            "SELECT count(*) FROM clerk_webhook_inbox WHERE applied_at IS NULL AND status = 'failed'"
        ).fetchone()[0]
    return dg.AssetCheckResult(
        passed=(oldest_age_s or 0.0) < STALE_INBOX_S,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"unapplied": unapplied, "failed": failed, "oldest_unapplied_age_s": round(oldest_age_s or 0.0, 1)},
    )


@dg.sensor(
    name="clerk_inbox_sensor",
    target=[clerk_directory],
    minimum_interval_seconds=10,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts clerk_directory when webhooks wait in clerk_webhook_inbox (new ones, or failed ones "
    "past their backoff). The run_key and cursor name the waiting set, so one set starts one run.",
    owners=OWNERS,
    tags=TAGS,
)
def clerk_inbox_sensor(context: dg.SensorEvaluationContext, postgres: PostgresResource):
    try:
        with postgres.connection(autocommit=True) as conn:
            count, key = due_events(conn)
    except CogoError as exc:
        return dg.SkipReason(f"Postgres unavailable: {exc}")
    if not count:
        return dg.SkipReason("no Clerk events waiting")
    if key == context.cursor:
        return dg.SkipReason(f"a run was already requested for these {count} events")
    context.update_cursor(key)
    return dg.RunRequest(run_key=f"clerk-inbox:{key}", tags={"cogo/clerk_events_due": str(count)})


class ReconcileConfig(dg.Config):
    max_delete_fraction: float = Field(
        default=DEFAULT_MAX_DELETE_FRACTION,
        description="Refuse the deletes when they would remove more than this fraction of any kind's active rows "
        "(deletes are final); 1.0 allows a pull to delete everything it no longer finds.",
    )


@dg.asset(
    group_name="clerk",
    kinds={"postgres"},
    deps=[clerk_directory],
    retry_policy=dg.RetryPolicy(max_retries=2, delay=60, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS),
)
def clerk_reconciliation(
    context: dg.AssetExecutionContext,
    config: ReconcileConfig,
    postgres: PostgresResource,
    clerk_api: ClerkApiResource,
) -> dg.MaterializeResult:
    """A full pull of Clerk's organizations, users and memberships (Backend API, largest pages, 429 and
    5xx retried) through the same guarded upserts as the webhooks; then soft-deletes what Clerk no longer
    has, only if the pull completed and its counts match Clerk's totals, and only rows not updated since
    the pull began. Skipped (nothing pulled or deleted) while CLERK_SECRET_KEY is unset."""
    if not clerk_api.resolved_secret_key():
        context.log.warning("CLERK_SECRET_KEY is not set: Clerk reconciliation skipped")
        return dg.MaterializeResult(metadata={"skipped": "CLERK_SECRET_KEY is not set"})
    with clerk_api.client() as client, postgres.connection(autocommit=True) as conn:
        result = reconcile(conn, client, max_delete_fraction=config.max_delete_fraction)
    metadata = {
        "complete": result.complete,
        "seen": dg.MetadataValue.json(result.seen),
        "clerk_totals": dg.MetadataValue.json(result.totals),
        "applied": result.counts["applied"],
        "ignored_stale": result.counts["stale"],
        "ignored_deleted": result.counts["ignored"],
        "failed": result.counts["failed"],
        "deleted": dg.MetadataValue.json(result.deleted),
        "deletes_skipped": result.deletes_skipped or "no",
        "requests_made": result.requests_made,
        "duration_s": round(result.duration_s, 3),
    }
    for error in result.errors:
        context.log.warning(f"Clerk object not applied: {error}")
    if not result.complete:
        # 4xx other than 429 (a wrong key, a wrong URL) will not fix itself on retry.
        retryable = not any(f"HTTP {code}" in (result.error or "") for code in (400, 401, 403, 404, 422))
        raise dg.Failure(
            description=f"Clerk pull incomplete, nothing deleted: {result.error}",
            metadata=metadata,
            allow_retries=retryable,
        )
    return dg.MaterializeResult(metadata=metadata)


clerk_reconcile_job = dg.define_asset_job(
    "clerk_reconcile_job",
    selection=[clerk_reconciliation],
    description="Pull Clerk's directory and reconcile it with Postgres (what clerk_reconcile_daily runs).",
    owners=OWNERS,
    tags=TAGS,
)

clerk_reconcile_daily = dg.ScheduleDefinition(
    name="clerk_reconcile_daily",
    job=clerk_reconcile_job,
    cron_schedule="17 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Daily at 03:17 UTC: catch what webhooks missed (a lost delivery, an outage longer than "
    "Svix's retries).",
    owners=OWNERS,
    tags=TAGS,
)

assets = [clerk_directory, clerk_reconciliation]
checks = [clerk_inbox_drained]
jobs = [clerk_reconcile_job]
schedules = [clerk_reconcile_daily]
sensors = [clerk_inbox_sensor]
