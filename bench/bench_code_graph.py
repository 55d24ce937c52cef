"""Benchmark the code graph on any git repository: python bench/bench_code_graph.py REPO_PATH [--commits N]

Prints, each next to its limit:
  parse-only      tree-sitter parsing alone of the head snapshot's code files (the limit)
  facts           parsing plus our extraction (symbols, imports, calls), no graph
  first snapshot  end to end: the head's files parsed, resolved and written (graph + Postgres), one commit
  history         every first-parent commit: commits/s, nodes and relationships written per second, and the
                  process's memory (RSS) every --checkpoint-every commits (does it stay bounded?)
  new commit      each of the last N commits processed on its own (what the sensor triggers): median, p90, max
Wall time decides the ratios; CPU time is printed too (with the forked parse workers' own, which the
first snapshot uses on a machine with more than one core; --parse-workers 1 measures one core alone).
Each phase runs in its own process, so its peak memory (max RSS) is its own (not the forked workers').
The graph is the embedded LadybugDB in a temporary folder (or Neo4j when COGO_GRAPH_URL is set: the
repository's nodes are replaced); Postgres is COGO_DATABASE_URL or a temporary embedded server.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

TARGET_SNAPSHOT_RATIO = 0.25  # first snapshot >= 1/4 of parse-only speed
TARGET_NEW_COMMIT_S = 1.0


def children_cpu() -> float:
    """CPU seconds of this process's finished children (forked parse workers, git)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """This process's resident memory now (MiB, as peak_mb)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def record_checkpoints(every: int) -> list[dict]:
    """A list filled, while the history pass runs, with the memory after every `every` commits. Bench-only
    instrument: the builder's per-commit method is wrapped (the builder itself reports only at the end)."""
    from cogo.code.builder import RepoGraphBuilder

    marks: list[dict] = []
    per_commit = RepoGraphBuilder._commit
    started = time.perf_counter()

    def counted(self: RepoGraphBuilder, commit) -> None:
        per_commit(self, commit)
        done = self.stats.commits + 1  # the builder counts the commit after this returns
        if every and done % every == 0:
            marks.append(
                {
                    "commits": done,
                    "seconds": round(time.perf_counter() - started, 2),
                    "rss_mb": round(rss_mb(), 1),
                    "peak_mb": round(peak_mb(), 1),
                    "files_parsed": self.stats.files_parsed,
                    "written": self.stats.nodes_written + self.stats.relationships_written,
                }
            )

    RepoGraphBuilder._commit = counted  # type: ignore[method-assign]
    return marks


def snapshot_blobs(repo: str) -> list[tuple[str, bytes]]:
    from cogo.code.git import GitRepo
    from cogo.code.languages import language_of
    from cogo.code.parse import DEFAULT_SIZE_LIMIT

    with GitRepo(repo) as git:
        head = git.resolve(git.default_branch())
        return [
            (e.path, git.read_blob(e.blob))
            for e in git.tree(head)
            if language_of(e.path) and e.size <= DEFAULT_SIZE_LIMIT
        ]


def phase_parse(repo: str) -> dict:
    from cogo.code.languages import language_of, parser

    files = snapshot_blobs(repo)
    started, cpu = time.perf_counter(), time.process_time()
    for path, data in files:
        parser(language_of(path) or "").parse(data)
    seconds = time.perf_counter() - started
    return {
        "files": len(files),
        "bytes": sum(len(d) for _, d in files),
        "seconds": seconds,
        "cpu_seconds": time.process_time() - cpu,
        "peak_mb": peak_mb(),
    }


def phase_facts(repo: str) -> dict:
    from cogo.code.parse import parse_file
    from cogo.code.resolve import Index, link_file

    files = snapshot_blobs(repo)
    started = time.perf_counter()
    facts = [f for path, data in files if (f := parse_file(path, data)) is not None]
    parsed = time.perf_counter()
    index = Index(facts)
    calls = sum(len(link_file(index, f).calls) for f in facts)
    done = time.perf_counter()
    return {
        "files": len(files),
        "bytes": sum(len(d) for _, d in files),
        "seconds": parsed - started,
        "resolve_seconds": done - parsed,
        "calls": calls,
        "peak_mb": peak_mb(),
    }


def _open(database_url: str, home: Path):
    import psycopg

    from cogo.config import Settings
    from cogo.graph import open_graph

    settings = dataclasses.replace(Settings.from_env(), home=home)
    graph = open_graph(settings)
    graph.ensure_schema()
    return graph, psycopg.connect(database_url, autocommit=True)


def _reset(graph, conn, repo: str) -> None:
    for label in ("CodeFile", "Function", "Class", "Commit"):
        graph.write(f"MATCH (n:{label}) WHERE n.repo = $repo DETACH DELETE n", {"repo": repo})
    conn.execute("DELETE FROM code_file_facts WHERE repo = %s", (repo,))
    conn.execute("DELETE FROM code_repo_cursors WHERE repo = %s", (repo,))


def phase_snapshot(repo: str, database_url: str, home: str, workers: int | None) -> dict:
    from cogo.code.builder import BuildOptions, build_repository

    graph, conn = _open(database_url, Path(home))
    _reset(graph, conn, repo)
    started, cpu, child_cpu = time.perf_counter(), time.process_time(), children_cpu()
    stats = build_repository(repo, graph, conn, BuildOptions(max_commits=1, parse_workers=workers))
    seconds = time.perf_counter() - started
    return {
        "files": stats.head_files,
        "bytes": stats.bytes_parsed,
        "seconds": seconds,
        "cpu_seconds": time.process_time() - cpu,
        "workers_cpu_seconds": children_cpu() - child_cpu,
        "nodes": stats.nodes_written,
        "relationships": stats.relationships_written,
        "calls_resolved": stats.calls_resolved,
        "calls_unresolved": stats.calls_unresolved,
        "peak_mb": peak_mb(),
    }


def phase_history(repo: str, database_url: str, home: str, last: int, workers: int | None, every: int) -> dict:
    from cogo.code.builder import BuildOptions, build_repository
    from cogo.code.git import GitRepo

    graph, conn = _open(database_url, Path(home))
    _reset(graph, conn, repo)
    with GitRepo(repo) as git:
        branch = git.default_branch()
        shas = subprocess.run(
            ["git", "-C", repo, "rev-list", "--first-parent", f"--max-count={last + 1}", branch],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()[::-1]
    checkpoints = record_checkpoints(every)
    started = time.perf_counter()
    stats = build_repository(repo, graph, conn, BuildOptions(head=shas[0], parse_workers=workers))
    seconds = time.perf_counter() - started
    after_history = {"rss_mb": round(rss_mb(), 1), "peak_mb": round(peak_mb(), 1)}
    per_commit = []
    for sha in shas[1:]:
        began = time.perf_counter()
        build_repository(repo, graph, conn, BuildOptions(head=sha, parse_workers=workers))
        per_commit.append(time.perf_counter() - began)
    return {
        "commits": stats.commits,
        "seconds": seconds,
        "history_s": stats.history_s,
        "head_s": stats.head_s,
        "nodes": stats.nodes_written,
        "relationships": stats.relationships_written,
        "files_parsed": stats.files_parsed,
        "new_commit_s": per_commit,
        "checkpoints": checkpoints,
        "after_history": after_history,
        "peak_mb": peak_mb(),
    }


def run_phase(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        phase = args[args.index("--phase") + 1]
        raise SystemExit(f"phase {phase} failed (exit status {out.returncode}):\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def database() -> tuple[str, object]:
    from cogo.config import Settings
    from cogo.db import embedded
    from cogo.db.migrate import migrate
    from cogo.db.urls import with_database

    url = Settings.from_env().database_url
    stop = None
    if url is None:
        pgdata = Path(tempfile.mkdtemp(prefix="bench-pg-")) / "data"
        info = embedded.start(pgdata)
        url = embedded.server_url(info, "postgres")
        stop = pgdata
    import psycopg

    name = f"bench_code_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    db_url = with_database(url, name)
    migrate(db_url)
    return db_url, stop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("repo")
    parser.add_argument("--commits", type=int, default=10, help="new commits processed one by one at the end")
    parser.add_argument(
        "--checkpoint-every", type=int, default=200, help="print memory every N commits of the history (0: never)"
    )
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    parser.add_argument(
        "--parse-workers", type=int, help="processes parsing a large batch of files (default: the cores, up to 4)"
    )
    args = parser.parse_args()
    repo = str(Path(args.repo).resolve())
    if args.phase:
        result = {
            "parse": lambda: phase_parse(repo),
            "facts": lambda: phase_facts(repo),
            "snapshot": lambda: phase_snapshot(repo, args.db, args.home, args.parse_workers),
            "history": lambda: phase_history(
                repo, args.db, args.home, args.commits, args.parse_workers, args.checkpoint_every
            ),
        }[args.phase]()
        print(json.dumps(result))
        return

    db_url, pgdata = database()
    home = tempfile.mkdtemp(prefix="bench-graph-")
    try:
        parse = run_phase([repo, "--phase", "parse"])
        facts = run_phase([repo, "--phase", "facts"])
        workers = [] if args.parse_workers is None else ["--parse-workers", str(args.parse_workers)]
        snap = run_phase([repo, "--phase", "snapshot", "--db", db_url, "--home", home, *workers])
        every = ["--checkpoint-every", str(args.checkpoint_every)]
        history = ["--phase", "history", "--db", db_url, "--home", home, "--commits", str(args.commits)]
        hist = run_phase([repo, *history, *workers, *every])
    finally:
        shutil.rmtree(home, ignore_errors=True)
        if pgdata is not None:
            from cogo.db import embedded

            embedded.stop(pgdata)
            shutil.rmtree(pgdata.parent, ignore_errors=True)
    mb = parse["bytes"] / 1e6
    print(f"repository {repo}: {parse['files']} code files, {mb:.2f} MB at the head")
    print(
        f"parse-only (limit)  {parse['files'] / parse['seconds']:8.0f} files/s  "
        f"{mb / parse['seconds']:6.2f} MB/s  ({parse['seconds']:.3f} s, cpu {parse['cpu_seconds']:.3f} s, "
        f"peak {parse['peak_mb']:.0f} MB)"
    )
    print(
        f"facts (extraction)  {facts['files'] / facts['seconds']:8.0f} files/s  "
        f"{mb / facts['seconds']:6.2f} MB/s  ({facts['seconds']:.3f} s; resolving {facts['calls']} calls "
        f"{facts['resolve_seconds']:.3f} s; peak {facts['peak_mb']:.0f} MB)"
    )
    ratio = parse["seconds"] / snap["seconds"]
    print(
        f"first snapshot      {snap['files'] / snap['seconds']:8.0f} files/s  {mb / snap['seconds']:6.2f} MB/s  "
        f"({snap['seconds']:.3f} s; {snap['nodes']} nodes, {snap['relationships']} relationships; "
        f"peak {snap['peak_mb']:.0f} MB) = {ratio:.2f} of parse-only (target >= {TARGET_SNAPSHOT_RATIO})"
    )
    cpu = snap["cpu_seconds"] + snap["workers_cpu_seconds"]
    print(
        f"  cpu               {cpu:.3f} s ({snap['workers_cpu_seconds']:.3f} s of it in child processes: "
        "forked parse workers and git) "
        f"= {parse['cpu_seconds'] / cpu:.2f} of parse-only's cpu {parse['cpu_seconds']:.3f} s"
    )
    written = hist["nodes"] + hist["relationships"]
    print(
        f"history             {hist['commits'] / hist['seconds']:8.1f} commits/s ({hist['commits']} commits in "
        f"{hist['seconds']:.1f} s: history {hist['history_s']:.1f} s, head {hist['head_s']:.1f} s; "
        f"{hist['files_parsed']} file versions parsed); {written / hist['seconds']:.0f} nodes+relationships/s "
        f"({hist['nodes']} nodes, {hist['relationships']} relationships); peak {hist['peak_mb']:.0f} MB"
    )
    if hist["checkpoints"]:
        print("  memory as the history grows (the history pass, before the head pass):")
        print("    commits   seconds  commits/s   RSS MB  peak MB  file versions parsed  nodes+rels written")
        for mark in hist["checkpoints"]:
            print(
                f"    {mark['commits']:7d}  {mark['seconds']:8.1f}  {mark['commits'] / mark['seconds']:9.1f}  "
                f"{mark['rss_mb']:7.0f}  {mark['peak_mb']:7.0f}  {mark['files_parsed']:20d}  {mark['written']:17d}"
            )
        end = hist["after_history"]
        print(f"    after the head pass: RSS {end['rss_mb']:.0f} MB, peak {end['peak_mb']:.0f} MB")
    if hist["new_commit_s"]:
        times = hist["new_commit_s"]
        p90 = statistics.quantiles(times, n=10, method="inclusive")[-1] if len(times) > 1 else times[0]
        print(
            f"new commit          median {statistics.median(times):.3f} s, p90 {p90:.3f} s, max {max(times):.3f} s "
            f"over {len(times)} commits (target < {TARGET_NEW_COMMIT_S} s)"
        )


if __name__ == "__main__":
    main()
