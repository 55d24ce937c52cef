"""cogo and a peer code-graph indexer, CodeGraphContext, side by side on the same snapshot:

    python -m venv /tmp/peer-venv          # the peer in its own virtualenv, never in cogo's
    /tmp/peer-venv/bin/pip install codegraphcontext==0.6.13 tree-sitter-python==0.25.0 tree-sitter-javascript==0.25.0 \\
        tree-sitter-typescript==0.23.2 tree-sitter-go==0.25.0 tree-sitter-java==0.23.5
    python bench/bench_peer_code_graph.py /tmp/pytest-8.3.4-snapshot --peer-python /tmp/peer-venv/bin/python

Prints for each: wall and CPU time, peak memory (max RSS; the peer's child processes too), and the nodes and
relationships in the graph it produced, by label and type (each indexer models code its own way; the rows
that mean the same thing are printed next to each other).

cogo: the first snapshot of REPO's head (one commit), as `bench_code_graph.py`'s "first snapshot": embedded
LadybugDB in a temporary folder, Postgres COGO_DATABASE_URL or a temporary embedded server.

The peer: `cgc index REPO` (CodeGraphContext's command) in the peer's virtualenv, run in a process whose HOME
is a temporary folder (its configuration and database live there), on its embedded KuzuDB backend (the
issue's reference figure is for Kuzu; its "ladybugdb" backend needs a C library the `ladybug` 0.19 package
downloads, and falls back to KuzuDB here). CodeGraphContext takes its grammars
from tree-sitter-language-pack, which downloads them at run time and so fails offline ("Failed to fetch
manifest from https://github.com/..."). In the peer's process only, that module is replaced by one whose
get_language() answers from the per-language grammar wheels (the grammars cogo uses); nothing else of
the peer is changed. Languages without a wheel there raise KeyError, which the peer treats as unsupported.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# tree-sitter-language-pack names -> (grammar wheel module, its language function)
GRAMMAR_WHEELS = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "java": ("tree_sitter_java", "language"),
}

# What means the same thing in both graphs: (cogo's, the peer's)
COMPARABLE_NODES = [("CodeFile", "File"), ("Function", "Function"), ("Class", "Class"), ("Library", "Module")]
COMPARABLE_RELS = [("CONTAINS", "CONTAINS"), ("CALLS", "CALLS"), ("IMPORTS", "IMPORTS")]


def peak_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def cpu_seconds(who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


# -- the peer (runs with the peer's Python; imports nothing of cogo) ---------------------------------------


def offline_language_pack() -> None:
    """tree_sitter_language_pack replaced, in this process, by the per-language grammar wheels."""
    import importlib
    import types

    import tree_sitter

    def get_language(name: str):
        if name not in GRAMMAR_WHEELS:
            raise KeyError(name)
        module, function = GRAMMAR_WHEELS[name]
        return tree_sitter.Language(getattr(importlib.import_module(module), function)())

    shim = types.ModuleType("tree_sitter_language_pack")
    shim.get_language = get_language  # type: ignore[attr-defined]
    sys.modules["tree_sitter_language_pack"] = shim


def run_peer(repo: str, result_path: str) -> None:
    offline_language_pack()
    from codegraphcontext.cli.main import app  # the `cgc` command

    started, cpu = time.perf_counter(), cpu_seconds()
    error = None
    try:
        app(["index", repo, "--no-progress"], standalone_mode=False)
    except SystemExit as exit_:  # typer.Exit on a failed index
        error = f"exit {exit_.code}"
    except Exception as exc:  # the peer's failure is a result to report, not ours
        error = f"{type(exc).__name__}: {exc}"
    result = {
        "seconds": time.perf_counter() - started,
        "cpu_seconds": cpu_seconds() - cpu,
        "children_cpu_seconds": cpu_seconds(resource.RUSAGE_CHILDREN),
        "peak_mb": peak_mb(),
        "children_peak_mb": peak_mb(resource.RUSAGE_CHILDREN),
        "error": error,
    }
    Path(result_path).write_text(json.dumps(result))


def count_peer(home: str, result_path: str) -> None:
    """Nodes by label and relationships by type in the peer's database (read-only, after it exited)."""
    import kuzu

    (path,) = Path(home).glob(".codegraphcontext/**/kuzudb")  # global/db/kuzudb
    conn = kuzu.Connection(kuzu.Database(str(path), read_only=True))

    def rows(query: str) -> dict[str, int]:
        result, out = conn.execute(query), {}
        while result.has_next():
            label, count = result.get_next()
            out[label] = count
        return out

    counts = {
        "nodes": rows("MATCH (n) RETURN label(n), count(*)"),
        "relationships": rows("MATCH ()-[r]->() RETURN label(r), count(*)"),
    }
    Path(result_path).write_text(json.dumps(counts))


def peer(repo: str, python: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-peer-") as home:
        env = os.environ | {"HOME": home, "DATABASE_TYPE": "kuzudb"}
        env.pop("PYTHONPATH", None)
        result_file = Path(home) / "result.json"
        log = Path(home) / "cgc.log"
        with log.open("w") as out:
            subprocess.run(
                [python, __file__, repo, "--run-peer", str(result_file)], env=env, stdout=out, stderr=out, check=False
            )
        if not result_file.exists():
            raise SystemExit(f"the peer did not run:\n{log.read_text()[-3000:]}")
        result = json.loads(result_file.read_text())
        result["log_tail"] = log.read_text().strip().splitlines()[-12:]
        counts_file = Path(home) / "counts.json"
        counted = subprocess.run(
            [python, __file__, repo, "--count-peer", str(counts_file), "--peer-home", home],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if counted.returncode != 0:
            result["counts_error"] = counted.stderr.strip().splitlines()[-1:]
            result.update(nodes={}, relationships={})
        else:
            result.update(json.loads(counts_file.read_text()))
    return result


# -- cogo (runs with cogo's Python) -------------------------------------------------------------------------


def run_cogo(repo: str, database_url: str, home: str) -> dict:
    sys.path.insert(0, str(HERE))
    from bench_code_graph import _open, children_cpu

    from cogo.code.builder import BuildOptions, build_repository
    from cogo.graph.schema import NODE_PROPERTIES, REL_TYPES

    graph, conn = _open(database_url, Path(home))
    started, cpu, child_cpu = time.perf_counter(), time.process_time(), children_cpu()
    stats = build_repository(repo, graph, conn, BuildOptions(max_commits=1))
    seconds = time.perf_counter() - started
    result = {
        "seconds": seconds,
        "cpu_seconds": time.process_time() - cpu,
        "children_cpu_seconds": children_cpu() - child_cpu,
        "peak_mb": peak_mb(),
        "children_peak_mb": peak_mb(resource.RUSAGE_CHILDREN),
        "files": stats.head_files,
        "error": None,
    }
    result["nodes"] = {
        label: graph.query(f"MATCH (n:{label}) RETURN count(n) AS c")[0]["c"] for label in NODE_PROPERTIES
    }
    result["relationships"] = {
        rel: graph.query(f"MATCH ()-[r:{rel}]->() RETURN count(r) AS c")[0]["c"] for rel in REL_TYPES
    }
    return result


def cogo(repo: str) -> dict:
    sys.path.insert(0, str(HERE))
    from bench_code_graph import database

    db_url, pgdata = database()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-graph-") as home:
            out = subprocess.run(
                [sys.executable, __file__, repo, "--run-cogo", "--db", db_url, "--home", home],
                capture_output=True,
                text=True,
                check=False,
            )
    finally:
        if pgdata is not None:
            from cogo.db import embedded

            embedded.stop(pgdata)
            shutil.rmtree(pgdata.parent, ignore_errors=True)
    if out.returncode != 0:
        raise SystemExit(f"cogo's run failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- side by side ---------------------------------------------------------------------------------------------


def report(repo: str, ours: dict, theirs: dict) -> None:
    print(f"snapshot {repo}")
    print(f"{'':28s} {'cogo':>14s} {'CodeGraphContext':>18s}")
    print(f"{'backend':28s} {'LadybugDB':>14s} {'KuzuDB':>18s}")
    print(f"{'wall s':28s} {ours['seconds']:14.2f} {theirs['seconds']:18.2f}")
    cpu_ours = ours["cpu_seconds"] + ours["children_cpu_seconds"]
    cpu_theirs = theirs["cpu_seconds"] + theirs["children_cpu_seconds"]
    print(f"{'cpu s (with children)':28s} {cpu_ours:14.2f} {cpu_theirs:18.2f}")
    print(f"{'peak MB (process)':28s} {ours['peak_mb']:14.0f} {theirs['peak_mb']:18.0f}")
    print(f"{'peak MB (largest child)':28s} {ours['children_peak_mb']:14.0f} {theirs['children_peak_mb']:18.0f}")
    for kind, pairs in (("nodes", COMPARABLE_NODES), ("relationships", COMPARABLE_RELS)):
        for mine, peers in pairs:
            label = f"{mine} / {peers}" if mine != peers else mine
            print(f"{label:28s} {ours[kind].get(mine, 0):14d} {theirs[kind].get(peers, 0):18d}")
        total_ours, total_theirs = sum(ours[kind].values()), sum(theirs[kind].values())
        print(f"{kind + ' (all)':28s} {total_ours:14d} {total_theirs:18d}")
    print(f"cogo:             {json.dumps(ours['nodes'])} {json.dumps(ours['relationships'])}")
    print(f"CodeGraphContext: {json.dumps(theirs['nodes'])} {json.dumps(theirs['relationships'])}")
    written_ours = sum(ours["nodes"].values()) + sum(ours["relationships"].values())
    written_theirs = sum(theirs["nodes"].values()) + sum(theirs["relationships"].values())
    print(
        f"nodes+relationships per second: cogo {written_ours / ours['seconds']:.0f}, "
        f"CodeGraphContext {written_theirs / theirs['seconds']:.0f}"
    )
    if theirs["error"] or theirs.get("counts_error"):
        print(f"CodeGraphContext failed: {theirs['error'] or theirs['counts_error']}")
        print("\n".join(theirs["log_tail"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("repo", help="a git repository; its head's checkout is what both index")
    parser.add_argument("--peer-python", default="/tmp/peer-venv/bin/python", help="Python of the peer's virtualenv")
    parser.add_argument("--run-peer", help=argparse.SUPPRESS)
    parser.add_argument("--count-peer", help=argparse.SUPPRESS)
    parser.add_argument("--peer-home", help=argparse.SUPPRESS)
    parser.add_argument("--run-cogo", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    args = parser.parse_args()
    repo = str(Path(args.repo).resolve())
    if args.run_peer:
        run_peer(repo, args.run_peer)
    elif args.count_peer:
        count_peer(args.peer_home, args.count_peer)
    elif args.run_cogo:
        print(json.dumps(run_cogo(repo, args.db, args.home)))
    else:
        ours = cogo(repo)
        theirs = peer(repo, args.peer_python)
        report(repo, ours, theirs)


if __name__ == "__main__":
    main()
