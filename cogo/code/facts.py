"""What parsing one file yields: its symbols, their call sites and the file's imports, as plain data that
round-trips through JSON (the head snapshot's facts are kept in Postgres, table code_file_facts)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class ImportRef:
    """One imported name. Python: `from {module} import {name} as {alias}` (level = leading dots), or
    `import {module} as {alias}` (name None). JS/TS: module is the source string; Go/Java: the path."""

    module: str
    name: str | None = None
    alias: str | None = None
    level: int = 0
    line: int = 0

    @property
    def bound_name(self) -> str:
        """The local name the import binds (Python semantics: `import a.b` binds `a`)."""
        if self.alias:
            return self.alias
        if self.name:
            return self.name
        return self.module.split(".")[0]


@dataclass(slots=True)
class Symbol:
    kind: str  # "function" | "class"
    name: str
    qualified_name: str
    parent: str | None  # qualified name of the enclosing function/class, None at module level
    start_line: int
    end_line: int
    code_hash: str
    signature: str | None = None
    docstring: str | None = None
    decorators: list[str] = field(default_factory=list)
    is_method: bool = False
    # Calls as dotted parts: ["helper"], ["self", "save"], ["mod", "f"], ["super()", "m"].
    calls: list[list[str]] = field(default_factory=list)
    # Names this symbol reads whose first part may be an import (attribute heads, decorators, bases).
    references: list[str] = field(default_factory=list)
    # Names bound locally (parameters, assignment targets): a call through them is never resolved by scope.
    local_names: list[str] = field(default_factory=list)
    # Local variable -> dotted callee it was assigned from (`x = Service()`), for method calls on it.
    local_types: dict[str, list[str]] = field(default_factory=dict)
    # Base classes as written (classes only).
    bases: list[list[str]] = field(default_factory=list)
    first_param: str | None = None
    # Functions: parameter names in order (`*args`, `**kwargs` with their stars), their annotations and the
    # return annotation as written.
    params: list[str] = field(default_factory=list)
    param_types: dict[str, str] = field(default_factory=dict)
    returns: str | None = None
    # Statements of this scope the value-flow analysis follows (cogo.code.python_flow).
    flows: list[list[Any]] = field(default_factory=list)


# Facts stored by an older extraction (a lower version) are extracted again: they lack what resolution now uses.
FACTS_VERSION = 2

_REQUIRED = ("kind", "name", "qualified_name", "parent", "start_line", "end_line", "code_hash")
_OPTIONAL = tuple(k for k in Symbol.__slots__ if k not in _REQUIRED)


def _symbol_json(symbol: Symbol) -> dict[str, Any]:
    """The symbol's fields, leaving out those at their empty value (None, [], {}, False)."""
    row = {k: getattr(symbol, k) for k in _REQUIRED}
    for k in _OPTIONAL:
        value = getattr(symbol, k)
        if value is not None and value is not False and value != [] and value != {}:
            row[k] = value
    return row


@dataclass(slots=True)
class FileFacts:
    path: str
    language: str
    module: str
    size_bytes: int
    blob_sha: str = ""
    summary: str | None = None
    parse_errors: int = 0
    skipped: str | None = None  # "too_large" | "binary" when the file was not parsed
    imports: list[ImportRef] = field(default_factory=list)
    symbols: list[Symbol] = field(default_factory=list)
    # Module-level code (Python): its calls, the names it binds, and those bound from a call (`x = C()`).
    module_calls: list[list[str]] = field(default_factory=list)
    module_names: list[str] = field(default_factory=list)
    module_types: dict[str, list[str]] = field(default_factory=dict)
    module_flows: list[list[Any]] = field(default_factory=list)
    version: int = FACTS_VERSION

    @property
    def flows(self) -> list[list[Any]]:
        return self.module_flows

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "language": self.language,
            "module": self.module,
            "size_bytes": self.size_bytes,
            "blob_sha": self.blob_sha,
            "summary": self.summary,
            "parse_errors": self.parse_errors,
            "skipped": self.skipped,
            "imports": [[i.module, i.name, i.alias, i.level, i.line] for i in self.imports],
            "symbols": [_symbol_json(s) for s in self.symbols],
            "module_calls": self.module_calls,
            "module_names": self.module_names,
            "module_types": self.module_types,
            "module_flows": self.module_flows,
            "version": self.version,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FileFacts:
        return cls(
            path=data["path"],
            language=data["language"],
            module=data["module"],
            size_bytes=data["size_bytes"],
            blob_sha=data.get("blob_sha", ""),
            summary=data.get("summary"),
            parse_errors=data.get("parse_errors", 0),
            skipped=data.get("skipped"),
            imports=[ImportRef(*row) for row in data.get("imports", [])],
            symbols=[Symbol(**s) for s in data.get("symbols", [])],
            module_calls=data.get("module_calls", []),
            module_names=data.get("module_names", []),
            module_types=data.get("module_types", {}),
            module_flows=data.get("module_flows", []),
            version=data.get("version", 1),
        )
