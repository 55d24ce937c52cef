"""The retention sweep against the real Postgres and a real workspace folder, on a clock the test sets."""

from __future__ import annotations

import datetime as dt
import os
import queue
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from cogo.retention import SweepOptions, sweep
from cogo.retention.audit import totals_by_table, unlinked_by_table
from cogo.retention.policy import parse_override
from cogo.workspace.fs import Removal, UnsafePath, remove

NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
SECOND = dt.timedelta(seconds=1)
WINDOW = 30 * DAY


def uid(name: str) -> uuid.UUID:
    """Deterministic ids, so that two worlds built alike can be compared row by row."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"cogo-test:{name}")


@dataclass
class World:
    db: psycopg.Connection
    root: Path
    agent: uuid.UUID = field(default_factory=lambda: uid("agent"))
    next_message: int = 1_000_001  # far above the identity sequence that other writers draw from

    def org(self, org: str, settings: str = "{}") -> None:
        self.db.execute("INSERT INTO organizations (id, name, settings) VALUES (%s, %s, %s)", (org, org, settings))

    def user(self, user: str, deleted_at: dt.datetime | None = None) -> None:
        self.db.execute("INSERT INTO users (id, deleted_at) VALUES (%s, %s)", (user, deleted_at))

    def conversation(self, name: str, org: str, user: str, last_message: dt.datetime, messages: int = 2) -> uuid.UUID:
        """A conversation whose messages end at `last_message` (the trigger sets updated_at from them)."""
        cid = uid(name)
        first = last_message - (messages - 1) * DAY
        self.db.execute(
            "INSERT INTO conversations (id, organization_id, user_id, created_at, updated_at) "
            "VALUES (%s, %s, %s, %s, %s)",
            (cid, org, user, first, first),
        )
        for i in range(messages):
            self.message(cid, org, first + i * DAY)
        return cid

    def message(self, conversation: uuid.UUID, org: str, at: dt.datetime) -> int:
        mid = self.next_message
        self.next_message += 1
        self.db.execute(
            "INSERT INTO messages (id, conversation_id, organization_id, role, content, created_at) "
            "VALUES (%s, %s, %s, 'user', 'hello', %s)",
            (mid, conversation, org, at),
        )
        return mid

    def file(
        self,
        name: str,
        org: str,
        user: str,
        conversation: uuid.UUID | None,
        updated_at: dt.datetime,
        *,
        status: str = "active",
        on_disk: bool = True,
        path: str | None = None,
    ) -> tuple[uuid.UUID, str]:
        fid = uid(name)
        path = path or f"{org}/{user}/{conversation or 'none'}/files/uploads/{name}.txt"
        deleted_at = updated_at if status == "deleted" else None
        self.db.execute(
            "INSERT INTO files (id, organization_id, user_id, conversation_id, kind, storage_path, filename, status, "
            "created_at, updated_at, deleted_at) VALUES (%s, %s, %s, %s, 'upload', %s, %s, %s, %s, %s, %s)",
            (fid, org, user, conversation, path, f"{name}.txt", status, updated_at, updated_at, deleted_at),
        )
        if on_disk:
            target = self.root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(name)
        self.db.execute(
            "INSERT INTO embeddings (organization_id, file_id, chunk_id, content, content_sha256, model, dims, "
            "embedding) VALUES (%s, %s, %s, 'chunk', 'x', 'test', 3, '[1,2,3]')",
            (org, fid, f"chunk-{name}"),
        )
        return fid, path

    def attach(self, message: int, file: uuid.UUID, org: str) -> None:
        self.db.execute(
            "INSERT INTO message_files (message_id, file_id, organization_id) VALUES (%s, %s, %s)", (message, file, org)
        )

    def state(
        self, name: str, org: str, user: str, conversation: uuid.UUID | None, updated_at: dt.datetime
    ) -> uuid.UUID:
        sid = uid(name)
        # One state per user x agent x conversation: each state gets an agent of its own.
        self.db.execute("INSERT INTO agents (id, slug, name) VALUES (%s, %s, %s)", (uid(f"agent-{name}"), name, name))
        self.db.execute(
            "INSERT INTO agent_states (id, organization_id, user_id, agent_id, conversation_id, created_at, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (sid, org, user, uid(f"agent-{name}"), conversation, updated_at, updated_at),
        )
        return sid

    def task(self, name: str, org: str, conversation: uuid.UUID) -> uuid.UUID:
        tid = uid(name)
        self.db.execute(
            "INSERT INTO agent_tasks (id, organization_id, conversation_id, title) VALUES (%s, %s, %s, %s)",
            (tid, org, conversation, name),
        )
        return tid

    def inbox_event(self, svix_id: str, applied_at: dt.datetime | None) -> None:
        self.db.execute(
            "INSERT INTO clerk_webhook_inbox (svix_id, event_type, payload, event_time, svix_timestamp, applied_at) "
            "VALUES (%s, 'user.updated', '{}', %s, %s, %s)",
            (svix_id, NOW - 40 * DAY, NOW - 40 * DAY, applied_at),
        )


def ensure_inbox(db: psycopg.Connection) -> None:
    """Issue 3 owns the inbox table; when its migration is not here yet, stand in with the same columns."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS clerk_webhook_inbox (svix_id text PRIMARY KEY, event_type text NOT NULL, "
        "payload jsonb NOT NULL, event_time timestamptz NOT NULL, svix_timestamp timestamptz NOT NULL, "
        "applied_at timestamptz)"
    )


def build_world(db: psycopg.Connection, root: Path) -> World:
    """Every case of the policy in one dataset; the names say what the sweep must do with each row."""
    root.mkdir(parents=True, exist_ok=True)
    w = World(db, root)
    w.org("org_a")  # the default 30 days
    w.org("org_b", '{"retention_days": 60}')
    w.org("org_c", '{"retention_days": "soon"}')  # not a number of days: the default applies
    for user in ("user_alice", "user_bob", "user_carol"):
        w.user(user)
    w.user("user_dave", deleted_at=NOW - DAY)  # deleted in Clerk
    db.execute("INSERT INTO agents (id, slug, name) VALUES (%s, 'helper', 'Helper')", (w.agent,))

    # org_a, 30 days.
    gone = w.conversation("gone_just_outside", "org_a", "user_alice", NOW - WINDOW - SECOND, messages=3)
    gone_file, _ = w.file("gone_conv_file", "org_a", "user_alice", gone, NOW - 40 * DAY)
    w.attach(1_000_001, gone_file, "org_a")
    w.state("gone_conv_state", "org_a", "user_alice", gone, NOW - 40 * DAY)
    w.task("gone_conv_task", "org_a", gone)
    kept = w.conversation("kept_just_inside", "org_a", "user_alice", NOW - WINDOW + SECOND)
    w.file("kept_conv_file", "org_a", "user_alice", kept, NOW - 90 * DAY)  # goes with its conversation only
    w.task("kept_conv_task", "org_a", kept)
    w.conversation("kept_old_but_active", "org_a", "user_alice", NOW - DAY, messages=400)  # began 400 days ago
    held = w.conversation("kept_by_active_state", "org_a", "user_alice", NOW - 90 * DAY)
    w.state("kept_active_state", "org_a", "user_alice", held, NOW - 2 * DAY)
    w.file("gone_loose_file", "org_a", "user_alice", None, NOW - WINDOW - SECOND)
    w.file("kept_loose_file", "org_a", "user_alice", None, NOW - WINDOW + SECOND)
    w.file("gone_deleted_row", "org_a", "user_alice", held, NOW - 31 * DAY, status="deleted", on_disk=False)
    w.state("gone_old_state", "org_a", "user_alice", None, NOW - WINDOW - SECOND)
    w.state("kept_new_state", "org_a", "user_alice", None, NOW - WINDOW + SECOND)

    # org_b overrides to 60 days.
    w.conversation("kept_by_override", "org_b", "user_bob", NOW - 45 * DAY)
    w.conversation("gone_past_override", "org_b", "user_bob", NOW - 60 * DAY - SECOND)
    w.state("kept_state_by_override", "org_b", "user_bob", None, NOW - 45 * DAY)

    # org_c's override is invalid: 30 days.
    w.conversation("gone_invalid_override", "org_c", "user_carol", NOW - 31 * DAY)

    # A user deleted in Clerk: everything of theirs goes, however recent.
    dave = w.conversation("gone_dave_recent", "org_a", "user_dave", NOW - DAY)
    w.file("gone_dave_conv_file", "org_a", "user_dave", dave, NOW - DAY)
    w.file("gone_dave_loose_file", "org_a", "user_dave", None, NOW - DAY)
    w.state("gone_dave_state", "org_a", "user_dave", None, NOW - DAY)

    ensure_inbox(db)
    w.inbox_event("gone_applied_old", NOW - 31 * DAY)
    w.inbox_event("kept_applied_recent", NOW - DAY)
    w.inbox_event("kept_unapplied", None)
    return w


def snapshot(db: psycopg.Connection, root: Path) -> dict[str, Any]:
    """Everything the sweep may touch, by natural keys."""

    def rows(query: str) -> list[tuple[Any, ...]]:
        return sorted(tuple(str(v) for v in row) for row in db.execute(query).fetchall())

    return {
        "conversations": rows("SELECT id FROM conversations"),
        "messages": rows("SELECT id, conversation_id FROM messages"),
        "files": rows("SELECT id, storage_path FROM files"),
        "message_files": rows("SELECT message_id, file_id FROM message_files"),
        "embeddings": rows("SELECT chunk_id FROM embeddings"),
        "agent_states": rows("SELECT id FROM agent_states"),
        "agent_tasks": rows("SELECT id, conversation_id FROM agent_tasks"),
        "inbox": rows("SELECT svix_id FROM clerk_webhook_inbox"),
        "pending": rows("SELECT file_id, storage_path FROM pending_file_deletions"),
        "disk": sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()),
    }


def names(db: psycopg.Connection, table: str) -> set[uuid.UUID]:
    return {row[0] for row in db.execute(f"SELECT id FROM {table}").fetchall()}


def options(root: Path, **kwargs: Any) -> SweepOptions:
    return SweepOptions(workspaces_dir=root, batch_size=2, conversation_batch_size=2, **kwargs)


def test_the_policy_deletes_what_expired_and_keeps_what_lives(db: psycopg.Connection, tmp_path: Path) -> None:
    root = tmp_path / "workspaces"
    build_world(db, root)
    report = sweep(db, NOW, options(root))

    kept_conversations = {"kept_just_inside", "kept_old_but_active", "kept_by_active_state", "kept_by_override"}
    assert names(db, "conversations") == {uid(n) for n in kept_conversations}
    # Old messages of a conversation still active are kept with it.
    assert db.execute(
        "SELECT count(*) FROM messages WHERE conversation_id = %s", (uid("kept_old_but_active"),)
    ).fetchone() == (400,)
    assert names(db, "files") == {uid("kept_conv_file"), uid("kept_loose_file")}
    assert names(db, "agent_states") == {uid("kept_active_state"), uid("kept_new_state"), uid("kept_state_by_override")}
    # The task outlives its conversation, unlinked (ON DELETE SET NULL in the seed).
    tasks = dict(db.execute("SELECT title, conversation_id FROM agent_tasks").fetchall())
    assert tasks == {"gone_conv_task": None, "kept_conv_task": uid("kept_just_inside")}
    assert db.execute("SELECT count(*) FROM message_files").fetchone() == (0,)
    assert {r[0] for r in db.execute("SELECT chunk_id FROM embeddings").fetchall()} == {
        "chunk-kept_conv_file",
        "chunk-kept_loose_file",
    }
    assert {r[0] for r in db.execute("SELECT svix_id FROM clerk_webhook_inbox").fetchall()} == {
        "kept_applied_recent",
        "kept_unapplied",
    }
    # Disk: the deleted rows' files are gone, the queue is empty, the kept files are still there.
    disk = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert disk == sorted(
        [
            "org_a/user_alice/none/files/uploads/kept_loose_file.txt",
            f"org_a/user_alice/{uid('kept_just_inside')}/files/uploads/kept_conv_file.txt",
        ]
    )
    assert db.execute("SELECT count(*) FROM pending_file_deletions").fetchone() == (0,)
    # Emptied folders are pruned, the organisation's own folder stays.
    assert not (root / "org_a" / "user_dave").exists() and (root / "org_a").is_dir()

    assert report.by_table() == {
        "agent_states": 3,  # the gone conversation's, the old loose one, dave's
        "clerk_webhook_inbox": 1,
        "conversations": 4,
        "embeddings": 5,
        "files": 5,
        "message_files": 1,
        "messages": 3 + 2 + 2 + 2,
        "workspace_files": 5,  # four removed from disk, one (the deleted row's) already missing
    }
    assert report.by_org()["org_b"] == {"conversations": 1, "messages": 2}
    assert report.counts[("conversations", "org_a", "user_deleted")] == 1
    assert report.notes["already_missing"] == 1
    assert report.notes["invalid_overrides"] == {"org_c": "soon"}
    assert report.notes["inbox"] == "swept"
    # The gone conversation's task is kept: counted as unlinked, not among the deletions.
    assert report.unlinked_by_table() == {"agent_tasks": 1}
    # The audit trail says the same, per table and organisation.
    assert totals_by_table(db, [report.run_id]) == report.by_table()
    assert unlinked_by_table(db, [report.run_id]) == report.unlinked_by_table()
    status, dry = db.execute("SELECT status, dry_run FROM retention_runs WHERE id = %s", (report.run_id,)).fetchone()  # type: ignore[misc]
    assert (status, dry) == ("succeeded", False)

    # A second sweep at the same time finds nothing more.
    again = sweep(db, NOW, options(root))
    assert again.by_table() == {}


def test_the_window_edge_moves_with_the_clock(db: psycopg.Connection, tmp_path: Path) -> None:
    root = tmp_path / "workspaces"
    build_world(db, root)
    # Two seconds later, the conversation that was one second inside the window is one second outside.
    sweep(db, NOW, options(root))
    assert uid("kept_just_inside") in names(db, "conversations")
    sweep(db, NOW + 2 * SECOND, options(root))
    assert uid("kept_just_inside") not in names(db, "conversations")
    assert uid("kept_conv_file") not in names(db, "files")


def test_a_dry_run_counts_exactly_what_the_sweep_then_deletes_and_changes_nothing(
    db: psycopg.Connection, tmp_path: Path
) -> None:
    root = tmp_path / "workspaces"
    build_world(db, root)
    before = snapshot(db, root)
    planned = sweep(db, NOW, options(root, dry_run=True))
    assert snapshot(db, root) == before
    done = sweep(db, NOW, options(root))
    rows_planned = {k: v for k, v in planned.counts.items() if k[0] != "workspace_files"}
    rows_done = {k: v for k, v in done.counts.items() if k[0] != "workspace_files"}
    assert rows_planned == rows_done
    assert db.execute("SELECT dry_run FROM retention_runs WHERE id = %s", (planned.run_id,)).fetchone() == (True,)
    # Dry runs never count as deletions in the audit totals.
    assert totals_by_table(db) == done.by_table()
    assert planned.unlinked_by_table() == done.unlinked_by_table() == {"agent_tasks": 1}


def test_the_inbox_step_is_skipped_and_reported_when_its_table_does_not_exist(
    db: psycopg.Connection, tmp_path: Path
) -> None:
    db.execute("DROP TABLE IF EXISTS clerk_webhook_inbox")
    report = sweep(db, NOW, options(tmp_path))
    assert report.notes["inbox"].startswith("skipped")


# -- crashes -----------------------------------------------------------------------------------------

CHECKPOINTS = [
    "start",
    *(
        f"{step}:{when}"
        for step in (
            "user_conversations",
            "user_files",
            "user_agent_states",
            "conversations",
            "files",
            "deleted_files",
            "agent_states",
            "inbox",
        )
        for when in ("before_commit", "committed")
    ),
    "rows_done",
    "inbox_done",
    "disk:unlinked",
    "disk:committed",
    "disk_done",
]


class Crash(Exception):
    pass


def crash_at(name: str, occurrence: int = 1) -> Any:
    seen = {"n": 0}

    def checkpoint(at: str) -> None:
        if at == name:
            seen["n"] += 1
            if seen["n"] == occurrence:
                raise Crash(at)

    return checkpoint


def test_the_crash_points_are_every_step_the_sweep_passes(db: psycopg.Connection, tmp_path: Path) -> None:
    root = tmp_path / "workspaces"
    build_world(db, root)
    passed: list[str] = []
    sweep(db, NOW, options(root, checkpoint=passed.append))
    assert set(passed) == set(CHECKPOINTS)


@pytest.fixture(scope="module")
def clean_outcome(tmp_path_factory: pytest.TempPathFactory, pg_server_url: str, template_database: str) -> Any:
    """The world after one uninterrupted sweep: what every crashed-and-resumed sweep must converge to."""
    from tests.conftest import create_database, drop_database

    name = f"t_{uuid.uuid4().hex[:12]}"
    url = create_database(pg_server_url, name, template=template_database)
    root = tmp_path_factory.mktemp("clean") / "workspaces"
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            build_world(conn, root)
            report = sweep(conn, NOW, options(root))
            return snapshot(conn, root), report.by_table()
    finally:
        drop_database(pg_server_url, name)


# Every point once, and the points passed once per batch also between two batches of the same set.
CRASHES = [(point, 1) for point in CHECKPOINTS] + [
    (point, 2)
    for point in ("conversations:before_commit", "conversations:committed", "disk:unlinked", "disk:committed")
]


@pytest.mark.parametrize(("point", "occurrence"), CRASHES)
def test_a_sweep_that_crashes_at_any_step_is_finished_by_the_next(
    db: psycopg.Connection, tmp_path: Path, clean_outcome: Any, point: str, occurrence: int
) -> None:
    expected_state, expected_counts = clean_outcome
    root = tmp_path / "workspaces"
    build_world(db, root)
    with pytest.raises(Crash):
        sweep(db, NOW, options(root, checkpoint=crash_at(point, occurrence)))
    # Between the crash and the next run, no row points at a missing file: every deleted file row's path
    # is still on disk or still queued.
    live_paths = {r[0] for r in db.execute("SELECT storage_path FROM files WHERE status = 'active'").fetchall()}
    assert all((root / p).exists() for p in live_paths)

    sweep(db, NOW, options(root))
    assert snapshot(db, root) == expected_state
    # The audit of both runs adds up to what one clean run deletes.
    assert totals_by_table(db) == expected_counts
    statuses = [r[0] for r in db.execute("SELECT status FROM retention_runs ORDER BY id").fetchall()]
    assert statuses == ["failed", "succeeded"]


# -- the workspace root ------------------------------------------------------------------------------


def test_a_path_leading_outside_the_root_is_refused_reported_and_nothing_outside_is_touched(
    db: psycopg.Connection, tmp_path: Path
) -> None:
    root = tmp_path / "workspaces"
    outside = tmp_path / "outside"
    (outside / "files").mkdir(parents=True)
    victim = outside / "files" / "precious.txt"
    victim.write_text("keep me")
    (tmp_path / "top.txt").write_text("keep me too")
    w = build_world(db, root)
    # A conversation folder that is a symlink to a folder outside the root.
    (root / "org_a" / "user_alice").mkdir(parents=True, exist_ok=True)
    os.symlink(outside, root / "org_a" / "user_alice" / "linked")
    w.file(
        "escape",
        "org_a",
        "user_alice",
        None,
        NOW - 40 * DAY,
        on_disk=False,
        path="org_a/user_alice/linked/files/precious.txt",
    )
    # Queue rows no files row could hold (the table's CHECK forbids them), written straight to the queue.
    for path in ("../top.txt", str(tmp_path / "top.txt")):
        db.execute(
            "INSERT INTO pending_file_deletions (file_id, organization_id, storage_path) VALUES (%s, 'org_b', %s)",
            (uuid.uuid4(), path),
        )

    report = sweep(db, NOW, options(root))
    assert victim.read_text() == "keep me" and (tmp_path / "top.txt").read_text() == "keep me too"
    assert (root / "org_a" / "user_alice" / "linked").is_symlink()
    refused = sorted(r["storage_path"] for r in report.refused)
    assert refused == sorted(["org_a/user_alice/linked/files/precious.txt", "../top.txt", str(tmp_path / "top.txt")])
    # The file row is gone (it expired); its disk deletion stays queued with the reason, for an operator.
    assert uid("escape") not in names(db, "files")
    queued = db.execute("SELECT storage_path, attempts, last_error FROM pending_file_deletions ORDER BY id").fetchall()
    assert sorted(q[0] for q in queued) == refused
    assert all(q[1] == 1 and q[2].startswith("refused") for q in queued)
    refused_audit = dict(
        db.execute(
            "SELECT organization_id, rows_refused FROM retention_run_items WHERE run_id = %s AND rows_refused > 0",
            (report.run_id,),
        ).fetchall()
    )
    assert refused_audit == {"org_a": 1, "org_b": 2}
    # The next sweep refuses (and reports) them again; still nothing outside is touched.
    again = sweep(db, NOW, options(root))
    assert len(again.refused) == 3 and victim.exists()


def test_a_queued_path_that_a_live_file_now_owns_is_not_deleted(db: psycopg.Connection, tmp_path: Path) -> None:
    root = tmp_path / "workspaces"
    w = build_world(db, root)
    # An old row was deleted, then a new upload landed at the same path before the sweep ran.
    fid, path = w.file("reused", "org_a", "user_alice", None, NOW - DAY)
    db.execute("DELETE FROM files WHERE id = %s", (fid,))
    w.file("reused_again", "org_a", "user_alice", None, NOW, path=path)
    report = sweep(db, NOW, options(root))
    assert (root / path).read_text() == "reused_again"
    assert report.notes["kept_in_use_paths"] == [path]


def test_remove_under_root_never_follows_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (tmp_path / "secret").write_text("s")
    os.symlink(tmp_path, root / "a" / "up")
    with pytest.raises(UnsafePath):
        remove(root, "a/up/secret")
    for bad in ("", "/etc/passwd", "a/../../secret", "a//b", "./a"):
        with pytest.raises(UnsafePath):
            remove(root, bad)
    # A symlink as the last component: the link (inside the root) is removed, never its target.
    os.symlink(tmp_path / "secret", root / "a" / "link")
    assert remove(root, "a/link") is Removal.REMOVED
    assert (tmp_path / "secret").read_text() == "s"
    assert remove(root, "a/link") is Removal.MISSING
    assert remove(root, "nowhere/x") is Removal.MISSING


def test_overrides_must_be_a_positive_number_of_days() -> None:
    assert [parse_override(v) for v in (60, "45", 7.0, 0, -3, "x", True, None, 1.5)] == [
        60, 45, 7, None, None, None, None, None, None,
    ]  # fmt: skip


# -- concurrency -------------------------------------------------------------------------------------


def test_inserts_while_the_sweep_runs_are_never_lost(db: psycopg.Connection, database_url: str, tmp_path: Path) -> None:
    """A writer inserts messages while the sweep holds its batches: into live conversations, into new
    ones, and into expired conversations the sweep is deleting. Every insert that commits survives, and a
    conversation that received one keeps all its messages."""
    root = tmp_path / "workspaces"
    w = build_world(db, root)
    expired = [w.conversation(f"expired_{i}", "org_a", "user_alice", NOW - 40 * DAY, messages=3) for i in range(24)]
    live = uid("kept_old_but_active")

    work: queue.Queue[tuple[str, Any]] = queue.Queue()
    committed: list[tuple[int, uuid.UUID]] = []
    refused: list[uuid.UUID] = []
    errors: list[BaseException] = []

    def writer() -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            while True:
                kind, target = work.get()
                try:
                    if kind == "stop":
                        return
                    if kind == "new":
                        conn.execute(
                            "INSERT INTO conversations (id, organization_id, user_id, updated_at) "
                            "VALUES (%s, 'org_a', 'user_alice', %s)",
                            (target, NOW),
                        )
                    row = conn.execute(
                        "INSERT INTO messages (conversation_id, organization_id, role, content, created_at) "
                        "VALUES (%s, 'org_a', 'user', 'late', %s) RETURNING id",
                        (target, NOW),
                    ).fetchone()
                    assert row is not None
                    committed.append((row[0], target))
                except psycopg.errors.ForeignKeyViolation:
                    refused.append(target)  # its conversation was deleted first: the writer is told
                except BaseException as exc:
                    errors.append(exc)
                finally:
                    work.task_done()

    thread = threading.Thread(target=writer)
    thread.start()
    pending = list(expired)

    probe = psycopg.connect(database_url)

    def locked_by_the_sweep() -> list[uuid.UUID]:
        """The conversations the sweep's open batch holds: those a key-share lock cannot take."""
        free = {r[0] for r in probe.execute(
            "SELECT id FROM conversations WHERE id = ANY(%s) FOR KEY SHARE SKIP LOCKED", (pending,)
        ).fetchall()}  # fmt: skip
        probe.rollback()
        return [c for c in pending if c not in free]

    def checkpoint(at: str) -> None:
        if at == "conversations:before_commit":
            # While this batch's rows are locked: a message to a conversation the batch is deleting (the
            # writer waits for the lock), one to a live conversation and one to a new conversation.
            held = locked_by_the_sweep()
            if held:
                pending.remove(held[0])
            work.put(("message", held[0] if held else live))
            work.put(("message", live))
            work.put(("new", uuid.uuid4()))
        elif at == "conversations:committed":
            # Also one to an expired conversation no batch has taken yet, then let the writer catch up.
            if pending:
                work.put(("message", pending.pop()))
            work.join()

    try:
        sweep(db, NOW, options(root, checkpoint=checkpoint))
    finally:
        work.put(("stop", None))
        thread.join()
        probe.close()
    assert not errors
    assert committed and refused, "the test must exercise both outcomes"
    present = {row[0] for row in db.execute("SELECT id FROM messages").fetchall()}
    assert all(mid in present for mid, _ in committed)
    for _, conversation in committed:
        if conversation in expired:
            # Revived by the late message: kept whole, its three old messages included.
            count = db.execute("SELECT count(*) FROM messages WHERE conversation_id = %s", (conversation,)).fetchone()
            assert count is not None and count[0] >= 4
    # Whatever the writer could not insert into is gone entirely, never half.
    for conversation in refused:
        assert db.execute("SELECT count(*) FROM messages WHERE conversation_id = %s", (conversation,)).fetchone() == (
            0,
        )


# -- Dagster -----------------------------------------------------------------------------------------


def test_the_asset_reports_per_table_counts_and_its_dry_run_deletes_nothing(
    db: psycopg.Connection, database_url: str, tmp_path: Path
) -> None:
    import dagster as dg

    from cogo.assets.retention import retention_disk_queue_clear, retention_sweep
    from cogo.resources import PostgresResource

    root = tmp_path / "workspaces"
    build_world(db, root)
    before = snapshot(db, root)

    def materialize(**config: Any) -> dict[str, Any]:
        result = dg.materialize(
            [retention_sweep, retention_disk_queue_clear],
            resources={"postgres": PostgresResource(database_url=database_url)},
            run_config={
                "ops": {
                    "retention_sweep": {"config": {"workspaces_dir": str(root), "as_of": NOW.isoformat(), **config}}
                }
            },
        )
        assert result.success
        assert [c.passed for c in result.get_asset_check_evaluations()] == [True]
        return {k: v.value for k, v in result.asset_materializations_for_node("retention_sweep")[0].metadata.items()}

    dry = materialize(dry_run=True)
    assert snapshot(db, root) == before
    assert dry["dry_run"] is True and dry["would_delete_conversations"] == 4
    assert dry["would_unlink_agent_tasks"] == 1 and "would_delete_agent_tasks" not in dry
    real = materialize()
    assert real["deleted_conversations"] == 4 and real["deleted_messages"] == 9
    assert real["deleted_workspace_files"] == 5 and real["inbox"] == "swept"
    assert real["dagster/row_count"] == sum(real["by_table"].values())


def test_kept_tasks_are_reported_unlinked_not_deleted(
    db: psycopg.Connection, database_url: str, tmp_path: Path
) -> None:
    """The sweep deletes no agent task; the audit rows and the asset's metadata say unlinked, per organisation."""
    import dagster as dg

    from cogo.assets.retention import retention_sweep
    from cogo.resources import PostgresResource

    root = tmp_path / "workspaces"
    build_world(db, root)
    tasks_before = db.execute("SELECT count(*) FROM agent_tasks").fetchone()
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [retention_sweep],
        instance=instance,
        resources={"postgres": PostgresResource(database_url=database_url)},
        run_config={"ops": {"retention_sweep": {"config": {"workspaces_dir": str(root), "as_of": NOW.isoformat()}}}},
    )
    assert result.success
    assert db.execute("SELECT count(*) FROM agent_tasks").fetchone() == tasks_before  # nothing deleted

    event = instance.get_latest_materialization_event(retention_sweep.key)
    assert event is not None and event.asset_materialization is not None
    meta = {k: v.value for k, v in event.asset_materialization.metadata.items()}
    assert meta["unlinked_agent_tasks"] == 1 and "deleted_agent_tasks" not in meta
    assert meta["unlinked_by_table"] == {"agent_tasks": 1} and "agent_tasks" not in meta["by_table"]
    by_org = [r.data for r in meta["by_organization"].records if r.data["table"] == "agent_tasks"]
    assert by_org == [
        {"organization_id": "org_a", "table": "agent_tasks", "action": "unlinked", "reason": "expired", "rows": 1}
    ]
    audit_rows = db.execute(
        "SELECT table_name, organization_id, reason, rows_deleted FROM retention_run_items "
        "WHERE run_id = %s AND table_name LIKE '%%agent_tasks'",
        (meta["run_id"],),
    ).fetchall()
    assert audit_rows == [("unlinked_agent_tasks", "org_a", "expired", 1)]


def test_the_schedule_runs_the_sweep_daily() -> None:
    from cogo.pipelines.definitions import build_defs

    defs = build_defs()
    schedule = defs.resolve_schedule_def("retention_daily")
    assert schedule.cron_schedule == "30 3 * * *"
    job = defs.resolve_job_def(schedule.job_name)
    assert [str(k.path[-1]) for k in job.asset_layer.selected_asset_keys] == ["retention_sweep"]
