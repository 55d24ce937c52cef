"""From a file dropped into a conversation to its chunks being searchable, under the real daemon:
python bench/bench_upload_latency.py [--files 20] [--gap 3]

Starts what production runs (a code server, `dagster-daemon`, the webserver; the project's dagster.yaml with
Postgres storage and the queued run coordinator; the default local embedder) on a temporary embedded Postgres,
waits for the first full scan, then drops one small Markdown file at a time (every --gap seconds, so several may
be in flight) and times each until its vectors are in `embeddings`. Prints p50/p90/max next to the raw limits the
wait is made of: the sensor's interval and the daemon's loop, the queue's dequeue interval, a run's own time (from
Dagster's run records: launch and process start, then the steps) and the steps' work. The peer figure is
CocoIndex 1.0 applying a 10-file change in about 10 s (measured on this machine with the same model; see
bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg

from cogo.db import embedded
from cogo.db.migrate import migrate
from tests.conftest import create_database
from tests.dagster_topology import dagster_topology
from tests.knowledge_helpers import CONV, files_dir, seed_tenants

TARGET_P50_S, TARGET_P90_S = 15.0, 30.0
TEXT = (
    "# Supplier onboarding {n}\n\nEvery new supplier needs two approvals; orders above five million yen also need "
    "the director's seal. Reference {token}.\n"
)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--gap", type=float, default=3.0, help="seconds between two drops")
    parser.add_argument("--limit", type=float, default=180.0, help="give up on a file after this many seconds")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="cogo-bench-latency-") as scratch:
        root = Path(scratch)
        root.chmod(0o755)
        info = embedded.start(root / "pg")
        try:
            server = embedded.server_url(info, "postgres")
            app_url = create_database(server, "cogo")
            dagster_url = create_database(server, "dagster")
            migrate(app_url)
            with psycopg.connect(app_url, autocommit=True) as conn:
                seed_tenants(conn)
            workspaces = root / "workspaces"
            uploads = files_dir(workspaces)
            env = {
                "COGO_HOME": str(root / "home"),
                "COGO_DATABASE_URL": app_url,
                "COGO_WORKSPACES_DIR": str(workspaces),
            }
            with dagster_topology(root / "dagster", env, dagster_url) as topology:
                conn = psycopg.connect(app_url, autocommit=True)
                topology.wait_for(lambda: _ingest_runs_done(topology) >= 1, "the first full scan", 300)
                print(f"platform up; conversation {CONV}; dropping {args.files} files, one every {args.gap:g} s")
                latencies = _drop_and_time(conn, uploads, args, topology)
                runs = _run_figures(topology)
                conn.close()
        finally:
            embedded.stop(root / "pg")

    p50, p90 = percentile(latencies, 0.5), percentile(latencies, 0.9)
    print()
    print(
        f"file dropped -> searchable ({len(latencies)} files): p50 {p50:.1f} s, p90 {p90:.1f} s, "
        f"max {max(latencies):.1f} s   (target p50 <= {TARGET_P50_S:g} s, p90 <= {TARGET_P90_S:g} s)"
    )
    print("raw limits:")
    print(
        "  sensor            workspace_files_sensor every 5 s (minimum_interval_seconds); the daemon's sensor "
        "loop wakes at most every 5 s"
    )
    print("  queue             dequeue_interval_seconds 1 (dagster.yaml)")
    print(
        f"  ingest runs       {runs['count']} runs; queued -> started (launch, process start, imports) "
        f"median {runs['launch']:.1f} s; started -> finished median {runs['run']:.1f} s"
    )
    print(f"  other runs        {runs['other']} (automation sensor or others started during the drops)")
    print("  peer              CocoIndex 1.0: a 10-file change applied in about 10 s (bench/RESULTS.md)")
    return 0 if p50 <= TARGET_P50_S and p90 <= TARGET_P90_S else 1


def _drop_and_time(conn: psycopg.Connection, uploads: Path, args: argparse.Namespace, topology) -> list[float]:
    dropped: dict[str, float] = {}
    seen: dict[str, float] = {}
    lock = threading.Lock()

    def dropper() -> None:
        for n in range(args.files):
            name = f"note-{n:03}-{uuid.uuid4().hex[:6]}.md"
            (uploads / name).write_text(TEXT.format(n=n, token=uuid.uuid4().hex))
            with lock:
                dropped[name] = time.monotonic()
            time.sleep(args.gap)

    thread = threading.Thread(target=dropper, daemon=True)
    thread.start()
    pending_deadline = time.monotonic() + args.files * args.gap + args.limit
    while time.monotonic() < pending_deadline:
        with lock:
            waiting = {name: at for name, at in dropped.items() if name not in seen}
        if waiting:
            rows = conn.execute(
                "SELECT DISTINCT f.filename FROM embeddings e JOIN files f ON f.id = e.file_id "
                "WHERE f.filename = ANY(%s)",
                (list(waiting),),
            ).fetchall()
            now = time.monotonic()
            for (name,) in rows:
                seen[name] = now - waiting[name]
                print(f"  {name}: {seen[name]:.1f} s", flush=True)
        if len(seen) == args.files:
            break
        time.sleep(0.1)
    latencies = list(seen.values())
    if len(latencies) < args.files:
        print(f"  {args.files - len(latencies)} files not searchable within the limit\n{topology.logs()}")
    return latencies


def _ingest_runs_done(topology) -> int:
    import dagster as dg

    records = topology.instance().get_run_records(dg.RunsFilter(job_name="workspace_ingest_job"))
    return sum(1 for r in records if r.dagster_run.status == dg.DagsterRunStatus.SUCCESS)


def _run_figures(topology) -> dict[str, float]:
    records = topology.instance().get_run_records()
    ingest = [r for r in records if r.dagster_run.job_name == "workspace_ingest_job" and r.start_time and r.end_time]
    launch = [r.start_time - r.create_timestamp.timestamp() for r in ingest]
    run = [r.end_time - r.start_time for r in ingest]
    other = sum(1 for r in records if r.dagster_run.job_name != "workspace_ingest_job")
    return {
        "count": len(ingest),
        "launch": statistics.median(launch) if launch else 0.0,
        "run": statistics.median(run) if run else 0.0,
        "other": other,
    }


if __name__ == "__main__":
    sys.exit(main())
