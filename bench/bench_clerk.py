"""Benchmark Clerk sync: apply inbox events (then the same events again, all stale), and reconcile a
directory served by the local Clerk stand-in (tests/clerk_fake.py), each next to its raw limit.

    python bench/bench_clerk.py                                  # 100,000 events; 100k users, 5k orgs, 200k memberships
    python bench/bench_clerk.py --events 20000 --users 10000 --orgs 500 --memberships 20000

Writes to its own database (`cogo_bench_clerk` on the server of COGO_DATABASE_URL, else the embedded one
under COGO_HOME), dropped and recreated each run. Run from the repository root (it imports tests.clerk_fake).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cogo.clerk.api import ClerkClient
from cogo.clerk.inbox import apply_inbox
from cogo.clerk.reconcile import reconcile
from cogo.config import Settings
from cogo.db import admin
from cogo.db.connect import connect
from cogo.db.urls import redact
from cogo.services import database_url
from tests.clerk_fake import (
    API_KEY,
    BASE_MS,
    ClerkState,
    FakeClerk,
    clerk_membership,
    clerk_org,
    clerk_user,
    deleted_object,
    event,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=5000, help="events per apply transaction")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--orgs", type=int, default=5_000)
    parser.add_argument("--memberships", type=int, default=200_000)
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--database", default="cogo_bench_clerk")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--only", choices=("apply", "reconcile"), help="run one of the two benchmarks")
    return parser.parse_args(argv)


def recreate_database(name: str) -> str:
    return admin.recreate_database(database_url(Settings.from_env()), name)


def inbox_events(count: int, rng: random.Random) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """A webhook mix: 45% user.created, 5% organization.created, 38% membership created, 10% user.updated,
    2% user.deleted; ids drawn so that updates and deletes hit created users, in shuffled arrival order."""
    users = max(1, int(count * 0.45))
    orgs = max(1, int(count * 0.05))
    rows: list[tuple[str, dict[str, Any]]] = []
    rows += [
        ("user.created", clerk_user(f"user_{n}", created_ms=BASE_MS + n, updated_ms=BASE_MS + n)) for n in range(users)
    ]
    rows += [("organization.created", clerk_org(f"org_{n}", updated_ms=BASE_MS + n)) for n in range(orgs)]
    rows += [
        ("organizationMembership.created", clerk_membership(f"orgmem_{n}", f"org_{n % orgs}", f"user_{n % users}"))
        for n in range(int(count * 0.38))
    ]
    rows += [
        ("user.updated", clerk_user(f"user_{rng.randrange(users)}", first_name="Upd", updated_ms=BASE_MS + 10**7 + n))
        for n in range(int(count * 0.10))
    ]
    while len(rows) < count:
        n = rng.randrange(users)
        rows.append(("user.deleted", deleted_object(f"user_{n}", "user")))
    rng.shuffle(rows)
    for index, (event_type, data) in enumerate(rows[:count]):
        yield f"msg_{index}", event_type, event(event_type, data, timestamp_ms=BASE_MS + 2 * 10**7 + index)


def load_inbox(conn: psycopg.Connection, count: int, seed: int) -> float:
    started = time.monotonic()
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY clerk_webhook_inbox (svix_id, event_type, payload, event_time, svix_timestamp) FROM STDIN"
        ) as copy,
    ):
        for svix_id, event_type, payload in inbox_events(count, random.Random(seed)):
            event_ms = payload["data"].get("updated_at") or payload["timestamp"]
            stamp = f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(event_ms / 1000))}.{event_ms % 1000:03d}+00"
            copy.write_row((svix_id, event_type, json.dumps(payload), stamp, stamp))
    return time.monotonic() - started


def bench_apply(url: str, args: argparse.Namespace) -> None:
    with connect(url, autocommit=True) as conn:
        load_s = load_inbox(conn, args.events, args.seed)
        print(f"inbox: {args.events:,} events loaded by COPY in {load_s:.2f}s")

        started = time.monotonic()
        rows = conn.execute("SELECT svix_id, event_type, payload FROM clerk_webhook_inbox").fetchall()
        raw_s = time.monotonic() - started
        print(f"  raw limit: read and decode every payload once: {len(rows) / raw_s:,.0f} events/s ({raw_s:.2f}s)")
        del rows

        first = apply_inbox(conn, batch_size=args.batch_size)
        print(
            f"  apply (first time):  {first.events / first.duration_s:,.0f} events/s "
            f"({first.duration_s:.2f}s, {dict(first.counts)})"
        )
        conn.execute(
            "UPDATE clerk_webhook_inbox SET applied_at = NULL, status = 'pending', attempts = 0, last_attempt_at = NULL"
        )
        conn.execute("VACUUM ANALYZE clerk_webhook_inbox")
        again = apply_inbox(conn, batch_size=args.batch_size)
        print(
            f"  re-apply (all stale): {again.events / again.duration_s:,.0f} events/s "
            f"({again.duration_s:.2f}s, {dict(again.counts)})"
        )
        print("  target: >= 5,000 events/s")


def directory(args: argparse.Namespace) -> ClerkState:
    state = ClerkState()
    state.organizations = [clerk_org(f"org_{n}", created_ms=BASE_MS + n) for n in range(args.orgs)]
    state.users = [clerk_user(f"user_{n}", created_ms=BASE_MS + n) for n in range(args.users)]
    state.memberships = [
        clerk_membership(
            f"orgmem_{n}", f"org_{n % args.orgs}", f"user_{(n * 7919) % args.users}", created_ms=BASE_MS + n
        )
        for n in range(args.memberships)
    ]
    # Distinct (organization, user) pairs, as Clerk guarantees: bump collisions to the next user.
    seen: set[tuple[str, str]] = set()
    for n, item in enumerate(state.memberships):
        user_index = (n * 7919) % args.users
        while (item["organization"]["id"], f"user_{user_index}") in seen:
            user_index = (user_index + 1) % args.users
        item["public_user_data"]["user_id"] = f"user_{user_index}"
        seen.add((item["organization"]["id"], f"user_{user_index}"))
    return state


def bench_reconcile(url: str, args: argparse.Namespace) -> None:
    with connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE users, organizations, organization_memberships CASCADE")
        state = directory(args)
        with FakeClerk(state) as clerk:
            with ClerkClient(secret_key=API_KEY, api_url=clerk.api_url, page_size=args.page_size) as client:
                started = time.monotonic()
                pulled = sum(
                    len(page.items)
                    for kind in (client.organizations, client.users, client.memberships)
                    for page in kind()
                )
                raw_s = time.monotonic() - started
                raw_requests = client.requests_made
            print(
                f"reconcile: {args.users:,} users, {args.orgs:,} orgs, {args.memberships:,} memberships "
                f"(page size {args.page_size})"
            )
            print(f"  raw limit: fetch every page only: {raw_s:.2f}s, {raw_requests} requests, {pulled:,} objects")
            for label in ("into an empty directory", "again (all unchanged)"):
                with ClerkClient(secret_key=API_KEY, api_url=clerk.api_url, page_size=args.page_size) as client:
                    result = reconcile(conn, client)
                print(
                    f"  reconcile {label}: {result.duration_s:.2f}s wall, {result.requests_made} requests, "
                    f"complete={result.complete}, counts_match={result.counts_match}, {dict(result.counts)}, "
                    f"deleted={result.deleted}"
                )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    url = recreate_database(args.database)
    print(f"database: {redact(url)}")
    if args.only in (None, "apply"):
        bench_apply(url, args)
    if args.only in (None, "reconcile"):
        bench_reconcile(url, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
