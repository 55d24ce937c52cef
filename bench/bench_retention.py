"""Benchmark the retention sweep: N messages of which M expired, plus F files on disk. Prints the sweep's
time and the read latency (p50/p99) of a conversation query during the sweep against the same query idle,
each next to its limit (issue 5: sweep under 2 minutes; p99 during the sweep under twice the idle p99).

    python bench/bench_retention.py                                   # 10M messages, 1M expired, 100k files
    python bench/bench_retention.py --messages 1000000 --expired-messages 100000 --files 10000

Writes to its own database (`cogo_bench_retention` on the server of COGO_DATABASE_URL, else the embedded
one under COGO_HOME), dropped and recreated each run, and to a workspace folder under --workdir.
Loading uses COPY with triggers and foreign-key checks off (session_replication_role = replica, so it
needs a superuser, as the embedded server's is); the sweep itself runs as in production.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import shutil
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cogo.config import Settings
from cogo.db import admin
from cogo.db.connect import connect
from cogo.db.urls import redact
from cogo.local_services import start_database
from cogo.retention import SweepOptions, sweep

NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)
DB_NAME = "cogo_bench_retention"
SWEEP_LIMIT_S = 120.0
P99_RATIO_LIMIT = 2.0
READ_QUERY = (
    "SELECT id, role, content, created_at FROM messages WHERE conversation_id = %s AND organization_id = %s "
    "ORDER BY created_at DESC, id DESC LIMIT 50"
)


def fresh_database(server_url: str) -> str:
    return admin.recreate_database(server_url, DB_NAME)


def ts(value: dt.datetime) -> str:
    return value.isoformat()


def load(url: str, root: Path, args: argparse.Namespace) -> list[tuple[uuid.UUID, str]]:
    """Orgs, users, conversations, messages and files (rows by COPY, files on disk); returns the live
    conversations for the readers."""
    rng = random.Random(7)
    per_conv = args.messages_per_conversation
    n_conv = args.messages // per_conv
    n_expired = args.expired_messages // per_conv
    orgs = [f"org_{i:04d}" for i in range(args.orgs)]
    users = [f"user_{i:06d}" for i in range(args.users)]
    conversations: list[tuple[uuid.UUID, str, str, dt.datetime]] = []
    for i in range(n_conv):
        expired = i < n_expired
        # Expired: last message 31-90 days ago; live: within the last 29 days.
        age = dt.timedelta(days=rng.uniform(31, 90)) if expired else dt.timedelta(days=rng.uniform(0, 29))
        conversations.append(
            (uuid.UUID(int=rng.getrandbits(128)), orgs[i % len(orgs)], users[i % len(users)], NOW - age)
        )
    rng.shuffle(conversations)  # expired ones spread over the tables, as in life
    started = time.monotonic()
    with connect(url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        with conn.cursor().copy("COPY organizations (id, name) FROM STDIN") as copy:
            for org in orgs:
                copy.write_row((org, org))
        with conn.cursor().copy("COPY users (id) FROM STDIN") as copy:
            for user in users:
                copy.write_row((user,))
        with conn.cursor().copy(
            "COPY conversations (id, organization_id, user_id, created_at, updated_at) FROM STDIN"
        ) as copy:
            for cid, org, user, last in conversations:
                copy.write(f"{cid}\t{org}\t{user}\t{ts(last - dt.timedelta(hours=per_conv))}\t{ts(last)}\n")
        message_id = 0
        with conn.cursor().copy(
            "COPY messages (id, conversation_id, organization_id, user_id, role, content, created_at) FROM STDIN"
        ) as copy:
            buffer: list[str] = []
            for cid, org, user, last in conversations:
                for k in range(per_conv):
                    message_id += 1
                    role = "user" if k % 2 == 0 else "assistant"
                    at = ts(last - dt.timedelta(hours=per_conv - 1 - k))
                    buffer.append(f"{message_id}\t{cid}\t{org}\t{user}\t{role}\tmessage {k} of a conversation\t{at}\n")
                if len(buffer) >= 100_000:
                    copy.write("".join(buffer))
                    buffer.clear()
            copy.write("".join(buffer))
        conn.execute("SELECT setval(pg_get_serial_sequence('messages', 'id'), %s)", (message_id,))
        took = time.monotonic() - started
        print(f"  loaded {len(conversations):,} conversations, {message_id:,} messages in {took:.1f}s")

        started = time.monotonic()
        with conn.cursor().copy(
            "COPY files (id, organization_id, user_id, conversation_id, kind, storage_path, filename, size_bytes, "
            "created_at, updated_at) FROM STDIN"
        ) as copy:
            for i in range(args.files):
                cid, org, user, last = conversations[i % len(conversations)]
                path = f"{org}/{user}/{cid}/files/uploads/file_{i}.txt"
                target = root / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(b"x" * 64)
                copy.write(
                    f"{uuid.uuid4()}\t{org}\t{user}\t{cid}\tupload\t{path}\tfile_{i}.txt\t64\t{ts(last)}\t{ts(last)}\n"
                )
        print(f"  wrote {args.files:,} files (rows and disk) in {time.monotonic() - started:.1f}s")
        conn.execute("SET session_replication_role = origin")
        started = time.monotonic()
        conn.execute("VACUUM ANALYZE")
        print(f"  vacuum analyze in {time.monotonic() - started:.1f}s")
    live = [(cid, org) for cid, org, _user, last in conversations if last >= NOW - dt.timedelta(days=30)]
    return live


class Reader(threading.Thread):
    """Reads the latest page of a random live conversation, as the read service does, and times it."""

    def __init__(self, url: str, live: list[tuple[uuid.UUID, str]]) -> None:
        super().__init__(daemon=True)
        self.url, self.live = url, live
        self.samples: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        rng = random.Random(11)
        with connect(self.url, autocommit=True) as conn:
            while not self.stop.is_set():
                cid, org = rng.choice(self.live)
                started = time.perf_counter()
                conn.execute(READ_QUERY, (cid, org), prepare=True).fetchall()
                self.samples.append((time.perf_counter() - started) * 1000)


def percentile(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=1000)[int(q * 1000) - 1] if len(samples) > 1 else float("nan")


def read_phase(url: str, live: list[tuple[uuid.UUID, str]], seconds: float) -> list[float]:
    reader = Reader(url, live)
    reader.start()
    time.sleep(seconds)
    reader.stop.set()
    reader.join()
    return reader.samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=10_000_000)
    parser.add_argument("--expired-messages", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--messages-per-conversation", type=int, default=100)
    parser.add_argument("--orgs", type=int, default=50)
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--conversation-batch-size", type=int, default=100)
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument("--workdir", type=Path, default=Path(".cogo-bench/retention"))
    args = parser.parse_args()

    settings = Settings.from_env()
    url = fresh_database(start_database(settings))
    root = args.workdir.absolute() / "workspaces"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    print(f"database {redact(url)}, workspace {root}")
    live = load(url, root, args)

    idle = read_phase(url, live, args.idle_seconds)
    reader = Reader(url, live)
    reader.start()
    with connect(url, autocommit=True) as conn:
        started = time.monotonic()
        report = sweep(
            conn,
            NOW,
            SweepOptions(
                workspaces_dir=root,
                batch_size=args.batch_size,
                conversation_batch_size=args.conversation_batch_size,
            ),
        )
        sweep_s = time.monotonic() - started
    reader.stop.set()
    reader.join()
    during = reader.samples

    counts = report.by_table()
    print(f"sweep deleted: {counts}")
    on_disk = sum(1 for _ in root.rglob("*.txt"))
    print(f"files left on disk: {on_disk:,} (expected {args.files - counts.get('workspace_files', 0):,})")
    print(f"sweep time: {sweep_s:.1f}s   (limit {SWEEP_LIMIT_S:.0f}s)   {'OK' if sweep_s < SWEEP_LIMIT_S else 'OVER'}")
    idle_p50, idle_p99 = percentile(idle, 0.5), percentile(idle, 0.99)
    during_p50, during_p99 = percentile(during, 0.5), percentile(during, 0.99)
    ratio = during_p99 / idle_p99
    print(f"read idle:   p50 {idle_p50:.2f} ms  p99 {idle_p99:.2f} ms  ({len(idle):,} queries)")
    print(f"read sweep:  p50 {during_p50:.2f} ms  p99 {during_p99:.2f} ms  ({len(during):,} queries)")
    verdict = "OK" if ratio < P99_RATIO_LIMIT else "OVER"
    print(f"p99 during/idle: {ratio:.2f}x   (limit {P99_RATIO_LIMIT:.1f}x)   {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
