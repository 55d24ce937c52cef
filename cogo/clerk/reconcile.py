"""Reconciliation: pull every organization, user and membership from the Clerk Backend API through the same
guarded upserts as the webhooks (so a webhook and the pull can interleave in any order), then soft-delete
what Clerk no longer has — only when the pull completed, its counts match Clerk's totals, and only rows not
updated since the pull began (a webhook that landed meanwhile wins)."""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import TypeVar

import psycopg

from cogo.clerk.api import ClerkApiError, ClerkClient, Page
from cogo.clerk.apply import FAILED, apply_changes
from cogo.clerk.records import Change, Kind, RecordError, upsert_change
from cogo.clerk.upserts import DELETES, TABLES

KINDS: tuple[Kind, ...] = ("organization", "user", "membership")


@dataclass
class ReconcileResult:
    started_at: datetime
    complete: bool = False
    error: str | None = None
    seen: dict[str, int] = field(default_factory=dict)
    totals: dict[str, int | None] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    deleted: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    deletes_skipped: str | None = None
    requests_made: int = 0
    duration_s: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def counts_match(self) -> bool:
        return all(self.totals.get(kind) == self.seen.get(kind) for kind in KINDS)


# Deletes are soft and final (a deleted id never comes back), so a pull that would delete most of what we
# hold (a valid key for an empty or wrong instance "matches" its own totals) is refused unless told otherwise.
DEFAULT_MAX_DELETE_FRACTION = 0.5


def reconcile(
    conn: psycopg.Connection, client: ClerkClient, *, max_delete_fraction: float = DEFAULT_MAX_DELETE_FRACTION
) -> ReconcileResult:
    """`conn` in autocommit mode; `client` entered (`with ClerkClient(...) as client`). Deletes are refused
    when they would remove more than `max_delete_fraction` of the active rows of any kind (1.0 allows all)."""
    if not conn.autocommit:
        raise ValueError("reconcile needs an autocommit connection")
    clock = time.monotonic()
    result = ReconcileResult(started_at=conn.execute("SELECT now()").fetchone()[0])
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS clerk_pull_seen (kind text NOT NULL, id text NOT NULL)")
    conn.execute("TRUNCATE clerk_pull_seen")
    try:
        for kind, pages in (
            ("organization", client.organizations()),
            ("user", client.users()),
            ("membership", client.memberships()),
        ):
            for page in prefetched(pages, partial(PreparedPage.of, kind)):
                _apply_page(conn, page, result)
                if page.total_count is not None:
                    result.totals[kind] = page.total_count
        result.totals["user"] = client.user_count()
        result.complete = True
    except ClerkApiError as exc:
        result.error = str(exc)
    # Temporary tables get no statistics from autovacuum: without them the planner takes the seen set for empty
    # and probes it by a scan per directory row (minutes at 200,000 memberships) instead of hashing it.
    conn.execute("ANALYZE clerk_pull_seen")
    for kind in KINDS:
        result.seen[kind] = conn.execute(
            "SELECT count(DISTINCT id) FROM clerk_pull_seen WHERE kind = %s", (kind,)
        ).fetchone()[0]

    if not result.complete:
        result.deletes_skipped = f"pull incomplete: {result.error}"
    elif not result.counts_match:
        result.deletes_skipped = f"counts differ from Clerk's totals: seen {result.seen}, Clerk {result.totals}"
    elif too_many := _mass_deletes(conn, result, max_delete_fraction):
        result.deletes_skipped = (
            f"refused: would delete {too_many}, more than {max_delete_fraction:.0%} of the active rows; is "
            "CLERK_SECRET_KEY the right instance? Re-run with max_delete_fraction=1.0 if Clerk really lost them"
        )
    else:
        _delete_missing(conn, result)
    conn.execute("DROP TABLE IF EXISTS clerk_pull_seen")
    result.requests_made = client.requests_made
    result.duration_s = time.monotonic() - clock
    return result


T = TypeVar("T")


def _same(page: Page) -> Page:
    return page


def prefetched(pages: Iterator[Page], prepare: Callable[[Page], T] = _same) -> Iterator[T]:
    """Fetch (and `prepare`: decode into rows) the next page while the current one is written: the pull then
    takes about as long as the slower of the two (Clerk's pages and rate limit, or Postgres), not their sum.
    Errors surface in the caller."""
    slot: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=1)
    stop = threading.Event()  # the consumer gave up (its write failed): stop fetching

    def hand_over(item: tuple[str, object]) -> bool:
        while not stop.is_set():
            try:
                slot.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def fetch() -> None:
        try:
            for page in pages:
                if not hand_over(("page", prepare(page))):
                    return
            hand_over(("end", None))
        except BaseException as exc:  # handed to the consuming thread
            hand_over(("error", exc))

    threading.Thread(target=fetch, name="clerk-prefetch", daemon=True).start()
    try:
        while True:
            tag, value = slot.get()
            if tag == "end":
                return
            if tag == "error":
                raise value  # type: ignore[misc]
            yield value  # type: ignore[misc]
    finally:
        stop.set()


@dataclass
class PreparedPage:
    """A page's objects as changes, built in the prefetching thread (while Postgres writes the page before)."""

    kind: Kind
    changes: list[Change]
    seen: list[str]  # every id on the page, even an unusable object's: it is never deleted for being malformed
    failures: list[str]
    total_count: int | None

    @classmethod
    def of(cls, kind: Kind, page: Page) -> PreparedPage:
        changes: list[Change] = []
        seen: list[str] = []
        failures: list[str] = []
        for item in page.items:
            object_id = item.get("id") if isinstance(item, dict) else None
            if isinstance(object_id, str):
                seen.append(object_id)
            try:
                changes.append(upsert_change(kind, item))
            except (RecordError, AttributeError) as exc:
                failures.append(f"{kind} {object_id}: {exc}")
        return cls(kind, changes, seen, failures, page.total_count)


def _apply_page(conn: psycopg.Connection, page: PreparedPage, result: ReconcileResult) -> None:
    if page.failures:
        result.counts[FAILED] += len(page.failures)
        result.errors.extend(page.failures[: max(0, 20 - len(result.errors))])
    with conn.transaction():
        batch = apply_changes(conn, page.changes)
        with conn.cursor().copy("COPY clerk_pull_seen (kind, id) FROM STDIN") as copy:
            for object_id in page.seen:
                copy.write_row((page.kind, object_id))
    result.counts.update(batch.counts)
    for change, outcome in zip(page.changes, batch.outcomes, strict=True):
        if outcome.status == FAILED and len(result.errors) < 20:
            result.errors.append(f"{page.kind} {change.id}: {outcome.error}")


def _mass_deletes(conn: psycopg.Connection, result: ReconcileResult, max_fraction: float) -> str:
    """'<n> of <active> <kind>s' for each kind whose deletes would exceed the fraction; '' when none does."""
    over = []
    for kind in KINDS:
        active, missing = conn.execute(
            f"""SELECT count(*), count(*) FILTER (WHERE NOT EXISTS (
                       SELECT 1 FROM clerk_pull_seen s WHERE s.kind = %(kind)s AND s.id = t.id)
                       AND t.updated_at < %(started)s)
                  FROM {TABLES[kind]} t WHERE t.deleted_at IS NULL""",
            {"kind": kind, "started": result.started_at},
        ).fetchone()
        if missing and missing > max_fraction * active:
            over.append(f"{missing} of {active} {kind}s")
    return ", ".join(over)


def _delete_missing(conn: psycopg.Connection, result: ReconcileResult) -> None:
    # Memberships first, then organizations and users (whose deletes end their remaining memberships).
    for kind in ("membership", "organization", "user"):
        columns = "id, organization_id, user_id" if kind == "membership" else "id"
        names = columns.split(", ")
        with conn.transaction():
            # FOR UPDATE: a webhook applying meanwhile waits, so "not updated since the pull began" holds.
            rows = conn.execute(
                f"""
                SELECT {columns} FROM {TABLES[kind]} t
                WHERE t.deleted_at IS NULL AND t.updated_at < %(started)s
                  AND NOT EXISTS (SELECT 1 FROM clerk_pull_seen s WHERE s.kind = %(kind)s AND s.id = t.id)
                FOR UPDATE
                """,
                {"started": result.started_at, "kind": kind},
            ).fetchall()
            gone = [{**dict(zip(names, row, strict=True)), "at_ms": None} for row in rows]
            result.deleted[kind] = len(DELETES[kind](conn, gone)) if gone else 0
