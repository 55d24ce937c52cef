"""Would jedi resolve calls better than cogo's own resolution? Accuracy and speed, measured.

    python bench/bench_call_jedi.py JEDI_PATH [SNIPPETS] [--speed REPO]

JEDI_PATH: a folder where jedi is installed (`pip install --target /tmp/jedilib jedi`; it is not one of
cogo's dependencies). Every call inside a function of each micro-benchmark case (see
bench_call_precision.py) is inferred with `Script.infer` at the callee's last name; a function found is an
edge, a class an edge to its `__init__`. Scored like bench_call_precision.py (function-to-function edges
under the case's modules, lambdas left out). `--speed REPO`: the same inference over every call site of
REPO's Python files at its working tree, timed (calls per second), next to a tree-sitter parse of them.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def call_sites(source: str, module: str) -> list[tuple[str, int, int]]:
    """(caller qualified name, line, column of the callee's last name) of each call inside a function."""
    sites: list[tuple[str, int, int]] = []

    def visit(node: ast.AST, scope: list[str], in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                for deco in child.decorator_list:
                    visit(deco, scope, in_function)
                visit(child, [*scope, child.name], in_function or not isinstance(child, ast.ClassDef))
                continue
            if in_function and isinstance(child, ast.Call):
                func = child.func
                if isinstance(func, ast.Name):
                    sites.append((".".join([module, *scope]), func.lineno, func.col_offset))
                elif isinstance(func, ast.Attribute) and func.end_col_offset is not None:
                    sites.append((".".join([module, *scope]), func.end_lineno or func.lineno, func.end_col_offset - 1))
            visit(child, scope, in_function)

    visit(ast.parse(source), [], False)
    return sites


def jedi_edges(jedi, root: Path, files: list[Path]) -> tuple[set[tuple[str, str]], int]:
    project = jedi.Project(str(root))
    edges: set[tuple[str, str]] = set()
    sites = 0
    for path in files:
        source = path.read_text()
        parts = list(path.relative_to(root).with_suffix("").parts)
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        script = jedi.Script(source, path=str(path), project=project)
        for caller, line, column in call_sites(source, module):
            sites += 1
            try:
                names = script.infer(line, column)
            except Exception:  # jedi raises on some constructs; a site it cannot infer has no edge
                continue
            for name in names:
                if name.full_name and name.type == "function":
                    edges.add((caller, name.full_name))
                elif name.full_name and name.type == "class":
                    edges.add((caller, name.full_name + ".__init__"))
    return edges, sites


def micro_benchmark(jedi, snippets: Path) -> None:
    from bench_call_precision import Score, case_modules, function_edges

    total = Score()
    started = time.perf_counter()
    cases = sorted(p.parent for p in snippets.glob("*/*/callgraph.json") if (p.parent / "main.py").exists())
    for case in cases:
        modules = case_modules(case)
        expected = function_edges(json.loads((case / "callgraph.json").read_text()), modules)
        found, _ = jedi_edges(jedi, case, sorted(case.rglob("*.py")))
        found = {e for e in found if e[0] not in modules and function_edges({e[0]: [e[1]]}, modules)}
        total.add(found, expected, f"{case.parent.name}/{case.name}:")
    found, wrong, expected, precision, recall = total.figures()
    print(
        f"jedi {jedi.__version__} on {len(cases)} cases: {found} edges, {wrong} wrong, {expected} expected: "
        f"precision {precision:.3f}, recall {recall:.3f} ({time.perf_counter() - started:.1f} s)"
    )


def speed(jedi, repo: Path) -> None:
    from cogo.code.languages import parser

    files = [p for p in sorted(repo.rglob("*.py")) if ".venv" not in p.parts and "site-packages" not in p.parts]
    started = time.perf_counter()
    for path in files:
        parser("python").parse(path.read_bytes())
    parse_s = time.perf_counter() - started
    started = time.perf_counter()
    _, sites = jedi_edges(jedi, repo, files)
    seconds = time.perf_counter() - started
    print(
        f"speed on {repo}: {len(files)} files, {sites} call sites inferred in {seconds:.1f} s "
        f"({sites / seconds:.0f} calls/s); tree-sitter parses the files in {parse_s:.2f} s "
        f"(jedi: {seconds / parse_s:.0f}x the parse)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("jedi_path")
    parser.add_argument("snippets", nargs="?", default="/tmp/pycg/pycg-0.0.8/micro-benchmark/snippets")
    parser.add_argument("--speed", help="a repository whose call sites are inferred, timed")
    args = parser.parse_args()
    sys.path.insert(0, args.jedi_path)
    import jedi

    micro_benchmark(jedi, Path(args.snippets))
    if args.speed:
        speed(jedi, Path(args.speed).resolve())


if __name__ == "__main__":
    main()
