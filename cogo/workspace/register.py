"""Registering workspace files in `files`: new, changed, moved and deleted files, refused and pending paths.

A batch is a set of candidate paths (files the sensor saw change, plus every path under the directories
whose listing changed, plus what the database holds there); a full scan takes the whole root. Each
candidate is compared with its `files` row: an unchanged size and mtime skip hashing; a file that vanished
while a new path appeared with the same content in the same organisation is a move (the row, its chunks
and its vectors keep their id); a file that vanished otherwise is marked deleted and its chunks and vectors
are removed. Paths that name an organisation, user or conversation the database does not have are kept as
'pending' in workspace_refusals and retried by every run; layout violations, symlinks and paths outside the
root are 'refused'.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from cogo.workspace.filetype import hash_and_sniff
from cogo.workspace.layout import Refused, WorkspacePath, check_on_disk, parse_layout
from cogo.workspace.scan import Entry, walk

LOCK_KEY = 7_000_001  # pg advisory lock: one registration at a time
# Refusals decided from the path's text alone: the disk is never consulted for them.
UNSAFE_REASONS = ("path traversal", "absolute path", "path contains")


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
            "bytes_hashed": self.bytes_hashed,
        }


@dataclass
class _Seen:
    wp: WorkspacePath
    size: int
    mtime: dt.datetime
    sha256: str | None = None
    mime: str | None = None


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
            if entry.kind == "file":
                candidates.add(entry.path)
                walked[entry.path] = entry
            elif entry.kind == "symlink":
                candidates.add(entry.path)
                special[entry.path] = "symlink: symlinks are never followed"
            elif entry.kind == "other":
                candidates.add(entry.path)
                special[entry.path] = "not a regular file"
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


def register_files(
    conn: psycopg.Connection,
    root: Path,
    *,
    paths: list[str] | None = None,
    dirs: list[str] | None = None,
    full: bool = False,
) -> RegisterReport:
    """Reconcile the candidates with `files` in one transaction. Idempotent."""
    started = time.monotonic()
    report = RegisterReport()
    root = root.absolute()
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        walked: dict[str, Entry] = {}
        candidates, special = candidate_paths(conn, root, paths=paths, dirs=dirs, full=full, walked=walked)
        report.candidates = len(candidates)
        rows = _active_rows(conn, candidates)
        refusals: dict[str, Refused] = {}
        present: dict[str, _Seen] = {}
        for path in sorted(candidates):
            try:
                wp = parse_layout(path)
                if path in special:
                    raise Refused(special[path], organization_id=wp.organization_id)
                entry = walked.get(path)
                if entry is not None:
                    present[path] = _Seen(wp, entry.size, _mtime(entry.mtime_ns))
                    continue
                st = check_on_disk(root, wp) if root.exists() else None
            except Refused as exc:
                if path in special and exc.reason != special[path]:
                    exc = Refused(special[path], organization_id=exc.organization_id)
                elif path not in special and not _unsafe(exc) and not os.path.lexists(root / path):
                    continue  # a refused path that is gone: its refusal is cleared
                refusals[path] = exc
                continue
            if st is not None:
                present[path] = _Seen(wp, st.st_size, _mtime(st.st_mtime_ns))

        vanished = {p: r for p, r in rows.items() if p not in present}
        # Files on disk with a row: unchanged (size and mtime equal), touched, or changed.
        changed: list[tuple[str, _Seen, uuid.UUID]] = []
        touched: list[tuple[dt.datetime, uuid.UUID]] = []
        new: list[_Seen] = []
        for path, seen in present.items():
            row = rows.get(path)
            if row and row["size_bytes"] == seen.size and row["file_mtime"] == seen.mtime:
                report.unchanged += 1
                continue
            seen.sha256, size, seen.mime = hash_and_sniff(root / path)
            seen.size = size
            report.bytes_hashed += size
            if row is None:
                new.append(seen)
            elif row["sha256"] == seen.sha256:
                touched.append((seen.mtime, row["id"]))
            else:
                changed.append((path, seen, row["id"]))

        known = _known_entities(conn, new)
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

        _write(conn, inserts, changed, touched, moves, vanished)
        report.new = [s.wp.storage_path for s in inserts]
        report.changed = [p for p, _, _ in changed]
        report.touched = len(touched)
        report.deleted = sorted(vanished)
        _record_refusals(conn, candidates, refusals)
        report.refused = sorted((p, r.reason) for p, r in refusals.items() if not r.pending)
        report.pending = sorted((p, r.reason) for p, r in refusals.items() if r.pending)
    report.duration_s = round(time.monotonic() - started, 3)
    return report


def _active_rows(conn: psycopg.Connection, candidates: set[str]) -> dict[str, dict]:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(
            "SELECT id, organization_id, storage_path, size_bytes, file_mtime, sha256 FROM files "
            "WHERE status = 'active' AND storage_path = ANY(%s)",
            (sorted(candidates),),
        )
        return {r["storage_path"]: r for r in cur.fetchall()}


def _known_entities(conn: psycopg.Connection, new: list[_Seen]) -> dict[str, dict]:
    orgs = sorted({s.wp.organization_id for s in new})
    users = sorted({s.wp.user_id for s in new})
    convs = sorted({s.wp.conversation_id for s in new})
    with conn.cursor() as cur:
        cur.execute("SELECT id FROM organizations WHERE id = ANY(%s) AND deleted_at IS NULL", (orgs,))
        org_ids = {r[0] for r in cur.fetchall()}
        cur.execute("SELECT id FROM users WHERE id = ANY(%s) AND deleted_at IS NULL", (users,))
        user_ids = {r[0] for r in cur.fetchall()}
        cur.execute("SELECT id, organization_id FROM conversations WHERE id = ANY(%s)", (convs,))
        conv_orgs = dict(cur.fetchall())
    return {"orgs": org_ids, "users": user_ids, "convs": conv_orgs}  # type: ignore[dict-item]


def _entity_problem(wp: WorkspacePath, known: dict) -> tuple[str, bool] | None:
    """(reason, pending) when the path's organisation, user or conversation is not usable."""
    if wp.organization_id not in known["orgs"]:
        return f"unknown organisation {wp.organization_id} (waiting for it to be synced)", True
    if wp.user_id not in known["users"]:
        return f"unknown user {wp.user_id} (waiting for it to be synced)", True
    conv_org = known["convs"].get(wp.conversation_id)
    if conv_org is None:
        return f"unknown conversation {wp.conversation_id} (waiting for it to be created)", True
    if conv_org != wp.organization_id:
        return f"conversation {wp.conversation_id} belongs to another organisation", False
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
                (p, r.organization_id, "pending" if r.pending else "refused", r.reason)
                for p, r in sorted(refusals.items())
            ],
        )
        cleared = sorted(candidates - refusals.keys())
        cur.execute("DELETE FROM workspace_refusals WHERE storage_path = ANY(%s)", (cleared,))
