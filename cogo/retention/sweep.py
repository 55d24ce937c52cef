"""The retention sweep: expired and deleted users' rows out of Postgres in short batches, then their files
off the disk, with every deletion counted in the audit trail in the transaction that made it.

Crash safety: a batch's rows, its audit counts and the disk paths it frees (queued by the files trigger
into pending_file_deletions) commit together. Disk files are removed only for queue rows whose file row is
gone, and a queue row is deleted only after its file is unlinked (or found missing). Whatever step a sweep
dies in, the next one picks up what is left, and the audit of all runs adds up to what was removed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from cogo.retention import audit
from cogo.retention import purge as p
from cogo.retention import sql as q
from cogo.retention.policy import Policy, load_policy
from cogo.workspace.fs import Removal, UnsafePath, remove

# Called with a step name at each point a crash could fall between (tests raise from it).
Checkpoint = Callable[[str], None]

DISK_TABLE = "workspace_files"
MAX_REPORTED_PATHS = 100


@dataclass(frozen=True)
class SweepOptions:
    workspaces_dir: Path
    default_days: int = 30
    dry_run: bool = False
    # Rows per transaction for files, agent states, inbox events and disk deletions.
    batch_size: int = 1000
    # Conversations per transaction; each brings its messages along, so this is kept smaller.
    conversation_batch_size: int = 100
    checkpoint: Checkpoint | None = None


@dataclass
class SweepReport:
    run_id: int
    as_of: dt.datetime
    dry_run: bool
    counts: audit.Counts = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0

    def by_table(self) -> dict[str, int]:
        """Rows deleted (dry run: that would be) per table; unlinked rows are not among them."""
        out: dict[str, int] = {}
        for (item, _org, _reason), n in self.counts.items():
            if not audit.is_unlinked(item):
                out[item] = out.get(item, 0) + n
        return dict(sorted(out.items()))

    def unlinked_by_table(self) -> dict[str, int]:
        """Rows kept but unlinked (dry run: that would be) per table, e.g. the tasks of deleted conversations."""
        out: dict[str, int] = {}
        for (item, _org, _reason), n in self.counts.items():
            if audit.is_unlinked(item):
                table = audit.unlinked_table(item)
                out[table] = out.get(table, 0) + n
        return dict(sorted(out.items()))

    def by_org(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for (table, org, _reason), n in self.counts.items():
            bucket = out.setdefault(org, {})
            bucket[table] = bucket.get(table, 0) + n
        return dict(sorted(out.items()))

    @property
    def refused(self) -> list[dict[str, Any]]:
        return list(self.notes.get("refused_paths", []))

    @property
    def total(self) -> int:
        """Rows deleted (dry run: that would be)."""
        return sum(self.by_table().values())


@dataclass(frozen=True)
class RowStep:
    name: str
    select_sql: str
    alias: str  # the locked table's alias in select_sql
    reason: str
    kind: str  # conversations | files | agent_states: what the purge deletes along with the row
    keeps_active_states: bool = False


# In this order (see cogo.retention.sql): deleted users first, then expiry.
ROW_STEPS = (
    RowStep("user_conversations", q.USER_CONVERSATIONS, "c", "user_deleted", "conversations"),
    RowStep("user_files", q.USER_FILES, "f", "user_deleted", "files"),
    RowStep("user_agent_states", q.USER_STATES, "s", "user_deleted", "agent_states"),
    RowStep("conversations", q.EXPIRED_CONVERSATIONS, "c", "expired", "conversations", keeps_active_states=True),
    RowStep("files", q.EXPIRED_LOOSE_FILES, "f", "expired", "files"),
    RowStep("deleted_files", q.EXPIRED_DELETED_FILES, "f", "expired", "files"),
    RowStep("agent_states", q.EXPIRED_STATES, "s", "expired", "agent_states"),
)


class _Sweep:
    def __init__(self, conn: psycopg.Connection, policy: Policy, options: SweepOptions, report: SweepReport) -> None:
        self.conn = conn
        self.policy = policy
        self.options = options
        self.report = report

    def checkpoint(self, name: str) -> None:
        if self.options.checkpoint is not None:
            self.options.checkpoint(name)

    def _merge(self, reason: str, by_table: p.ByTable) -> None:
        for table, by_org in by_table.items():
            for org, n in by_org.items():
                key = (table, org, reason)
                self.report.counts[key] = self.report.counts.get(key, 0) + n

    def _commit_counts(self, cur: psycopg.Cursor[Any], reason: str, by_table: p.ByTable) -> None:
        for table, by_org in by_table.items():
            audit.record(cur, self.report.run_id, table, reason, by_org)

    # -- one row set, batch by batch -------------------------------------------------------------

    def drain(
        self,
        step: str,
        select_sql: str,
        alias: str,
        params: dict[str, Any],
        reason: str,
        purge: Callable[[psycopg.Cursor[Any], list[Any]], p.ByTable],
        limit: int,
        keep: Callable[[psycopg.Cursor[Any], list[Any]], set[Any]] | None = None,
    ) -> None:
        statement = q.batch(select_sql, alias)
        while True:
            with self.conn.transaction(), self.conn.cursor() as cur:
                cur.execute("SELECT set_config('cogo.deletion_reason', %s, true)", (f"retention:{reason}",))
                ids = [row[0] for row in cur.execute(statement, {**params, "limit": limit}).fetchall()]
                if not ids:
                    return
                kept = keep(cur, ids) if keep is not None else set()
                doomed = [i for i in ids if i not in kept]
                deleted = purge(cur, doomed) if doomed else {}
                self._commit_counts(cur, reason, deleted)
                self.checkpoint(f"{step}:before_commit")
            self._merge(reason, deleted)
            self.checkpoint(f"{step}:committed")
            if not doomed or len(ids) < limit:
                # Fewer than a batch: the set is empty but for rows other transactions hold, which the
                # next sweep takes. Everything re-checked and kept: nothing more to do here either.
                return

    def count(self, reason: str, by_table: p.ByTable) -> None:
        self._merge(reason, by_table)
        with self.conn.transaction(), self.conn.cursor() as cur:
            self._commit_counts(cur, reason, by_table)

    # -- the steps ---------------------------------------------------------------------------------

    def rows(self) -> None:
        gone_message = q.conversation_goes("m.conversation_id")
        for window in self.policy.windows:
            params = {"org": window.organization_id, "cutoff": window.cutoff, "now": self.policy.as_of}
            for step in ROW_STEPS:
                if self.options.dry_run:
                    with self.conn.cursor() as cur:
                        if step.kind == "conversations":
                            counted = p.count_conversations(cur, step.select_sql, params)
                        elif step.kind == "files":
                            counted = p.count_files(cur, step.select_sql, params, gone_message)
                        else:
                            counted = p.count_states(cur, step.select_sql, params)
                    self.count(step.reason, counted)
                    continue
                keep = None
                if step.keeps_active_states:
                    cutoff = window.cutoff

                    def keep(cur: psycopg.Cursor[Any], ids: list[Any], cutoff: dt.datetime = cutoff) -> set[Any]:
                        return p.lock_active_states(cur, ids, cutoff)

                purge = {"conversations": p.purge_conversations, "files": p.purge_files}.get(step.kind, p.purge_states)
                limit = self.options.batch_size
                if step.kind == "conversations":
                    limit = self.options.conversation_batch_size
                self.drain(step.name, step.select_sql, step.alias, params, step.reason, purge, limit, keep)

    def inbox(self) -> None:
        exists = self.conn.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = 'clerk_webhook_inbox' AND column_name = 'applied_at'"
        ).fetchone()
        if not exists:
            # A database migrated before the webhook inbox existed (sql/0010) has nothing to sweep there.
            self.report.notes["inbox"] = "skipped: table clerk_webhook_inbox (applied_at) does not exist"
            return
        self.report.notes["inbox"] = "swept"
        params = {"cutoff": self.policy.default_cutoff}
        if self.options.dry_run:
            with self.conn.cursor() as cur:
                self.count("applied", p.count_inbox(cur, q.APPLIED_INBOX_EVENTS, params))
        else:
            self.drain("inbox", q.APPLIED_INBOX_EVENTS, "i", params, "applied", p.purge_inbox, self.options.batch_size)

    def disk(self) -> None:
        """Unlink the files of deleted rows queued in pending_file_deletions, whatever deleted the rows."""
        root = self.options.workspaces_dir
        notes = self.report.notes
        refused: list[dict[str, Any]] = notes.setdefault("refused_paths", [])
        errors: list[dict[str, Any]] = notes.setdefault("disk_errors", [])
        in_use: list[str] = notes.setdefault("kept_in_use_paths", [])
        if not root.is_dir():
            # A wrong or unmounted root would make every file look "already gone": keep the queue instead.
            notes["disk"] = f"skipped: workspace root {root} is not a directory"
            return
        if self.options.dry_run:
            row = self.conn.execute(
                "SELECT count(*) FROM pending_file_deletions d "
                "WHERE NOT EXISTS (SELECT 1 FROM files f WHERE f.id = d.file_id)"
            ).fetchone()
            queued = int(row[0]) if row else 0
            files = sum(n for (t, _o, _r), n in self.report.counts.items() if t == "files")
            notes["disk"] = f"dry run: {queued} queued and {files} more when their rows are deleted"
            return
        notes["disk"] = "swept"
        after = 0
        while True:
            with self.conn.transaction(), self.conn.cursor() as cur:
                batch = cur.execute(
                    """
                    SELECT d.id, d.organization_id, d.storage_path,
                           EXISTS (SELECT 1 FROM files f WHERE f.storage_path = d.storage_path AND f.status = 'active')
                      FROM pending_file_deletions d
                     WHERE d.id > %s AND NOT EXISTS (SELECT 1 FROM files f WHERE f.id = d.file_id)
                     ORDER BY d.id LIMIT %s FOR UPDATE OF d SKIP LOCKED
                    """,
                    (after, self.options.batch_size),
                ).fetchall()
                if not batch:
                    return
                after = batch[-1][0]
                done: list[int] = []
                done_by_org: dict[str, int] = {}
                refused_by_org: dict[str, int] = {}
                failed: list[tuple[str, int]] = []
                for queue_id, org, path, path_in_use in batch:
                    if path_in_use:
                        # A live file row now owns this path (a new upload at the same place): the old
                        # row's deletion must not take the new file with it.
                        done.append(queue_id)
                        if len(in_use) < MAX_REPORTED_PATHS:
                            in_use.append(path)
                        continue
                    try:
                        outcome = remove(root, path)
                    except UnsafePath as exc:
                        failed.append((f"refused: {exc}", queue_id))
                        refused_by_org[org] = refused_by_org.get(org, 0) + 1
                        if len(refused) < MAX_REPORTED_PATHS:
                            refused.append({"organization_id": org, "storage_path": path, "reason": str(exc)})
                        continue
                    except OSError as exc:
                        failed.append((f"error: {exc}", queue_id))
                        if len(errors) < MAX_REPORTED_PATHS:
                            errors.append({"organization_id": org, "storage_path": path, "error": str(exc)})
                        continue
                    done.append(queue_id)
                    done_by_org[org] = done_by_org.get(org, 0) + 1
                    if outcome is Removal.MISSING:
                        notes["already_missing"] = notes.get("already_missing", 0) + 1
                self.checkpoint("disk:unlinked")
                if done:
                    cur.execute("DELETE FROM pending_file_deletions WHERE id = ANY(%s)", (done,))
                if failed:
                    # Kept in the queue with the reason; every sweep reports them until someone looks.
                    cur.executemany(
                        "UPDATE pending_file_deletions SET attempts = attempts + 1, last_error = %s WHERE id = %s",
                        failed,
                    )
                audit.record(cur, self.report.run_id, DISK_TABLE, "disk", done_by_org, refused_by_org)
            self._merge("disk", {DISK_TABLE: done_by_org})
            self.checkpoint("disk:committed")


def sweep(conn: psycopg.Connection, now: dt.datetime, options: SweepOptions) -> SweepReport:
    """Run one retention sweep as of `now` (timezone-aware). `conn` must be in autocommit mode: the sweep
    opens one short transaction per batch. Returns what it deleted (dry run: would delete)."""
    if not conn.autocommit:
        raise ValueError("the retention sweep needs an autocommit connection (it commits batch by batch)")
    started = time.monotonic()
    policy = load_policy(conn, now, options.default_days)
    run_id = audit.start_run(conn, now, options.default_days, options.dry_run)
    report = _Sweep(conn, policy, options, SweepReport(run_id=run_id, as_of=now, dry_run=options.dry_run))
    report.report.notes["invalid_overrides"] = policy.invalid_overrides
    overrides = {w.organization_id: w.days for w in policy.windows if w.days != policy.default_days}
    report.report.notes["windows"] = overrides
    try:
        report.checkpoint("start")
        report.rows()
        report.checkpoint("rows_done")
        report.inbox()
        report.checkpoint("inbox_done")
        report.disk()
        report.checkpoint("disk_done")
    except BaseException as exc:
        # If the connection itself failed, the run stays 'running', which says as much.
        with contextlib.suppress(psycopg.Error):
            audit.finish_run(conn, run_id, "failed", report.report.notes, error=f"{type(exc).__name__}: {exc}")
        raise
    report.report.duration_s = round(time.monotonic() - started, 3)
    report.report.notes["duration_s"] = report.report.duration_s
    audit.finish_run(conn, run_id, "succeeded", report.report.notes)
    return report.report
