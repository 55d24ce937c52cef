"""Benchmark Clerk sync: apply inbox events (then the same events again, all stale), and reconcile a
directory served by the local Clerk stand-in (tests/clerk_fake.py), each next to its raw limit.

    python bench/bench_clerk.py                                  # 100,000 events; 100k users, 5k orgs, 200k memberships
    python bench/bench_clerk.py --events 20000 --users 10000 --orgs 500 --memberships 20000
    python bench/bench_clerk.py --only reconcile --rate-limit 1000   # as a production instance's rate limit
    python bench/bench_clerk.py --only reconcile --latency-ms 50     # each answer 50 ms late, as over a network

The Clerk stand-in runs in its own process, so reconcile and "fetch only" are measured against the same
server without sharing a GIL with it.

Writes to its own database (`cogo_bench_clerk` on the server of COGO_DATABASE_URL, else the embedded one
under COGO_HOME), dropped and recreated each run. Run from the repository root (it imports tests.clerk_fake).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cogo.clerk.api import ClerkClient
from cogo.clerk.inbox import apply_inbox
from cogo.clerk.reconcile import prefetched, reconcile
from cogo.config import Settings
from cogo.db import admin
from cogo.db.connect import connect
from cogo.db.urls import redact
from cogo.local_services import start_database
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

# Clerk's Backend API rate limit is counted per application instance over 10 seconds: 1000 requests for a
# production instance, 100 for a development one; over it, 429 with Retry-After in seconds
# (https://clerk.com/docs/guides/how-clerk-works/system-limits).
RATE_WINDOW_S = 10.0


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
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=0,
        help=f"Clerk stand-in admits this many requests per {RATE_WINDOW_S:.0f}s, then answers 429 with Retry-After "
        "(Clerk documents 1000 for production instances, 100 for development ones); 0: no limit",
    )
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="Clerk stand-in waits this long before each answer (a remote API's round trip); 0: none",
    )
    parser.add_argument("--serve-clerk", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def recreate_database(name: str) -> str:
    return admin.recreate_database(start_database(Settings.from_env()), name)


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


@contextmanager
def clerk_server(args: argparse.Namespace) -> Iterator[str]:
    """The local Clerk stand-in in its own process (its JSON encoding must not share cogo's GIL, as a real
    Clerk would not): this script re-run with --serve-clerk, which prints its URL and serves until its stdin
    closes. Yields the API URL."""
    command = [sys.executable, str(Path(__file__).resolve()), "--serve-clerk", *_directory_argv(args)]
    server = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline().strip()
        if not line.startswith("http://"):
            raise RuntimeError(f"the Clerk stand-in did not start (said {line!r})")
        yield line
    finally:
        server.stdin.close()  # the server's cue to stop
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _directory_argv(args: argparse.Namespace) -> list[str]:
    argv = ["--users", str(args.users), "--orgs", str(args.orgs), "--memberships", str(args.memberships)]
    if args.rate_limit:
        argv += ["--rate-limit", str(args.rate_limit)]
    if args.latency_ms:
        argv += ["--latency-ms", str(args.latency_ms)]
    return argv


def serve_clerk(args: argparse.Namespace) -> int:
    """--serve-clerk: serve directory(args) until stdin closes."""
    state = directory(args)
    if args.rate_limit:
        state.rate_limit = (args.rate_limit, RATE_WINDOW_S)
    state.latency_s = args.latency_ms / 1000
    with FakeClerk(state) as clerk:
        print(clerk.api_url, flush=True)
        sys.stdin.read()
    return 0


def bench_reconcile(url: str, args: argparse.Namespace) -> None:
    limit = f"{args.rate_limit} requests per {RATE_WINDOW_S:.0f}s" if args.rate_limit else "none"
    print(
        f"reconcile: {args.users:,} users, {args.orgs:,} orgs, {args.memberships:,} memberships "
        f"(page size {args.page_size}; Clerk stand-in in its own process; rate limit: {limit}; "
        f"added latency: {args.latency_ms:g} ms)"
    )
    with connect(url, autocommit=True) as conn, clerk_server(args) as api_url:
        conn.execute("TRUNCATE users, organizations, organization_memberships CASCADE")
        with ClerkClient(secret_key=API_KEY, api_url=api_url, page_size=args.page_size) as client:
            started = time.monotonic()
            pulled = 0
            for kind in (client.organizations, client.users, client.memberships):
                for page in prefetched(kind()):  # fetched as reconcile fetches them, nothing written
                    pulled += len(page.items)
            client.user_count()
            fetch_s = time.monotonic() - started
            fetch_requests = client.requests_made
        pages = fetch_requests - 1 - len(client.waits)  # less /users/count and the 429s
        print(
            f"  fetch only (every page, decoded, nothing written): {fetch_s:.2f}s wall, {fetch_requests} requests "
            f"({pages} pages, {len(client.waits)} answered 429), {pulled:,} objects, "
            f"{1000 * fetch_s / max(pages, 1):.1f} ms a page"
        )
        if args.rate_limit:
            needed = pages + 1  # the pages and /users/count, without retries
            rate = args.rate_limit / RATE_WINDOW_S
            windows = (needed - 1) // args.rate_limit  # full windows waited before the last request is admitted
            print(
                f"  limit: {needed} requests / {rate:g} requests/s = {needed / rate:.2f}s; from a fresh window "
                f"at least {windows * RATE_WINDOW_S:.0f}s ({args.rate_limit} admitted per {RATE_WINDOW_S:.0f}s window)"
            )
        elif args.latency_ms:
            waited_s = (pages + 1) * args.latency_ms / 1000
            print(f"  limit: {pages + 1} requests x {args.latency_ms:g} ms = {waited_s:.2f}s")
        else:
            print(f"  limit: {pages} pages x {1000 * fetch_s / max(pages, 1):.1f} ms a page (fetch only, above)")
        for label in ("into an empty directory", "again (all unchanged)"):
            with ClerkClient(secret_key=API_KEY, api_url=api_url, page_size=args.page_size) as client:
                result = reconcile(conn, client)
            print(
                f"  reconcile {label}: {result.duration_s:.2f}s wall ({result.duration_s / fetch_s:.2f}x fetch only), "
                f"{result.requests_made} requests ({len(client.waits)} answered 429), complete={result.complete}, "
                f"counts_match={result.counts_match}, {dict(result.counts)}, deleted={result.deleted}"
            )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_clerk:
        return serve_clerk(args)
    url = recreate_database(args.database)
    print(f"database: {redact(url)}")
    if args.only in (None, "apply"):
        bench_apply(url, args)
    if args.only in (None, "reconcile"):
        bench_reconcile(url, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
