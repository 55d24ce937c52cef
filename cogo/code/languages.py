"""Which files are code, in which language, and the tree-sitter grammar for each (per-language wheels,
which work offline)."""

from __future__ import annotations

import functools
from pathlib import PurePosixPath

import tree_sitter as ts

EXTENSIONS: dict[str, str] = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".java": "java",
}


def language_of(path: str) -> str | None:
    return EXTENSIONS.get(PurePosixPath(path).suffix.lower())


@functools.cache
def grammar(language: str) -> ts.Language:
    if language == "python":
        import tree_sitter_python as mod

        return ts.Language(mod.language())
    if language == "javascript":
        import tree_sitter_javascript as mod

        return ts.Language(mod.language())
    if language in ("typescript", "tsx"):
        import tree_sitter_typescript as mod

        return ts.Language(mod.language_tsx() if language == "tsx" else mod.language_typescript())
    if language == "go":
        import tree_sitter_go as mod

        return ts.Language(mod.language())
    if language == "java":
        import tree_sitter_java as mod

        return ts.Language(mod.language())
    raise ValueError(f"no grammar for {language!r}")


@functools.cache
def parser(language: str) -> ts.Parser:
    return ts.Parser(grammar(language))


@functools.cache
def query(language: str, source: str) -> ts.Query:
    return ts.Query(grammar(language), source)


def module_name(path: str, language: str) -> str:
    """Dotted module name from the repository root: app/auth.py -> app.auth, app/__init__.py -> app
    (and a JS/TS package's index.js -> its folder)."""
    parts = list(PurePosixPath(path).with_suffix("").parts)
    package_file = "__init__" if language == "python" else "index"
    if len(parts) > 1 and parts[-1] == package_file:
        parts.pop()
    return ".".join(p.replace(".", "_") for p in parts)
