"""CALLS precision and recall on PyCG's micro-benchmark, read back from the code graph, PyCG beside.

    python bench/bench_call_precision.py [SNIPPETS] [--pycg PYCG_SRC] [-v]

PyCG (github.com/vitsalis/PyCG, Apache-2.0) ships micro-benchmark/snippets/<category>/<case>/ with the
case's modules and callgraph.json, the expected call graph keyed by dotted names (`main.func`,
`main.Cls.method`, `main` for module-level code, `<builtin>.len`). Get it offline from the sdist:

    pip download --no-deps --no-binary :all: pycg==0.0.8 -d /tmp/pycg
    tar xzf /tmp/pycg/pycg-0.0.8.tar.gz -C /tmp/pycg

Each case is committed to a git repository of its own and its code graph is built by cogo's builder
(cogo.code.builder.build_repository, what the code_graph asset runs) into an embedded LadybugDB and a
Postgres (COGO_DATABASE_URL or a temporary embedded server). `Function-[:CALLS]->Function` is read back
from the graph. Scored: function-to-function edges whose both ends are under the case's own modules (a
CALLS edge joins two functions of the repository; module-level code, lambdas and builtins are no Function). PyCG
itself (the sdist's `pycg` package, imported from PYCG_SRC) is run on the same cases and scored the same
way. Precision: edges found that callgraph.json has; recall: expected edges found. `--min-confidence`
scores only the edges at or above a confidence (e.g. 0.9: the certain ones).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

DEFAULT_SNIPPETS = "/tmp/pycg/pycg-0.0.8/micro-benchmark/snippets"
TARGET_PRECISION, TARGET_RECALL = 0.98, 0.94
GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}
# Run in a child process: PyCG installs import hooks, and its names must not meet cogo's.
PYCG_RUNNER = """
import json, os, sys
from pycg.pycg import CallGraphGenerator
from pycg.utils.constants import CALL_GRAPH_OP
out = {}
for case in json.load(sys.stdin):
    cg = CallGraphGenerator([os.path.join(case, "main.py")], case, -1, CALL_GRAPH_OP)
    try:
        cg.analyze()
        out[case] = {k: sorted(v) for k, v in cg.output().items()}
    except Exception as exc:  # a case PyCG cannot analyse scores as no edges
        out[case] = {"error": [repr(exc)]}
print(json.dumps(out))
"""

Edge = tuple[str, str]


@dataclass
class Score:
    cases: int = 0
    found: set[Edge] = field(default_factory=set)
    expected: set[Edge] = field(default_factory=set)

    def add(self, found: set[Edge], expected: set[Edge], tag: str) -> None:
        """One case's edges, prefixed with its name (two cases both have `main.func`)."""
        self.cases += 1
        self.found |= {(tag + a, tag + b) for a, b in found}
        self.expected |= {(tag + a, tag + b) for a, b in expected}

    def figures(self) -> tuple[int, int, int, float, float]:
        right = len(self.found & self.expected)
        precision = right / len(self.found) if self.found else 1.0
        recall = right / len(self.expected) if self.expected else 1.0
        return len(self.found), len(self.found - self.expected), len(self.expected), precision, recall


def case_modules(case: Path) -> set[str]:
    modules = set()
    for source in case.rglob("*.py"):
        parts = list(source.relative_to(case).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if parts:
            modules.add(".".join(parts))
    return modules


def function_edges(graph: dict[str, list[str]], modules: set[str]) -> set[Edge]:
    """Edges from a function to a function, both under the case's modules. A lambda (`main.<lambda1>`)
    is no Function node of any code graph: its edges are left out."""

    def inside(name: str) -> bool:
        return name not in modules and "<" not in name and any(name.startswith(m + ".") for m in modules)

    return {(a, b) for a, callees in graph.items() if inside(a) for b in callees if inside(b)}


def commit_case(case: Path, into: Path) -> None:
    """The case's modules as one commit of a new repository (callgraph.json and READMEs left out)."""
    for source in case.rglob("*.py"):
        target = into / source.relative_to(case)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
    env = os.environ | GIT_ENV
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", case.name]):
        subprocess.run(["git", "-C", str(into), *args], check=True, env=env, capture_output=True)


def graph_calls(graph, repo: str, min_confidence: float) -> set[Edge]:
    rows = graph.query(
        "MATCH (a:Function)-[r:CALLS]->(b:Function) WHERE a.repo = $repo AND r.confidence >= $c "
        "RETURN a.qualified_name AS a, b.qualified_name AS b",
        {"repo": repo, "c": min_confidence},
    )
    return {(r["a"], r["b"]) for r in rows}


def cogo_edges(cases: list[Path], work: Path, min_confidence: float) -> dict[Path, set[Edge]]:
    """Every case built into one graph, one repository each, through the real builder."""
    import psycopg
    from bench_code_graph import database

    from cogo.code.builder import build_repository
    from cogo.graph.ladybug_store import LadybugStore

    db_url, pgdata = database()
    graph = LadybugStore(work / "graph" / "cogo.lbug")
    graph.ensure_schema()
    found: dict[Path, set[Edge]] = {}
    try:
        with psycopg.connect(db_url, autocommit=True) as conn:
            for i, case in enumerate(cases):
                repo = work / "repos" / f"{i:03d}-{case.parent.name}-{case.name}"
                commit_case(case, repo)
                build_repository(str(repo), graph, conn)
                found[case] = graph_calls(graph, str(repo), min_confidence)
    finally:
        graph.close()
        if pgdata is not None:
            from cogo.db import embedded

            embedded.stop(pgdata)
            shutil.rmtree(pgdata.parent, ignore_errors=True)
    return found


def pycg_edges(cases: list[Path], pycg_src: Path) -> dict[Path, dict[str, list[str]]]:
    env = os.environ | {"PYTHONPATH": str(pycg_src)}
    out = subprocess.run(
        [sys.executable, "-c", PYCG_RUNNER],
        input=json.dumps([str(c.resolve()) for c in cases]),
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    by_path = json.loads(out.stdout.strip().splitlines()[-1])
    return {case: by_path[str(case.resolve())] for case in cases}


def line(name: str, cases: int, cogo: Score, pycg: Score | None) -> str:
    found, wrong, expected, precision, recall = cogo.figures()
    text = f"{name:<16} {cases:>5} | {found:>5} {wrong:>5} {expected:>5} {precision:6.3f} {recall:6.3f}"
    if pycg is not None:
        found, wrong, _, precision, recall = pycg.figures()
        text += f" | {found:>5} {wrong:>5} {precision:6.3f} {recall:6.3f}"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("snippets", nargs="?", default=os.environ.get("PYCG_SNIPPETS", DEFAULT_SNIPPETS))
    parser.add_argument("--pycg", help="PyCG's source (the sdist's folder); default: two levels above SNIPPETS")
    parser.add_argument("--no-pycg", action="store_true", help="score cogo alone")
    parser.add_argument("--min-confidence", type=float, default=0.0, help="score only CALLS at or above this")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every wrong and missed edge")
    args = parser.parse_args()
    root = Path(args.snippets)
    cases = sorted(p.parent for p in root.glob("*/*/callgraph.json") if (p.parent / "main.py").exists())
    if not cases:
        raise SystemExit(f"no PyCG cases (<category>/<case>/callgraph.json and main.py) under {root}")
    pycg_src = Path(args.pycg) if args.pycg else root.resolve().parent.parent
    pycg = None if args.no_pycg else pycg_edges(cases, pycg_src)
    work = Path(tempfile.mkdtemp(prefix="bench-calls-"))
    try:
        cogo = cogo_edges(cases, work, args.min_confidence)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    by_category: dict[str, tuple[Score, Score]] = defaultdict(lambda: (Score(), Score()))
    total = (Score(), Score())
    details: list[str] = []
    for case in cases:
        modules = case_modules(case)
        expected = function_edges(json.loads((case / "callgraph.json").read_text()), modules)
        found = {e for e in cogo[case] if e[0] not in modules}
        theirs = function_edges(pycg[case], modules) if pycg is not None else set()
        label = f"{case.parent.name}/{case.name}"
        for scores in (by_category[case.parent.name], total):
            scores[0].add(found, expected, f"{label}:")
            scores[1].add(theirs, expected, f"{label}:")
        details += [f"  wrong   {label}: {a} -> {b}" for a, b in sorted(found - expected)]
        details += [f"  missed  {label}: {a} -> {b}" for a, b in sorted(expected - found)]
    print(f"PyCG micro-benchmark at {root}: {len(cases)} cases; function-to-function CALLS read from the graph")
    head = f"{'category':<16} {'cases':>5} | {'found':>5} {'wrong':>5} {'exp.':>5} {'prec.':>6} {'recall':>6}"
    print(f"{'':<22} | cogo{'':<30}" + ("| PyCG 0.0.8" if pycg is not None else ""))
    print(head + (f" | {'found':>5} {'wrong':>5} {'prec.':>6} {'recall':>6}" if pycg is not None else ""))
    for category in sorted(by_category):
        ours, theirs = by_category[category]
        print(line(category, ours.cases, ours, theirs if pycg is not None else None))
    print(line("all", total[0].cases, total[0], total[1] if pycg is not None else None))
    _, _, _, precision, recall = total[0].figures()
    print(
        f"cogo: precision {precision:.3f} (target >= {TARGET_PRECISION}), recall {recall:.3f} "
        f"(target >= {TARGET_RECALL})"
    )
    if pycg is not None:
        _, _, _, precision, recall = total[1].figures()
        print(f"PyCG: precision {precision:.3f}, recall {recall:.3f}")
    if args.verbose and details:
        print("\n".join(details))


if __name__ == "__main__":
    main()
