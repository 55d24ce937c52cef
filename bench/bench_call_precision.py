"""Call-edge precision and recall on PyCG's micro-benchmark: python bench/bench_call_precision.py [SNIPPETS]

PyCG (github.com/vitsalis/PyCG, Apache-2.0) ships micro-benchmark/snippets/<category>/<case>/ with the
case's modules (main.py, ...) and callgraph.json, the expected call graph keyed by PyCG's names
(`main.func`, `main.Cls.method`, `main` for module-level code, `<builtin>.len`, `ext.fn` for external
modules). Each case is committed to a fresh git repository and read back through cogo's git layer, then
parsed and resolved exactly as the code graph does (parse_file, Index, link_file); cogo's CALLS edges
use the same dotted names, so they compare one to one.

cogo's CALLS edges go from a function to a function of the repository: module-level code is no caller
in the graph (so PyCG's `main -> ...` edges are out of its reach) and calls into external packages are
USES edges to a Library, not CALLS. Hence two recalls: over every expected edge, and over the edges
whose caller is a function (the ones a CALLS edge can express). Precision counts every CALLS edge cogo
made: one that is not in callgraph.json is wrong.

SNIPPETS defaults to $PYCG_SNIPPETS or /work/shared/pycg-micro-benchmark/snippets (PyCG's code is
third-party and is not committed to this repository).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_SNIPPETS = "/work/shared/pycg-micro-benchmark/snippets"
TARGET_PRECISION = 0.95
GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}

Edge = tuple[str, str]


@dataclass
class Score:
    """Edges per kind of caller: "function" (what CALLS edges hold) and "module" (module-level code)."""

    cases: int = 0
    found: dict[str, set[Edge]] = field(default_factory=lambda: {"function": set(), "module": set()})
    expected: dict[str, set[Edge]] = field(default_factory=lambda: {"function": set(), "module": set()})

    def add(self, other: Score, tag: str = "") -> None:
        """Add another score's edges, prefixed with `tag` (two cases both have `main.func`)."""
        self.cases += other.cases
        for kind in ("function", "module"):
            self.found[kind] |= {(tag + a, tag + b) for a, b in other.found[kind]}
            self.expected[kind] |= {(tag + a, tag + b) for a, b in other.expected[kind]}


def commit_case(case: Path, into: Path) -> None:
    """The case's modules as one commit of a new repository (callgraph.json and READMEs left out)."""
    for source in case.rglob("*.py"):
        target = into / source.relative_to(case)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
    env = os.environ | GIT_ENV
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", case.name]):
        subprocess.run(["git", "-C", str(into), *args], check=True, env=env, capture_output=True)


def cogo_calls(repo: Path) -> tuple[set[Edge], set[Edge], set[str]]:
    """CALLS edges as the code graph writes them, module-level calls resolved the same way (caller: the
    module), and the repository's modules."""
    from cogo.code.git import GitRepo
    from cogo.code.parse import parse_file
    from cogo.code.resolve import Index, link_file, module_level_calls

    with GitRepo(str(repo)) as git:
        head = git.resolve("HEAD")
        entries = git.tree(head)
        files = [f for e in entries if (f := parse_file(e.path, git.read_blob(e.blob), blob_sha=e.blob)) is not None]
    index = Index(files)
    edges = {(caller, callee) for facts in files for caller, callee, _, _ in link_file(index, facts).calls}
    module_edges = {(f.module, callee) for f in files for callee, _ in module_level_calls(index, f)}
    return edges, module_edges, {f.module for f in files}


def score_case(case: Path) -> Score:
    expected_graph: dict[str, list[str]] = json.loads((case / "callgraph.json").read_text())
    with tempfile.TemporaryDirectory(prefix="pycg-case-") as tmp:
        commit_case(case, Path(tmp))
        function_edges, module_edges, modules = cogo_calls(Path(tmp))
    score = Score(cases=1)
    score.found["function"], score.found["module"] = function_edges, module_edges
    for caller, callees in expected_graph.items():
        kind = "module" if caller in modules else "function"
        score.expected[kind] |= {(caller, callee) for callee in callees}
    return score


def ratio(num: int, den: int) -> str:
    return f"{num / den:5.2f}" if den else "  n/a"


def columns(s: Score, kinds: tuple[str, ...]) -> str:
    found = set().union(*(s.found[k] for k in kinds))
    expected = set().union(*(s.expected[k] for k in kinds))
    right = found & expected
    return (
        f"{len(found):>4} {len(found - expected):>3} {ratio(len(right), len(found))} "
        f"{ratio(len(right), len(expected))} {len(expected):>3}"
    )


KINDS = {"function callers (CALLS)": ("function",), "module-level callers": ("module",), "both": ("function", "module")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("snippets", nargs="?", default=os.environ.get("PYCG_SNIPPETS", DEFAULT_SNIPPETS))
    parser.add_argument("-v", "--verbose", action="store_true", help="list every wrong and missed edge")
    args = parser.parse_args()
    root = Path(args.snippets)
    cases = sorted(p.parent for p in root.glob("*/*/callgraph.json") if (p.parent / "main.py").exists())
    if not cases:
        raise SystemExit(f"no PyCG cases (<category>/<case>/callgraph.json and main.py) under {root}")
    by_category: dict[str, Score] = defaultdict(Score)
    total = Score()
    details: list[str] = []
    for case in cases:
        score = score_case(case)
        label = f"{case.parent.name}/{case.name}"
        by_category[case.parent.name].add(score, f"{label}:")
        total.add(score, f"{label}:")
        for kind in ("function", "module"):
            found, expected = score.found[kind], score.expected[kind]
            details += [f"  wrong   {label}: {a} -> {b}" for a, b in sorted(found - expected)]
            details += [f"  missed  {label}: {a} -> {b}" for a, b in sorted(expected - found)]
    print(f"PyCG micro-benchmark at {root}: {len(cases)} cases")
    print(f"{'':<23}" + "".join(f"| {name:<30}" for name in KINDS))
    print(f"{'category':<16} {'cases':>5} " + f"| {'edges wrong prec. recall exp.':<30}" * len(KINDS))
    for category in sorted(by_category):
        score = by_category[category]
        print(f"{category:<16} {score.cases:>5} " + "".join(f"| {columns(score, k):<30}" for k in KINDS.values()))
    print(f"{'all':<16} {total.cases:>5} " + "".join(f"| {columns(total, k):<30}" for k in KINDS.values()))
    for name, kinds in KINDS.items():
        found = set().union(*(total.found[k] for k in kinds))
        expected = set().union(*(total.expected[k] for k in kinds))
        precision = len(found & expected) / len(found) if found else 1.0
        print(f"precision, {name}: {precision:.3f} over {len(found)} edges (target >= {TARGET_PRECISION})")
    if args.verbose and details:
        print("\n".join(details))


if __name__ == "__main__":
    main()
