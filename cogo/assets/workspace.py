"""[workspace] Files under COGO_WORKSPACES_DIR registered in `files`: workspace_files_sensor -> workspace_files."""
# No `from __future__ import annotations` in asset modules: Dagster inspects the real annotations.

import hashlib
import json

import dagster as dg
from pydantic import Field

from cogo.resources import PostgresResource
from cogo.resources.workspace import WorkspaceResource
from cogo.workspace.register import DeletionGuard, register_files
from cogo.workspace.scan import Cursor, changes_since

# Past this many changed paths a run rescans the whole root instead (a small run config, same result).
MAX_PATHS_PER_RUN = 1000
REFUSALS_SHOWN = 50


class WorkspaceBatch(dg.Config):
    """What the sensor saw change. Both empty (a manual run, `make run`): the whole root is reconciled."""

    paths: list[str] = Field(default_factory=list, description="Files (relative to the root) that changed.")
    dirs: list[str] = Field(default_factory=list, description="Directories whose subtree is reconciled.")
    allow_mass_delete: bool = Field(
        default=False,
        description="Make the deletions the guard held (an empty or missing root, more than "
        "COGO_WORKSPACE_MAX_DELETE_SHARE of an organisation's files at once): only once the files are really gone.",
    )


@dg.asset(
    group_name="workspace",
    kinds={"postgres"},
    deps=["platform_schema"],
    pool="workspace",
    check_specs=[
        dg.AssetCheckSpec(
            "no_deletions_held",
            asset="workspace_files",
            description="The scan deleted every file that was gone: none held back by the mass-deletion guard "
            "(an empty or unmounted root, or too large a share of an organisation's files at once).",
        )
    ],
)
def workspace_files(
    context: dg.AssetExecutionContext, config: WorkspaceBatch, postgres: PostgresResource, workspace: WorkspaceResource
) -> dg.MaterializeResult:
    """Workspace files ({org}/{user}/{conversation}/files/{uploads|generated|attachments}/...) registered in
    `files` with organisation, user, conversation, kind, size, sha256 and MIME type. New, changed, moved and
    deleted files are reconciled (a deleted file's chunks and vectors go with it). Paths that do not fit the
    layout, symlinks, hard links and anything outside the root are refused and listed in workspace_refusals, as
    are files of a user who is not a member of the organisation or in another user's private conversation;
    paths naming an organisation, user, membership or conversation not in the database (yet) are kept 'pending'
    and retried. An empty or missing root, or a scan that would delete too large a share of an organisation's
    files, deletes nothing for that organisation (check no_deletions_held)."""
    root = workspace.path()
    full = not config.paths and not config.dirs
    guard = DeletionGuard.from_env(allow=config.allow_mass_delete)
    with postgres.connection() as conn:
        report = register_files(conn, root, paths=config.paths, dirs=config.dirs, full=full, guard=guard)
    counts = report.counts()
    context.log.info(f"workspace_files ({'full scan' if full else 'batch'} of {root}): {counts}")
    for path, reason in report.refused[:REFUSALS_SHOWN]:
        context.log.warning(f"refused {path}: {reason}")
    held = report.held()
    for h in held:
        context.log.error(f"deletions held for {h['organization_id']}: {h['reason']}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(report.new) + len(report.changed) + len(report.moved),
            "scan": "full" if full else "batch",
            "root": str(root),
            **report.as_metadata(REFUSALS_SHOWN),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="no_deletions_held",
                passed=not held,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"held_deletions": dg.MetadataValue.json(held)},
                description="Deletions held; if the files are really gone, materialize with allow_mass_delete."
                if held
                else None,
            )
        ],
    )


# A dropped file should be searchable within seconds: registration, chunking and embedding go in one run, in one
# process (a process per step would cost more than a small file's work).
workspace_ingest_job = dg.define_asset_job(
    "workspace_ingest_job",
    selection=dg.AssetSelection.assets("workspace_files", "file_chunks", "file_embeddings"),
    executor_def=dg.in_process_executor,
    description="Register what changed under the workspace root, chunk and embed it: what workspace_files_sensor "
    "starts.",
)


@dg.sensor(
    name="workspace_files_sensor",
    job=workspace_ingest_job,
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Walks the workspace root with lstat only and starts workspace_ingest_job (register, chunk, embed) "
    "for the files and directories changed since its cursor (an mtime watermark); the asset does the hashing. "
    "The first tick requests a full scan.",
)
def workspace_files_sensor(context: dg.SensorEvaluationContext, workspace: WorkspaceResource):
    root = workspace.path()
    if not root.is_dir():
        return dg.SkipReason(f"workspace root {root} does not exist")
    cursor = Cursor.from_json(context.cursor)
    changes = changes_since(root, cursor)
    if cursor.is_fresh:
        context.update_cursor(changes.cursor.to_json())
        return dg.RunRequest(run_key=f"workspace:full:{changes.cursor.watermark_ns}", tags={"cogo/scan": "full"})
    if not changes:
        return dg.SkipReason("no file changed under the workspace root")
    context.update_cursor(changes.cursor.to_json())
    paths = sorted(e.path for e in changes.files)
    dirs = sorted(e.path for e in changes.dirs)
    signature = json.dumps(
        [(e.path, e.mtime_ns, e.size) for e in sorted(changes.files + changes.dirs, key=lambda e: e.path)]
    )
    key = hashlib.sha256(signature.encode()).hexdigest()[:24]
    if changes.root_changed or len(paths) + len(dirs) > MAX_PATHS_PER_RUN:
        return dg.RunRequest(run_key=f"workspace:full:{key}", tags={"cogo/scan": "full"})
    return dg.RunRequest(
        run_key=f"workspace:{key}",
        run_config=dg.RunConfig(ops={"workspace_files": WorkspaceBatch(paths=paths, dirs=dirs)}),
        tags={"cogo/scan": "batch", "cogo/changed_paths": str(len(paths)), "cogo/changed_dirs": str(len(dirs))},
    )


workspace_reconcile_daily = dg.ScheduleDefinition(
    name="workspace_reconcile_daily",
    job=workspace_ingest_job,
    cron_schedule="47 2 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="A full scan of the workspace root once a day (02:47 UTC): whatever the sensor's mtime watermark "
    "cannot see (bytes changed under an old mtime, a disk remounted with old times) is hashed and registered.",
)

assets = [workspace_files]
jobs = [workspace_ingest_job]
schedules = [workspace_reconcile_daily]
sensors = [workspace_files_sensor]
