"""[workspace] Files under COGO_WORKSPACES_DIR registered in `files`: workspace_files_sensor -> workspace_files."""
# No `from __future__ import annotations` in asset modules: Dagster inspects the real annotations.

import hashlib
import json

import dagster as dg
from pydantic import Field

from cogo.resources import PostgresResource
from cogo.resources.workspace import WorkspaceResource
from cogo.workspace.register import register_files
from cogo.workspace.scan import Cursor, changes_since

# Past this many changed paths a run rescans the whole root instead (a small run config, same result).
MAX_PATHS_PER_RUN = 1000
REFUSALS_SHOWN = 50


class WorkspaceBatch(dg.Config):
    """What the sensor saw change. Both empty (a manual run, `make run`): the whole root is reconciled."""

    paths: list[str] = Field(default_factory=list, description="Files (relative to the root) that changed.")
    dirs: list[str] = Field(default_factory=list, description="Directories whose subtree is reconciled.")


@dg.asset(group_name="workspace", kinds={"postgres"})
def workspace_files(
    context: dg.AssetExecutionContext, config: WorkspaceBatch, postgres: PostgresResource, workspace: WorkspaceResource
) -> dg.MaterializeResult:
    """Workspace files ({org}/{user}/{conversation}/files/{uploads|generated|attachments}/...) registered in
    `files` with organisation, user, conversation, kind, size, sha256 and MIME type. New, changed, moved and
    deleted files are reconciled (a deleted file's chunks and vectors go with it). Paths that do not fit the
    layout, symlinks and anything outside the root are refused and listed in workspace_refusals; paths naming
    an organisation, user or conversation not in the database (yet) are kept 'pending' and retried."""
    root = workspace.path()
    full = not config.paths and not config.dirs
    with postgres.connection() as conn:
        report = register_files(conn, root, paths=config.paths, dirs=config.dirs, full=full)
    counts = report.counts()
    context.log.info(f"workspace_files ({'full scan' if full else 'batch'} of {root}): {counts}")
    for path, reason in report.refused[:REFUSALS_SHOWN]:
        context.log.warning(f"refused {path}: {reason}")
    refusals = [{"path": p, "status": "refused", "reason": r} for p, r in report.refused] + [
        {"path": p, "status": "pending", "reason": r} for p, r in report.pending
    ]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(report.new) + len(report.changed) + len(report.moved),
            "scan": "full" if full else "batch",
            "root": str(root),
            **{k: v for k, v in counts.items()},
            "refusals": dg.MetadataValue.json(refusals[:REFUSALS_SHOWN]),
            "moved_paths": dg.MetadataValue.json([{"from": a, "to": b} for a, b in report.moved[:REFUSALS_SHOWN]]),
            "duration_s": report.duration_s,
        }
    )


@dg.sensor(
    name="workspace_files_sensor",
    target=[workspace_files],
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Walks the workspace root with lstat only and requests workspace_files for the files and "
    "directories changed since its cursor (an mtime watermark); the asset does the hashing. The first tick "
    "requests a full scan.",
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


assets = [workspace_files]
sensors = [workspace_files_sensor]
