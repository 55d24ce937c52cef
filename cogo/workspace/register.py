"""Registering workspace files in `files`: new, changed, moved and deleted files, refused and pending paths.

A batch is a set of candidate paths (files the sensor saw change, plus every path under the directories
whose listing changed, plus what the database holds there); a full scan takes the whole root. Each
candidate is compared with its `files` row: an unchanged size and mtime skip hashing; a file that vanished
while a new path appeared with the same content in the same organisation is a move (the row, its chunks
and its vectors keep their id); a file that vanished otherwise is marked deleted and its chunks and vectors
are removed, unless DeletionGuard holds it (an unmounted root, a mass deletion); a deleted file that comes
back with the same path and content gets its old row back. Paths that name an organisation, user or
conversation the database does not have yet are kept as 'pending' in workspace_refusals and retried by every
run; layout violations, symlinks, hard links, a user who is not a member, another user's private conversation
are 'refused'. Every read goes through cogo.workspace.fs; a file that vanishes or cannot be read during the
scan is recorded and the rest of the batch goes on.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from cogo.workspace.filetype import hash_and_sniff
from cogo.workspace.fs import MAX_PATH_BYTES, UnsafePath, check_regular, lstat, open_file
from cogo.workspace.layout import ORG_RE, Refused, WorkspacePath, parse_layout
from cogo.workspace.scan import Entry, walk

LOCK_KEY = 7_000_001  # pg advisory lock: one registration at a time
# Refusals decided from the path's text alone (cogo.workspace.fs.relative_parts): the disk is never consulted.
UNSAFE_REASONS = ("unsafe path",)


def _unsafe(exc: Refused) -> bool:
    return exc.reason.startswith(UNSAFE_REASONS)


@dataclass
class RegisterReport:
    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    moved: list[tuple[str, str]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    touched: int = 0  # mtime changed, content did not
    unchanged: int = 0
    refused: list[tuple[str, str]] = field(default_factory=list)
    pending: list[tuple[str, str]] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)  # deleted rows back with their id: same path and content
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    vanished_during_scan: int = 0
    # organisation -> {files, active_files, reason, paths}: deletions this scan refused to make
    held_deletions: dict[str, dict] = field(default_factory=dict)
    bytes_hashed: int = 0
    candidates: int = 0
    duration_s: float = 0.0

    def counts(self) -> dict[str, int]:
        return {
            "candidates": self.candidates,
            "new": len(self.new),
            "changed": len(self.changed),
            "moved": len(self.moved),
            "deleted": len(self.deleted),
            "touched": self.touched,
            "unchanged": self.unchanged,
            "refused": len(self.refused),
            "pending": len(self.pending),
            "restored": len(self.restored),
            "unreadable": len(self.unreadable),
            "vanished_during_scan": self.vanished_during_scan,
            "deletions_held": sum(h["files"] for h in self.held_deletions.values()),
            "bytes_hashed": self.bytes_hashed,
        }


    def held(self) -> list[dict[str, Any]]:
        """The held deletions per organisation, without the paths (they may be many)."""
        return [
            {"organization_id": org, "files": h["files"], "active_files": h["active_files"], "reason": h["reason"]}
            for org, h in self.held_deletions.items()
        ]

    def as_metadata(self, shown: int = 50) -> dict[str, Any]:
        """The run's figures and the first `shown` paths of each list, for the asset's materialization."""
        refusals = [{"path": p, "status": "refused", "reason": r} for p, r in self.refused] + [
            {"path": p, "status": "pending", "reason": r} for p, r in self.pending
        ]
        return {
            **self.counts(),
            "refusals": refusals[:shown],
            "moved_paths": [{"from": a, "to": b} for a, b in self.moved[:shown]],
            "held_deletions": self.held(),
            "unreadable_paths": [{"path": p, "reason": r} for p, r in self.unreadable[:shown]],
            "duration_s": self.duration_s,
        }


@dataclass
class _Seen:
    wp: WorkspacePath
    size: int
    mtime: dt.datetime
    sha256: str | None = None
    mime: str | None = None
    links: int = 1


def _mtime(ns: int) -> dt.datetime:
    # Microseconds: what timestamptz keeps, so the comparison with the stored value is exact.
    return dt.datetime.fromtimestamp(ns // 1000 / 1e6, tz=dt.UTC)


def candidate_paths(
    conn: psycopg.Connection,
    root: Path,
    *,
    paths: list[str] | None,
    dirs: list[str] | None,
    full: bool,
    walked: dict[str, Entry] | None = None,
) -> tuple[set[str], dict[str, str]]:
    """Paths to reconcile, and the walk's verdict on entries that are not regular files (symlinks...).
    Regular files found by the walk go into `walked` with their lstat: the walk started at the root and
    entered no symlink, so they need no second check."""
    candidates: set[str] = set()
    special: dict[str, str] = {}
    walked = walked if walked is not None else {}
    walked_dirs = [""] if full else list(dirs or [])
    for below in walked_dirs:
        if below:
            try:
                parse_layout(below + "/x/x/x/x/x")  # only the traversal checks matter for a directory
            except Refused as exc:
                if _unsafe(exc):
                    candidates.add(below)
                    continue
        if below and not _plain_directory(root, below):
            continue
        for entry in walk(root, below):
            if entry.kind == "dir":
                continue
            candidates.add(entry.path)
            if entry.refusal:
                special[entry.path] = entry.refusal
            else:
                walked[entry.path] = entry
    candidates.update(paths or [])
    with conn.cursor() as cur:
        if full:
            cur.execute("SELECT storage_path FROM files WHERE status = 'active'")
            candidates.update(r[0] for r in cur.fetchall())
        elif walked_dirs:
            cur.execute(
                "SELECT storage_path FROM files WHERE status = 'active' AND storage_path LIKE ANY(%s)",
                ([_like_prefix(d) for d in walked_dirs],),
            )
            candidates.update(r[0] for r in cur.fetchall())
        cur.execute("SELECT storage_path FROM workspace_refusals WHERE status = 'pending'")
        candidates.update(r[0] for r in cur.fetchall())
        if full:  # refusals whose path is gone are cleared below (traversal attempts stay as a record)
            cur.execute("SELECT storage_path, reason FROM workspace_refusals")
            candidates.update(p for p, reason in cur.fetchall() if not reason.startswith(UNSAFE_REASONS))
    return candidates, special


def _plain_directory(root: Path, below: str) -> bool:
    """A directory reached without crossing a symlink (walk never enters one given as its start)."""
    current = root
    for part in Path(below).parts:
        current = current / part
        try:
            if not stat.S_ISDIR(os.lstat(current).st_mode):
                return False
        except OSError:
            return False
    return True


def _like_prefix(directory: str) -> str:
    escaped = directory.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.rstrip("/") + "/%"


@dataclass(frozen=True)
class DeletionGuard:
    """When a scan may not delete: a root that is missing or empty while the database has active files (an
    unmounted disk), or more than `max_share` of an organisation's active files at once when it has at
    least `min_files`. Held deletions are reported and happen on a later scan once the files are really
    gone and the operator allows it (`allow`), or never if the files come back."""

    max_share: float = 0.5
    min_files: int = 10
    allow: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, allow: bool = False) -> DeletionGuard:
        env = os.environ if env is None else env
        share = float(env.get("COGO_WORKSPACE_MAX_DELETE_SHARE") or cls.max_share)
        if not 0 <= share <= 1:
            raise ValueError(f"COGO_WORKSPACE_MAX_DELETE_SHARE={share}: a share between 0 and 1")
        return cls(share, int(env.get("COGO_WORKSPACE_GUARD_MIN_FILES") or cls.min_files), allow)


def register_files(
    conn: psycopg.Connection,
    root: Path,
    *,
    paths: list[str] | None = None,
    dirs: list[str] | None = None,
    full: bool = False,
    guard: DeletionGuard | None = None,
    checkpoint: Callable[[str], None] | None = None,
) -> RegisterReport:
    """Reconcile the candidates with `files` in one transaction. Idempotent. `checkpoint` is called with
    "hash:<path>" before each file is read (tests make the disk change at that moment)."""
    started = time.monotonic()
    report = RegisterReport()
    root = root.absolute()
    guard = guard or DeletionGuard()
    root_state = _root_state(root)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        walked: dict[str, Entry] = {}
        candidates, special = candidate_paths(conn, root, paths=paths, dirs=dirs, full=full, walked=walked)
        report.candidates = len(candidates)
        rows = _active_rows(conn, candidates)
        refusals: dict[str, Refused] = {}
        present: dict[str, _Seen] = {}
        # Rows whose file is there but cannot be taken now (unreadable, a hard link, behind a symlink...): kept
        # as they are, since only a file known to be gone is a deletion.
        kept: set[str] = set()
        for path in sorted(candidates):
            try:
                wp = parse_layout(path)
                if path in special:
                    raise Refused(special[path], organization_id=wp.organization_id)
                entry = walked.get(path)
                if entry is not None:
                    present[path] = _Seen(wp, entry.size, _mtime(entry.mtime_ns), links=entry.links)
                    continue
                st = _stat(root, wp) if root_state == "ok" else None
            except Refused as exc:
                if path in special and exc.reason != special[path]:
                    exc = Refused(special[path], organization_id=exc.organization_id)
                elif path not in special and not _unsafe(exc) and not _exists(root, path):
                    continue  # a refused path that is gone: its refusal is cleared
                refusals[path] = exc
                if path in rows and _exists(root, path):
                    kept.add(path)
                continue
            if st is not None:
                present[path] = _Seen(wp, st.st_size, _mtime(st.st_mtime_ns), links=st.st_nlink)

        # Files on disk with a row: unchanged (size and mtime equal), touched, or changed.
        changed: list[tuple[str, _Seen, uuid.UUID]] = []
        touched: list[tuple[dt.datetime, uuid.UUID]] = []
        new: list[_Seen] = []
        for path, seen in list(present.items()):
            row = rows.get(path)
            if row and row["size_bytes"] == seen.size and row["file_mtime"] == seen.mtime:
                report.unchanged += 1
                continue
            if seen.links > 1:
                # Another name could be outside the root: no new bytes from it (the registered ones stay).
                del present[path]
                reason = f"hard link ({seen.links} names): not read while it has several names"
                refusals[path] = Refused(reason, organization_id=seen.wp.organization_id, pending=True)
                kept.add(path)
                continue
            if checkpoint is not None:
                checkpoint(f"hash:{path}")
            try:
                with open_file(root, path) as f:
                    seen.sha256, seen.size, seen.mime = hash_and_sniff(f, seen.wp.filename)
            except FileNotFoundError:
                del present[path]  # gone since the walk: a deletion like any other
                report.vanished_during_scan += 1
                continue
            except UnsafePath as exc:
                del present[path]
                refusals[path] = Refused(exc.reason, organization_id=seen.wp.organization_id)
                kept.add(path)
                continue
            except OSError as exc:
                # Unreadable for now (permissions, I/O): its row stays as it is, the path is retried.
                del present[path]
                kept.add(path)
                reason = f"cannot be read: {exc.strerror or exc}"
                refusals[path] = Refused(reason, organization_id=seen.wp.organization_id, pending=True)
                report.unreadable.append((path, reason))
                continue
            report.bytes_hashed += seen.size
            if row is None:
                new.append(seen)
            elif row["sha256"] == seen.sha256:
                touched.append((seen.mtime, row["id"]))
            else:
                changed.append((path, seen, row["id"]))

        known = _known_entities(conn, new + [s for _, s, _ in changed])
        # New content is taken only from a member, in the member's own or a shared conversation.
        for path, seen, file_id in list(changed):
            reason = _entity_problem(seen.wp, known)
            if reason:
                changed.remove((path, seen, file_id))
                refusals[path] = Refused(reason[0], organization_id=seen.wp.organization_id, pending=reason[1])
                kept.add(path)
        vanished = {p: r for p, r in rows.items() if p not in present and p not in kept}

        accepted: list[_Seen] = []
        for seen in new:
            reason = _entity_problem(seen.wp, known)
            if reason:
                refusals[seen.wp.storage_path] = Refused(
                    reason[0], organization_id=seen.wp.organization_id, pending=reason[1]
                )
            else:
                accepted.append(seen)

        # Moves: a vanished row whose content reappeared elsewhere in the same organisation.
        by_content: dict[tuple[str, str], list[str]] = {}
        for path, row in vanished.items():
            by_content.setdefault((row["organization_id"], row["sha256"]), []).append(path)
        inserts: list[_Seen] = []
        moves: list[tuple[_Seen, uuid.UUID]] = []
        for seen in accepted:
            olds = by_content.get((seen.wp.organization_id, seen.sha256 or ""))
            if olds:
                old = olds.pop()
                moves.append((seen, vanished.pop(old)["id"]))
                report.moved.append((old, seen.wp.storage_path))
            else:
                inserts.append(seen)

        report.held_deletions = _held_deletions(conn, root_state, vanished, guard)
        for held in report.held_deletions.values():
            for path in held["paths"]:
                vanished.pop(path)
        restores = _restorable(conn, inserts)
        inserts = [s for s in inserts if s.wp.storage_path not in restores]
        _write(conn, inserts, changed, touched, moves, vanished)
        _restore(conn, [(s, restores[s.wp.storage_path]) for s in accepted if s.wp.storage_path in restores])
        report.new = [s.wp.storage_path for s in inserts]
        report.restored = sorted(restores)
        report.changed = [p for p, _, _ in changed]
        report.touched = len(touched)
        report.deleted = sorted(vanished)
        _record_refusals(conn, candidates, refusals)
        report.refused = sorted((p, r.reason) for p, r in refusals.items() if not r.pending)
        report.pending = sorted((p, r.reason) for p, r in refusals.items() if r.pending)
    report.duration_s = round(time.monotonic() - started, 3)
    return report


def _root_state(root: Path) -> str:
    """'ok', 'missing' or 'empty': a root with no organisation folder in it (nothing, or only what a fresh disk
    holds, like lost+found) is an unmounted or replaced disk until proved otherwise."""
    try:
        with os.scandir(root) as it:
            return "ok" if any(ORG_RE.fullmatch(e.name) for e in it) else "empty"
    except (FileNotFoundError, NotADirectoryError):
        return "missing"


def _stat(root: Path, wp: WorkspacePath) -> os.stat_result | None:
    """The file's lstat through plain directories, None when it does not exist; Refused otherwise."""
    try:
        st = lstat(root, wp.storage_path)
        if st is not None:
            check_regular(st)
    except UnsafePath as exc:
        raise Refused(exc.reason, organization_id=wp.organization_id) from None
    except NotADirectoryError:
        raise Refused("a component of the path is not a directory", organization_id=wp.organization_id) from None
    except OSError as exc:
        reason = f"cannot be read: {exc.strerror or exc}"
        raise Refused(reason, organization_id=wp.organization_id, pending=True) from None
    return st


def _exists(root: Path, path: str) -> bool:
    try:
        return lstat(root, path) is not None
    except (UnsafePath, OSError):
        return True


def _held_deletions(
    conn: psycopg.Connection, root_state: str, vanished: dict[str, dict], guard: DeletionGuard
) -> dict[str, dict]:
    """Per organisation, the deletions this scan must not make (see DeletionGuard), with the reason."""
    if guard.allow or not vanished:
        return {}
    by_org: dict[str, list[str]] = {}
    for path, row in vanished.items():
        by_org.setdefault(row["organization_id"], []).append(path)
    active = dict(
        conn.execute(
            "SELECT organization_id, count(*) FROM files WHERE status = 'active' AND organization_id = ANY(%s) "
            "GROUP BY organization_id",
            (sorted(by_org),),
        ).fetchall()
    )
    held: dict[str, dict] = {}
    for org, paths in sorted(by_org.items()):
        total = active.get(org, len(paths))
        if root_state != "ok":
            reason = f"the workspace root is {root_state} (an unmounted disk?): no file is deleted"
        elif total >= guard.min_files and len(paths) > guard.max_share * total:
            reason = (
                f"{len(paths)} of the organisation's {total} active files would be deleted at once, more than "
                f"the allowed share {guard.max_share:g}"
            )
        else:
            continue
        held[org] = {"files": len(paths), "active_files": total, "reason": reason, "paths": sorted(paths)}
    return held


def _restorable(conn: psycopg.Connection, inserts: list[_Seen]) -> dict[str, uuid.UUID]:
    """New paths whose deleted row had the same organisation, path and content: that row comes back, with
    its id (and so its links from messages)."""
    if not inserts:
        return {}
    rows = conn.execute(
        "SELECT DISTINCT ON (f.storage_path) f.storage_path, f.id FROM files f "
        "JOIN unnest(%s::text[], %s::text[], %s::text[]) AS n(path, org, sha) "
        "  ON f.storage_path = n.path AND f.organization_id = n.org AND f.sha256 = n.sha "
        "WHERE f.status = 'deleted' ORDER BY f.storage_path, f.deleted_at DESC NULLS LAST",
        (
            [s.wp.storage_path for s in inserts],
            [s.wp.organization_id for s in inserts],
            [s.sha256 for s in inserts],
        ),
    ).fetchall()
    return dict(rows)


def _restore(conn: psycopg.Connection, restores: list[tuple[_Seen, uuid.UUID]]) -> None:
    conn.cursor().executemany(
        "UPDATE files SET status = 'active', deleted_at = NULL, user_id = %s, conversation_id = %s, kind = %s, "
        "filename = %s, size_bytes = %s, mime_type = %s, file_mtime = %s WHERE id = %s",
        [
            (s.wp.user_id, s.wp.conversation_id, s.wp.kind, s.wp.filename, s.size, s.mime, s.mtime, i)
            for s, i in restores
        ],
    )


def _active_rows(conn: psycopg.Connection, candidates: set[str]) -> dict[str, dict]:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(
            "SELECT id, organization_id, storage_path, size_bytes, file_mtime, sha256 FROM files "
            "WHERE status = 'active' AND storage_path = ANY(%s)",
            (sorted(_storable(candidates)),),
        )
        return {r["storage_path"]: r for r in cur.fetchall()}


def _known_entities(conn: psycopg.Connection, new: list[_Seen]) -> dict[str, Any]:
    orgs = sorted({s.wp.organization_id for s in new})
    users = sorted({s.wp.user_id for s in new})
    convs = sorted({s.wp.conversation_id for s in new})
    with conn.cursor() as cur:
        cur.execute("SELECT id, deleted_at IS NOT NULL FROM organizations WHERE id = ANY(%s)", (orgs,))
        org_deleted = dict(cur.fetchall())
        cur.execute("SELECT id, deleted_at IS NOT NULL FROM users WHERE id = ANY(%s)", (users,))
        user_deleted = dict(cur.fetchall())
        cur.execute(
            "SELECT organization_id, user_id, bool_or(deleted_at IS NULL) FROM organization_memberships "
            "WHERE organization_id = ANY(%s) AND user_id = ANY(%s) GROUP BY 1, 2",
            (orgs, users),
        )
        member = {(o, u): active for o, u, active in cur.fetchall()}
        cur.execute("SELECT id, organization_id, user_id, visibility FROM conversations WHERE id = ANY(%s)", (convs,))
        conversations = {r[0]: r[1:] for r in cur.fetchall()}
    return {"orgs": org_deleted, "users": user_deleted, "members": member, "convs": conversations}


def _entity_problem(wp: WorkspacePath, known: dict[str, Any]) -> tuple[str, bool] | None:
    """(reason, pending) when the path's organisation, user or conversation does not allow the file: the
    user must be an active member of the organisation, and the conversation the user's own or shared with
    the organisation. What is not synced yet is pending; what is known to be wrong is refused."""
    org, user = wp.organization_id, wp.user_id
    if org not in known["orgs"]:
        return f"unknown organisation {org} (waiting for it to be synced)", True
    if known["orgs"][org]:
        return f"organisation {org} is deleted", False
    if user not in known["users"]:
        return f"unknown user {user} (waiting for it to be synced)", True
    if known["users"][user]:
        return f"user {user} is deleted", False
    membership = known["members"].get((org, user))
    if membership is None:
        return f"{user} is not a member of {org} (waiting for the membership to be synced)", True
    if not membership:
        return f"{user} is no longer a member of {org}", False
    conversation = known["convs"].get(wp.conversation_id)
    if conversation is None:
        return f"unknown conversation {wp.conversation_id} (waiting for it to be created)", True
    conv_org, owner, visibility = conversation
    if conv_org != org:
        return f"conversation {wp.conversation_id} belongs to another organisation", False
    if owner != user and visibility != "shared":
        return f"conversation {wp.conversation_id} is another user's private conversation", False
    return None


def _write(
    conn: psycopg.Connection,
    inserts: list[_Seen],
    changed: list[tuple[str, _Seen, uuid.UUID]],
    touched: list[tuple[dt.datetime, uuid.UUID]],
    moves: list[tuple[_Seen, uuid.UUID]],
    vanished: dict[str, dict],
) -> None:
    with conn.cursor() as cur:
        if vanished:
            ids = [r["id"] for r in vanished.values()]
            cur.execute(
                "UPDATE files SET status = 'deleted', deleted_at = now() WHERE id = ANY(%s) AND status = 'active'",
                (ids,),
            )
            forget_file_knowledge(cur, ids)
        cur.executemany(
            "UPDATE files SET storage_path = %s, user_id = %s, conversation_id = %s, kind = %s, filename = %s, "
            "file_mtime = %s, mime_type = %s WHERE id = %s",
            [
                (s.wp.storage_path, s.wp.user_id, s.wp.conversation_id, s.wp.kind, s.wp.filename, s.mtime, s.mime, i)
                for s, i in moves
            ],
        )
        cur.executemany(
            "UPDATE files SET size_bytes = %s, sha256 = %s, mime_type = %s, file_mtime = %s WHERE id = %s",
            [(s.size, s.sha256, s.mime, s.mtime, i) for _, s, i in changed],
        )
        cur.executemany("UPDATE files SET file_mtime = %s WHERE id = %s", touched)
        cur.executemany(
            "INSERT INTO files (organization_id, user_id, conversation_id, kind, storage_path, filename, size_bytes, "
            "sha256, mime_type, file_mtime) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    s.wp.organization_id,
                    s.wp.user_id,
                    s.wp.conversation_id,
                    s.wp.kind,
                    s.wp.storage_path,
                    s.wp.filename,
                    s.size,
                    s.sha256,
                    s.mime,
                    s.mtime,
                )
                for s in inserts
            ],
        )


def forget_file_knowledge(cur: psycopg.Cursor, file_ids: list[uuid.UUID]) -> None:
    """A deleted file's chunks, vectors, extraction record and embedding failures go with it."""
    for table in ("embeddings", "file_chunks", "file_extractions", "embedding_failures"):
        cur.execute(f"DELETE FROM {table} WHERE file_id = ANY(%s)", (file_ids,))


def _record_refusals(conn: psycopg.Connection, candidates: set[str], refusals: dict[str, Refused]) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO workspace_refusals (storage_path, organization_id, status, reason) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (storage_path) DO UPDATE SET organization_id = EXCLUDED.organization_id, "
            "status = EXCLUDED.status, reason = EXCLUDED.reason, last_seen_at = now()",
            [
                (_storable_path(p), r.organization_id, "pending" if r.pending else "refused", r.reason)
                for p, r in sorted(refusals.items())
            ],
        )
        cleared = sorted(_storable(candidates - refusals.keys()))
        cur.execute("DELETE FROM workspace_refusals WHERE storage_path = ANY(%s)", (cleared,))


def _storable_path(path: str) -> str:
    """The path as the database can keep it: bytes that are not UTF-8 escaped, cut to the indexable length."""
    text = path.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    if len(text.encode()) <= MAX_PATH_BYTES:
        return text
    return text.encode()[:MAX_PATH_BYTES].decode("utf-8", "ignore") + "…"


def _storable(paths: Iterable[str]) -> set[str]:
    return {_storable_path(p) for p in paths}
