"""Apply a batch of Clerk changes (from the inbox or from a pull) with one set-based statement per kind.

Per Clerk id the batch is collapsed first: a delete wins (deletes are final), else the upsert with the
newest updated_at; the others in the group are settled as stale (or, after a delete, ignored). A statement
that fails is retried row by row inside savepoints, so one bad object fails alone and the rest proceed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from cogo.clerk.records import Change, Kind
from cogo.clerk.upserts import DELETES, UPSERTS, current_among, deleted_among

# Organizations and users first so that memberships find deleted parents; deletes after upserts.
ORDER: tuple[tuple[Kind, str], ...] = (
    ("organization", "upsert"),
    ("user", "upsert"),
    ("organization", "delete"),
    ("user", "delete"),
    ("membership", "upsert"),
    ("membership", "delete"),
)

APPLIED, STALE, IGNORED, FAILED = "applied", "stale", "ignored", "failed"
# What writing one odd row may raise: Postgres refusing it, or its values not encoding as the jsonb parameter.
WRITE_ERRORS = (psycopg.Error, ValueError, TypeError)


@dataclass
class Outcome:
    status: str
    error: str | None = None


@dataclass
class BatchResult:
    outcomes: list[Outcome]
    counts: Counter[str] = field(default_factory=Counter)


def _delete_row(change: Change) -> dict[str, Any]:
    return {**change.row, "at_ms": change.at_ms}


def _write(
    conn: psycopg.Connection, write: Callable[[psycopg.Connection, list[dict[str, Any]]], set[str]], rows: list
) -> tuple[set[str], dict[str, str]]:
    """Run one set-based write; if it fails, isolate the failing rows one by one."""
    if not rows:
        return set(), {}
    try:
        with conn.transaction():
            return write(conn, rows), {}
    except WRITE_ERRORS:
        pass
    done: set[str] = set()
    failures: dict[str, str] = {}
    # Two passes: a row that failed because of another one in this batch (a slug freed by a rename
    # later in the batch) gets a second chance once the others are written.
    pending = rows
    for _ in range(2):
        retry = []
        for row in pending:
            try:
                with conn.transaction():
                    done |= write(conn, [row])
                failures.pop(row["id"], None)
            except WRITE_ERRORS as exc:
                failures[row["id"]] = f"{type(exc).__name__}: {first_line(exc)}"
                retry.append(row)
        if not retry or len(retry) == len(pending):
            break
        pending = retry
    return done, failures


def first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else ""


def apply_changes(conn: psycopg.Connection, changes: list[Change | None]) -> BatchResult:
    """Apply changes (None: nothing to apply, settled as ignored). Runs inside the caller's transaction."""
    changes = list(changes)  # pairs replaced within the batch are rewritten as deletes below
    outcomes: list[Outcome | None] = [None] * len(changes)
    groups: dict[tuple[str, str], list[int]] = {}
    for index, change in enumerate(changes):
        if change is None:
            outcomes[index] = Outcome(IGNORED)
        else:
            groups.setdefault((change.kind, change.id), []).append(index)

    chosen: dict[tuple[str, str], list[int]] = {step: [] for step in ORDER}
    for (kind, _), members in groups.items():
        deletes = [i for i in members if changes[i].operation == "delete"]
        if deletes:
            winner = min(deletes, key=lambda i: (changes[i].at_ms is None, changes[i].at_ms or 0, i))
            deleted_at = changes[winner].at_ms
            for i in members:
                if i == winner:
                    continue
                change = changes[i]
                before_delete = change.operation == "upsert" and (
                    deleted_at is None or (change.updated_ms or 0) <= deleted_at
                )
                outcomes[i] = Outcome(STALE if before_delete or change.operation == "delete" else IGNORED)
            chosen[(kind, "delete")].append(winner)
        else:
            winner = max(members, key=lambda i: (changes[i].updated_ms or 0, i))
            for i in members:
                if i != winner:
                    outcomes[i] = Outcome(STALE)
            chosen[(kind, "upsert")].append(winner)

    _supersede_pairs_in_batch(changes, chosen)

    for kind, operation in ORDER:
        indexes = chosen[(kind, operation)]
        if not indexes:
            continue
        if operation == "upsert":
            rows = [changes[i].row for i in indexes]
            stale, deleted = current_among(conn, kind, rows)
            rows = [row for row in rows if row["id"] not in stale and row["id"] not in deleted]
            done, failures = _write(conn, UPSERTS[kind], rows)
            written = {row["id"] for row in rows}
            not_done = [object_id for object_id in written if object_id not in done and object_id not in failures]
            deleted |= deleted_among(conn, kind, not_done)
        else:
            rows = [_delete_row(changes[i]) for i in indexes]
            done, failures = _write(conn, DELETES[kind], rows)
            deleted = set()
        for i in indexes:
            object_id = changes[i].id
            if object_id in failures:
                for member in groups[(kind, object_id)]:
                    outcomes[member] = Outcome(FAILED, failures[object_id])
            elif object_id in done:
                outcomes[i] = Outcome(APPLIED)
            else:
                outcomes[i] = Outcome(IGNORED if object_id in deleted else STALE)

    settled = [outcome or Outcome(IGNORED) for outcome in outcomes]
    return BatchResult(settled, Counter(outcome.status for outcome in settled))


def _supersede_pairs_in_batch(changes: list[Change | None], chosen: dict[tuple[str, str], list[int]]) -> None:
    """Two live memberships of one (organization, user) in a batch: the older-created one was replaced,
    so it is written as a delete (the partial unique index allows one live membership per pair)."""
    by_pair: dict[tuple[str, str], list[int]] = {}
    for i in chosen[("membership", "upsert")]:
        row = changes[i].row
        by_pair.setdefault((row["organization_id"], row["user_id"]), []).append(i)
    replaced: list[int] = []
    for members in by_pair.values():
        if len(members) > 1:
            newest = max(members, key=lambda i: (changes[i].row.get("created_ms") or 0, i))
            replaced.extend(i for i in members if i != newest)
    for i in replaced:
        change = changes[i]
        chosen[("membership", "upsert")].remove(i)
        changes[i] = Change(change.kind, "delete", change.id, _membership_ids(change.row), None, None)
        chosen[("membership", "delete")].append(i)


def _membership_ids(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "organization_id": row["organization_id"], "user_id": row["user_id"]}
