"""Load test of the read service: `cogo serve`'s app under uvicorn in its own processes, driven from a second
process on loopback by wrk (or, without wrk, an async httpx client), 50 concurrent connections.

    python bench/bench_service.py [--conversations 20000] [--duration 10] [--workers 2] [--connections 50]
                                  [--scenarios listing,messages]

Runs on its own embedded Postgres under COGO_HOME (default here: /tmp/cogo-bench-home, set by --home) and
loads (once) two organisations, --conversations conversations each (half shared), 5 messages each plus one conversation
of 1,000 messages. Scenarios: conversation listing (first page of 20), message pages (50, keyset from the
middle of the long conversation), and with --search-url URL, `POST /v1/search` (varied queries, k=10) against a
database of indexed chunks, e.g. the 1,000,000 that bench/bench_knowledge.py leaves behind, from a second server.
The service is started as `cogo serve --workers N` (granian's workers, JSON access log on).
Prints requests per second and p50/p99 latency next to the targets.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import psutil
import psycopg

from cogo.config import Settings
from cogo.db.migrate import migrate
from cogo.service import devtoken

ORGS = ("org_bench_a", "org_bench_b")
TARGETS = {"listing": (1500, 30.0), "messages": (None, None), "search": (None, 100.0)}


def prepare_database(conversations: int) -> str:
    from cogo import local_services

    url = local_services.up(Settings.from_env()).database_url
    migrate(url)
    with psycopg.connect(url) as conn:
        have = conn.execute("SELECT count(*) FROM conversations").fetchone()[0]
        if have == conversations * len(ORGS):
            return url
        print(f"loading {conversations:,} conversations per organisation ...", file=sys.stderr)
        conn.execute("TRUNCATE organizations, users, organization_memberships, conversations CASCADE")
        for org in ORGS:
            conn.execute("INSERT INTO organizations (id, name) VALUES (%s, %s)", (org, org))
        users = [f"user_bench_{i}" for i in range(100)]
        with conn.cursor().copy("COPY users (id) FROM STDIN") as copy:
            for u in users:
                copy.write_row((u,))
        t0 = time.time() - 86400 * 30
        with conn.cursor().copy(
            "COPY conversations (id, organization_id, user_id, title, visibility, created_at, updated_at) FROM STDIN"
        ) as copy:
            for org_n, org in enumerate(ORGS):
                for i in range(conversations):
                    at = time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime(t0 + i * 60 + org_n))
                    user = users[org_n * 50 + i % 50]
                    vis = "shared" if i % 2 else "private"
                    copy.write_row((uuid.uuid4(), org, user, f"conversation {i}", vis, at, at))
        conn.execute(
            "INSERT INTO messages (conversation_id, organization_id, user_id, role, content, created_at) "
            "SELECT c.id, c.organization_id, c.user_id, 'user', 'message ' || g, c.created_at + g * interval '1s' "
            "FROM conversations c, generate_series(1, 5) g"
        )
        long_conv = conn.execute(
            "SELECT id FROM conversations WHERE organization_id = %s AND user_id = %s ORDER BY updated_at DESC LIMIT 1",
            (ORGS[0], users[0]),
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO messages (conversation_id, organization_id, user_id, role, content, created_at) "
            "SELECT %s, %s, %s, 'assistant', 'long answer ' || g, now() - interval '1 day' + g * interval '1s' "
            "FROM generate_series(1, 1000) g",
            (long_conv, ORGS[0], users[0]),
        )
        conn.execute("ANALYZE")
    return url


def start_server(url: str, env: dict[str, str], port: int, workers: int, log: Path) -> subprocess.Popen:
    # `cogo serve` as shipped: granian's workers, cogo's JSON access log on (written to `log`).
    cmd = [sys.executable, "-m", "cogo.cli", "serve", "--port", str(port), "--workers", str(workers)]
    full_env = {**os.environ, **env, "COGO_DATABASE_URL": url}  # the embedded server's own URL
    process = subprocess.Popen(cmd, env=full_env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit(f"server did not start; see {log}")


def run_wrk(url: str, token: str, connections: int, duration: int, bodies: list[str] | None) -> dict[str, float]:
    script = None
    cmd = [
        "wrk",
        f"-t{min(2, connections)}",
        f"-c{connections}",
        f"-d{duration}s",
        "--latency",
        "-H",
        f"Authorization: Bearer {token}",
    ]
    if bodies:
        # POSTs cycling through `bodies` (each wrk thread from its own starting point).
        script = Path(tempfile.mkstemp(suffix=".lua")[1])
        table = ", ".join(json.dumps(b) for b in bodies)
        script.write_text(
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f"local bodies = {{{table}}}\nlocal i = math.random(#bodies)\n"
            "request = function()\n  i = i % #bodies + 1\n  return wrk.format(nil, nil, nil, bodies[i])\nend\n"
        )
        cmd += ["-s", str(script)]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    if script:
        script.unlink()

    def ms(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": ms("50%"),
        "p99_ms": ms("99%"),
        "errors": float(non2xx.group(1)) if non2xx else 0.0,
    }


async def run_httpx(
    url: str, token: str, connections: int, duration: int, bodies: list[str] | None
) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(limits=limits, headers=headers) as client:
        end = time.perf_counter() + duration

        async def worker(i: int) -> None:
            nonlocal errors
            while time.perf_counter() < end:
                t = time.perf_counter()
                i += 1
                r = await (client.post(url, content=bodies[i % len(bodies)]) if bodies else client.get(url))
                latencies.append((time.perf_counter() - t) * 1000)
                errors += r.status_code >= 300

        started = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(connections)))
        elapsed = time.perf_counter() - started
    q = statistics.quantiles(latencies, n=100)
    return {"rps": len(latencies) / elapsed, "p50_ms": q[49], "p99_ms": q[98], "errors": float(errors)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=20_000)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument(
        "--warmup",
        type=int,
        default=3,
        help="seconds of unmeasured load on a freshly started server before its first scenario (the workers' "
        "connections even out, first-use paths run)",
    )
    parser.add_argument("--pool-size", type=int, default=10)
    parser.add_argument("--port", type=int, default=8931)
    parser.add_argument("--client", choices=("auto", "wrk", "httpx"), default="auto")
    parser.add_argument(
        "--scenarios", default="listing,messages", help="comma-separated: listing, messages (search: --search-url)"
    )
    parser.add_argument(
        "--search-url",
        help="a database with indexed chunks (bench_knowledge.py leaves one) to load POST /v1/search against",
    )
    parser.add_argument("--search-org", help="the organisation whose chunks are searched (default: the largest)")
    parser.add_argument(
        "--search-connections", default="50,8", help="comma-separated concurrency levels for the search scenario"
    )
    parser.add_argument(
        "--search-rates",
        default="",
        help="comma-separated offered loads (searches/s) for an open-loop run over --connections connections: "
        "requests leave on schedule whether or not earlier ones have answered; latency counts from the schedule",
    )
    parser.add_argument("--home", default="/tmp/cogo-bench-home", help="COGO_HOME for the benchmark's own Postgres")
    args = parser.parse_args()
    os.environ["COGO_HOME"] = args.home
    os.environ.pop("COGO_DATABASE_URL", None)

    url = prepare_database(args.conversations)
    keydir = Path(tempfile.mkdtemp(prefix="cogo-bench-keys-"))
    key = devtoken.ensure_key(keydir)
    env = dict(line.removeprefix("export ").split("=", 1) for line in devtoken.env_lines(keydir))
    env["COGO_SERVICE_POOL_SIZE"] = str(args.pool_size)
    token = devtoken.make_token(key, "user_bench_0", ORGS[0], ttl_s=3600)
    with psycopg.connect(url) as conn:
        long_conv = conn.execute(
            "SELECT conversation_id FROM messages GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()[0]
    base = f"http://127.0.0.1:{args.port}"
    middle = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"})
    client = args.client if args.client != "auto" else ("wrk" if shutil.which("wrk") else "httpx")
    print(
        f"client={client} connections={args.connections} duration={args.duration}s warmup={args.warmup}s "
        f"workers={args.workers} "
        f"pool={args.pool_size} "
        f"conversations={args.conversations * len(ORGS):,} cores={os.cpu_count()}"
    )
    print(f"machine speed probe: {speed_probe_ms():.0f} ms of CPU for a fixed Python workload (compare runs by it)")
    server = start_server(url, env, args.port, args.workers, keydir / "server.log")
    try:
        cursor = None
        for _ in range(5):  # a cursor from the middle of the long conversation
            params = {"limit": 100} | ({"cursor": cursor} if cursor else {})
            response = middle.get(f"/v1/conversations/{long_conv}/messages", params=params)
            assert response.status_code == 200, response.text
            cursor = response.json()["next_cursor"]
        urls = {
            "listing": f"{base}/v1/conversations?limit=20",
            "messages": f"{base}/v1/conversations/{long_conv}/messages?limit=50&cursor={cursor}",
        }
        scenarios = args.scenarios.split(",")
        if args.warmup and client == "wrk":
            run_wrk(urls[scenarios[0]], token, args.connections, args.warmup, None)
        for scenario in scenarios:
            load(client, scenario, urls[scenario], token, args.connections, args.duration, server=server, database=url)
    finally:
        server.terminate()
        server.wait(timeout=30)
    if args.search_url:
        bench_search(args, client, key, env, keydir)


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def postgres_processes(url: str) -> list[psutil.Process]:
    """The server behind `url` when it is a local one (its postmaster.pid in the socket directory, as the embedded
    server has it): its postmaster and every backend. Otherwise every process named postgres on the machine
    (other servers included)."""
    host = parse_qs(urlsplit(url).query).get("host", [""])[0]
    pid_file = Path(host) / "postmaster.pid" if host.startswith("/") else None
    if pid_file is not None and pid_file.exists():
        postmaster = psutil.Process(int(pid_file.read_text().split()[0]))
        return [postmaster, *postmaster.children(recursive=True)]
    return [p for p in psutil.process_iter(["name"]) if p.info["name"] == "postgres"]


def load(
    client: str,
    name: str,
    url: str,
    token: str,
    connections: int,
    duration: int,
    bodies: list[str] | None = None,
    *,
    server: subprocess.Popen,
    database: str,
) -> None:
    """One scenario, with the CPU time the service's workers and Postgres spent per request: the raw limit on
    these cores is cores / (both together), whatever the client does. The client's own CPU (wrk, when it runs on
    the same cores) is shown beside it."""
    workers = psutil.Process(server.pid).children(recursive=True)
    before = cpu_seconds(workers), cpu_by_process(postgres_processes(database))
    client_before = client_cpu_seconds()
    if client == "wrk":
        result = run_wrk(url, token, connections, duration, bodies)
    else:
        result = asyncio.run(run_httpx(url, token, connections, duration, bodies))
    requests = result["rps"] * duration
    client_ms = (client_cpu_seconds() - client_before) / requests * 1000
    py_ms = (cpu_seconds(workers) - before[0]) / requests * 1000
    after = cpu_by_process(postgres_processes(database))  # backends started meanwhile count from zero
    pg_ms = sum(cpu - before[1].get(pid, 0.0) for pid, cpu in after.items()) / requests * 1000
    cores = os.cpu_count() or 1
    min_rps, max_p99 = TARGETS[name]
    target = " ".join(
        t for t in (f">= {min_rps} rps" if min_rps else "", f"p99 < {max_p99} ms" if max_p99 else "") if t
    )
    print(
        f"{name:9s} c={connections:<3d} {result['rps']:7.0f} rps   p50 {result['p50_ms']:6.2f} ms   "
        f"p99 {result['p99_ms']:6.2f} ms   non-2xx {result['errors']:.0f}   target: {target or 'none'}\n"
        f"{'':15s} cpu per request: service {py_ms:.3f} ms + postgres {pg_ms:.3f} ms -> at most "
        f"{cores * 1000 / (py_ms + pg_ms):,.0f} rps on {cores} cores "
        f"(Little: {connections} connections at that rate wait >= {connections * (py_ms + pg_ms) / cores:.1f} ms)"
        + (
            f"\n{'':15s} client (wrk, same cores) {client_ms:.3f} ms -> all three at most "
            f"{cores * 1000 / (py_ms + pg_ms + client_ms):,.0f} rps"
            if client == "wrk"
            else ""
        )
    )


def speed_probe_ms() -> float:
    """CPU time of a fixed pure-Python workload, best of 5: this machine's speed drifted by up to 2x within an hour
    (bench/RESULTS.md, issue 6, session 4), so figures from different runs compare only next to it."""
    best = float("inf")
    for _ in range(5):
        started = time.process_time()
        sum(i * i for i in range(1_000_000))
        best = min(best, time.process_time() - started)
    return best * 1000


def client_cpu_seconds() -> float:
    """CPU of this process's finished children: wrk, the only child waited for during a scenario."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_by_process(processes: list[psutil.Process]) -> dict[int, float]:
    found = {}
    for process in processes:
        try:
            times = process.cpu_times()
            found[process.pid] = times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return found


# Varied queries, so that neither Postgres' buffers nor anything else sees one query over and over.
SEARCH_QUERIES = [
    "refresh token rotation", "how is the session cache invalidated", "retry with exponential backoff",
    "database connection pool size", "parse the configuration file", "upload a file to the workspace",
    "rate limit exceeded error", "schedule the nightly job", "embedding model dimensions", "tenant isolation policy",
    "delete expired conversations", "graph of function calls", "commit message task id", "markdown heading anchors",
    "csv column types", "json schema validation", "pdf text extraction", "webhook signature verification",
    "organization membership roles", "vector index recall", "full text search ranking", "incremental cursor state",
    "progress bar in the terminal", "memory usage of the parser", "authentication middleware",
    "cost estimate per token", "chunk overlap size", "language detection", "error message for corrupt input",
    "soft delete of users", "merge commit history", "backfill partitions", "cache warm up", "http status codes",
]  # fmt: skip


def bench_search(args: argparse.Namespace, client: str, key: Any, env: dict[str, str], keydir: Path) -> None:
    """POST /v1/search against a database of indexed chunks, from its own server (the service reads one database)."""
    with psycopg.connect(args.search_url) as conn:
        chunks, org = conn.execute(
            "SELECT count(*), (SELECT organization_id FROM embeddings GROUP BY 1 ORDER BY count(*) DESC LIMIT 1) "
            "FROM embeddings"
        ).fetchone()
        org = args.search_org or org
        in_org = conn.execute("SELECT count(*) FROM embeddings WHERE organization_id = %s", (org,)).fetchone()[0]
        user = conn.execute(
            "SELECT user_id FROM organization_memberships WHERE organization_id = %s LIMIT 1", (org,)
        ).fetchone()
    token = devtoken.make_token(key, user[0] if user else "user_bench_search", org, ttl_s=3600)
    print(f"search: {chunks:,} chunks in the database, {in_org:,} in organisation {org}; {len(SEARCH_QUERIES)} queries")
    port = args.port + 1
    server = start_server(args.search_url, env, port, args.workers, keydir / "search-server.log")
    try:
        bodies = [json.dumps({"query": q, "k": 10}) for q in SEARCH_QUERIES]
        probe = httpx.post(
            f"http://127.0.0.1:{port}/v1/search",
            content=bodies[0],
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            timeout=60,
        )
        assert probe.status_code == 200 and probe.json()["hits"], probe.text
        if args.warmup and client == "wrk":
            run_wrk(f"http://127.0.0.1:{port}/v1/search", token, args.connections, args.warmup, bodies)
        for connections in (int(c) for c in args.search_connections.split(",")):
            load(
                client,
                "search",
                f"http://127.0.0.1:{port}/v1/search",
                token,
                connections,
                args.duration,
                bodies,
                server=server,
                database=args.search_url,
            )
        for rate in (float(r) for r in args.search_rates.split(",") if r):
            open_loop(f"http://127.0.0.1:{port}/v1/search", token, args.connections, args.duration, rate, bodies)
    finally:
        server.terminate()
        server.wait(timeout=30)
    search_raw_limits(args.search_url, org)


def open_loop(url: str, token: str, connections: int, duration: int, rate: float, bodies: list[str]) -> None:
    """`rate` searches per second, evenly spaced, over at most `connections` connections (a request with none free
    waits for one). Closed-loop clients send the next request only when the last has answered, so their latency is
    the connection count over the throughput (Little's law); here it is what a user arriving at that rate sees."""
    cpu = time.process_time()
    result = asyncio.run(_open_loop(url, token, connections, duration, rate, bodies))
    client_ms = (time.process_time() - cpu) / max(1, result["done"]) * 1000
    print(
        f"search    open loop {rate:5.0f}/s over {connections} connections: answered {result['rps']:5.1f}/s   "
        f"p50 {result['p50_ms']:7.2f} ms   p99 {result['p99_ms']:7.2f} ms   non-2xx {result['errors']:.0f}   "
        f"target: p99 < {TARGETS['search'][1]} ms   (client {client_ms:.2f} ms cpu/request, same cores)"
    )


async def _open_loop(
    url: str, token: str, connections: int, duration: int, rate: float, bodies: list[str]
) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(limits=limits, headers=headers, timeout=60) as client:

        async def one(scheduled: float, body: str) -> None:
            nonlocal errors
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
            response = await client.post(url, content=body)
            latencies.append((time.perf_counter() - scheduled) * 1000)
            errors += response.status_code >= 300

        started = time.perf_counter() + 0.1
        count = int(duration * rate)
        await asyncio.gather(*(one(started + i / rate, bodies[i % len(bodies)]) for i in range(count)))
        elapsed = time.perf_counter() - started
    q = statistics.quantiles(latencies, n=100)
    return {"rps": len(latencies) / elapsed, "p50_ms": q[49], "p99_ms": q[98], "errors": float(errors),
            "done": float(len(latencies))}  # fmt: skip


def search_raw_limits(database: str, org: str) -> None:
    """What one search cannot do without, measured alone on the same data: the query's embedding (one thread,
    as a worker of `cogo serve --workers 2` embeds on 2 cores) and Postgres's execution of its vector and
    full-text legs (EXPLAIN ANALYZE, as search_chunks plans them for the service's k=10 x privacy headroom)."""
    os.environ["COGO_EMBED_THREADS"] = "1"
    from cogo.embed import get_embedder
    from cogo.knowledge.search import (
        PRIVACY_HEADROOM,
        candidate_count,
        legs_plan,
        run_plan,
        set_ef_search,
        text_leg_sql,
        vector_leg_sql,
    )

    candidates = candidate_count(10 * PRIVACY_HEADROOM)
    embedder = get_embedder(Settings.from_env().embedder)
    embedder.embed(["warm up"])
    embed_ms, vector_ms, text_ms = [], [], []
    with psycopg.connect(database) as conn:
        conn.execute(
            "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), "
            "set_config('hnsw.scan_mem_multiplier', '8', true)"
        )
        for query in SEARCH_QUERIES * 2:
            t = time.process_time()
            vector = embedder.embed([query])[0]
            embed_ms.append((time.process_time() - t) * 1000)
            for leg in run_plan(conn, legs_plan(org, None, None, embedder.model)):
                planned = vector_leg_sql(conn, leg, org, candidates)
                if planned is not None:
                    set_ef_search(conn, planned.ef_search)
                    vector_ms.append(_execution_ms(conn, planned.query, [vector.tolist(), *planned.params]))
                text_sql, text_params = text_leg_sql(leg, org, query, candidates)
                text_ms.append(_execution_ms(conn, text_sql, text_params))
        conn.rollback()
    cores = os.cpu_count() or 1
    per_search = statistics.median(embed_ms) + statistics.median(vector_ms) + statistics.median(text_ms)
    ceiling = cores * 1000 / per_search
    print(
        f"search raw limit (each alone, medians): query embedding {statistics.median(embed_ms):.2f} ms cpu (1 thread), "
        f"vector leg {statistics.median(vector_ms):.2f} ms, full-text leg {statistics.median(text_ms):.2f} ms "
        f"(Postgres execution) -> at most {ceiling:,.0f} searches/s on {cores} cores before any HTTP, Python or "
        f"fusion; 50 closed-loop connections then wait >= {50 / ceiling * 1000:,.0f} ms each"
    )


def _execution_ms(conn: psycopg.Connection, query: Any, params: list[Any]) -> float:
    from psycopg import sql

    plan = conn.execute(sql.SQL("EXPLAIN (ANALYZE, FORMAT JSON) ") + query, params).fetchone()[0]
    return float(plan[0]["Execution Time"])


if __name__ == "__main__":
    main()
