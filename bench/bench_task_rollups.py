"""Benchmark task_rollups: generate task logs (COPY), then time one day's partition and the whole backfill
through cogo.tasks.rollup.rollup_days, next to the bare aggregate SELECT run by hand (the limit).

    python bench/bench_task_rollups.py                       # 1,000,000 tasks, 10,000,000 steps, 30 days
    python bench/bench_task_rollups.py --tasks 100000 --steps 1000000
    python bench/bench_task_rollups.py --reuse               # time again on the data already loaded

Writes to its own database (`cogo_bench` on the server of COGO_DATABASE_URL, else the embedded one under
COGO_HOME), dropped and recreated unless --reuse.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import psycopg

from cogo.config import Settings
from cogo.db import admin
from cogo.db.connect import connect
from cogo.db.urls import redact, with_database
from cogo.local_services import start_database
from cogo.tasks.rollup import aggregate_days, rollup_days

STATUSES = np.array(["COMPLETED", "FAILED", "CANCELLED", "RUNNING", "PENDING"])
STATUS_WEIGHTS = [0.72, 0.12, 0.05, 0.03, 0.08]
STEP_NAMES = np.array(["Knowledge Search", "Plan", "Code Generation", "Sandbox Execution", "Review", "Report"])
MODELS = ["gpt-4o-mini", "gpt-4o", "gpt-4.1", "o3-mini"]
CHUNK = 200_000
NULL = "\\N"  # COPY text format's NULL


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--steps", type=int, default=10_000_000)
    parser.add_argument("--messages-per-task", type=float, default=3.0, help="messages of the conversations")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--orgs", type=int, default=50)
    parser.add_argument("--agents", type=int, default=12)
    parser.add_argument("--tasks-per-conversation", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3, help="timings per figure (the median is printed)")
    parser.add_argument("--database", default="cogo_bench")
    parser.add_argument("--reuse", action="store_true", help="keep the loaded data, only time")
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args(argv)


def bench_url(name: str) -> str:
    server = with_database(start_database(Settings.from_env()), "postgres")
    return with_database(server, name)


def recreate_database(name: str) -> str:
    return admin.recreate_database(start_database(Settings.from_env()), name)


def copy_rows(conn: psycopg.Connection, statement: str, lines: Iterator[str]) -> None:
    """COPY ... FROM STDIN in text format, fed in chunks of ready-made lines."""
    with conn.cursor() as cur, cur.copy(statement) as copy:  # type: ignore[arg-type]  # constant SQL
        for chunk in lines:
            copy.write(chunk)


def tid(i: int) -> str:
    return f"{i:032x}"  # Postgres reads 32 hex digits as a uuid: sequential ids, cheap to make


def generate(conn: psycopg.Connection, args: argparse.Namespace, first_day: dt.date) -> dict[str, float]:
    rng = np.random.default_rng(args.seed)
    timings: dict[str, float] = {}
    start = dt.datetime.combine(first_day, dt.time(), tzinfo=dt.UTC)
    n_tasks, n_conv = args.tasks, max(1, args.tasks // args.tasks_per_conversation)

    t0 = time.monotonic()
    orgs = [f"org_bench_{k:03d}" for k in range(args.orgs)]
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO organizations (id, name) VALUES (%s, %s)", [(o, o) for o in orgs])
        cur.execute("INSERT INTO users (id) VALUES ('user_bench')")
        cur.executemany(
            "INSERT INTO agents (id, slug, name, model_name) VALUES (%s, %s, %s, %s)",
            [(tid(10**9 + a), f"agent-{a}", f"Agent {a}", MODELS[a % len(MODELS)]) for a in range(args.agents)],
        )
    conv_org = rng.integers(0, args.orgs, n_conv)
    conv_agent = rng.integers(0, args.agents, n_conv)

    def conversations() -> Iterator[str]:
        for lo in range(0, n_conv, CHUNK):
            yield "".join(
                f"{tid(2 * 10**9 + c)}\t{orgs[conv_org[c]]}\tuser_bench\t{tid(10**9 + conv_agent[c])}\t{start}\n"
                for c in range(lo, min(lo + CHUNK, n_conv))
            )

    copy_rows(
        conn, "COPY conversations (id, organization_id, user_id, agent_id, created_at) FROM STDIN", conversations()
    )

    # Tasks: a conversation each (so organisation and agent follow it), uniform over the days.
    task_conv = rng.integers(0, n_conv, n_tasks)
    created_s = np.sort(rng.uniform(0, args.days * 86400, n_tasks))
    status = rng.choice(len(STATUSES), n_tasks, p=STATUS_WEIGHTS)
    started = (status <= 3) | (rng.random(n_tasks) < 0.5) & (status == 2)  # some cancellations start
    started &= status != 4
    queue_s = rng.exponential(20, n_tasks)
    run_s = rng.lognormal(4.5, 1.0, n_tasks)
    completed = started & (status <= 2)

    def tasks() -> Iterator[str]:
        for lo in range(0, n_tasks, CHUNK):
            out = []
            for i in range(lo, min(lo + CHUNK, n_tasks)):
                c, s = task_conv[i], status[i]
                created = start + dt.timedelta(seconds=float(created_s[i]))
                st = created + dt.timedelta(seconds=float(queue_s[i])) if started[i] else None
                done = st + dt.timedelta(seconds=float(run_s[i])) if completed[i] and st else None
                output = '{"result": "ok"}' if s == 0 else '{"error": "failed"}' if s == 1 else NULL
                out.append(
                    f"{tid(i)}\t{orgs[conv_org[c]]}\t{tid(2 * 10**9 + c)}\t{tid(10**9 + conv_agent[c])}\t"
                    f"{STATUSES[s]}\t{output}\t{created}\t{st or NULL}\t{done or NULL}\n"
                )
            yield "".join(out)

    copy_rows(
        conn,
        "COPY agent_tasks (id, organization_id, conversation_id, agent_id, status, final_output, created_at, "
        "started_at, completed_at) FROM STDIN",
        tasks(),
    )
    conn.commit()
    timings["load tasks + conversations"] = time.monotonic() - t0

    # Steps: spread over the started tasks; the last step of a FAILED task is its error.
    t0 = time.monotonic()
    started_ids = np.flatnonzero(started)
    per_task = np.full(len(started_ids), args.steps // max(1, len(started_ids)))
    per_task[: args.steps - int(per_task.sum())] += 1
    with conn.cursor() as cur:  # one set-based check of the foreign key after the load, not one per row
        cur.execute("ALTER TABLE task_steps DROP CONSTRAINT task_steps_task_id_organization_id_fkey")
        cur.execute("DROP INDEX idx_steps_task_id")

    def steps() -> Iterator[str]:
        out: list[str] = []
        for task_index, n in zip(started_ids, per_task, strict=True):
            c = task_conv[task_index]
            base = start + dt.timedelta(seconds=float(created_s[task_index] + queue_s[task_index]))
            failed = status[task_index] == 1
            prefix = f"{tid(task_index)}\t{orgs[conv_org[c]]}\t"
            for k in range(n):
                name = STEP_NAMES[(task_index + k) % len(STEP_NAMES)]
                outcome = "error" if failed and k == n - 1 else "ok"
                out.append(f"{prefix}{name}\t{outcome}\t{base + dt.timedelta(seconds=k)}\n")
            if len(out) >= CHUNK:
                yield "".join(out)
                out = []
        yield "".join(out)

    copy_rows(conn, "COPY task_steps (task_id, organization_id, step_name, status, created_at) FROM STDIN", steps())
    with conn.cursor() as cur:
        cur.execute("CREATE INDEX idx_steps_task_id ON task_steps (task_id)")
        cur.execute(
            "ALTER TABLE task_steps ADD CONSTRAINT task_steps_task_id_organization_id_fkey FOREIGN KEY "
            "(task_id, organization_id) REFERENCES agent_tasks (id, organization_id) ON DELETE CASCADE"
        )
    conn.commit()
    timings["load steps"] = time.monotonic() - t0

    # Messages: after their task's creation, in its conversation; half on the agent's model.
    t0 = time.monotonic()
    n_msg = int(n_tasks * args.messages_per_task)
    msg_task = rng.integers(0, n_tasks, n_msg)
    msg_after = rng.uniform(0, 600, n_msg)
    msg_tokens = rng.integers(20, 2000, n_msg)
    msg_role = rng.random(n_msg) < 0.5

    def messages() -> Iterator[str]:
        for lo in range(0, n_msg, CHUNK):
            out = []
            for j in range(lo, min(lo + CHUNK, n_msg)):
                i = msg_task[j]
                c = task_conv[i]
                at = start + dt.timedelta(seconds=float(created_s[i] + msg_after[j]))
                model = MODELS[j % len(MODELS)] if j % 2 else NULL
                role = "assistant" if msg_role[j] else "user"
                out.append(f"{tid(2 * 10**9 + c)}\t{orgs[conv_org[c]]}\t{role}\t{msg_tokens[j]}\t{model}\t{at}\n")
            yield "".join(out)

    copy_rows(
        conn,
        "COPY messages (conversation_id, organization_id, role, token_count, model, created_at) FROM STDIN",
        messages(),
    )
    conn.commit()
    timings["load messages"] = time.monotonic() - t0
    conn.execute("ANALYZE")
    return timings


def median_time(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.monotonic()
        result = fn()
        times.append(time.monotonic() - t0)
    return statistics.median(times), result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    first_day = dt.date(2026, 1, 1)
    last_day = first_day + dt.timedelta(days=args.days - 1)
    url = bench_url(args.database) if args.reuse else recreate_database(args.database)
    print(f"database: {redact(url)}")
    with connect(url) as conn:
        if not args.reuse:
            for what, seconds in generate(conn, args, first_day).items():
                print(f"{what:<32} {seconds:8.1f} s")
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM agent_tasks), (SELECT count(*) FROM task_steps), "
            "(SELECT count(*) FROM messages)"
        ).fetchone()
        assert counts is not None
        print(f"data: {counts[0]:,} tasks, {counts[1]:,} steps, {counts[2]:,} messages over {args.days} days")
        conn.commit()

        middle = first_day + dt.timedelta(days=args.days // 2)
        rows: dict[str, tuple[float, float]] = {}

        def bare_day() -> int:
            n = len(aggregate_days(conn, middle, middle))
            conn.commit()
            return n

        def bare_all() -> int:
            n = len(aggregate_days(conn, first_day, last_day))
            conn.commit()
            return n

        bare_one, n_one = median_time(bare_day, args.repeat)
        ours_one, result_one = median_time(lambda: rollup_days(conn, middle, middle), args.repeat)
        rows["one day's partition"] = (bare_one, ours_one)
        bare_back, n_all = median_time(bare_all, args.repeat)
        ours_back, result_all = median_time(lambda: rollup_days(conn, first_day, last_day), args.repeat)
        rows[f"backfill of {args.days} days (one run)"] = (bare_back, ours_back)
        assert result_one.rows_inserted == n_one and result_all.rows_inserted == n_all

    print(f"\nmedian of {args.repeat} runs; bare = the aggregate SELECT alone (the limit)")
    print(f"{'':<32} {'bare SQL':>10} {'rollup_days':>12} {'ratio':>7} {'rows':>8}")
    for (what, (bare, ours)), n in zip(rows.items(), (n_one, n_all), strict=True):
        print(f"{what:<32} {bare:>9.2f}s {ours:>11.2f}s {ours / bare:>6.2f}x {n:>8,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
