"""Call resolution through a file's scope and its imports: never by bare name.

A call is resolved only when the name it goes through is bound to a definition the index knows: a nested
function, a module-level definition, an import (absolute, relative, aliased, re-exported by a package), a
method through `self`/`cls`/`super()` and the class's bases, or a method on a local variable assigned
from a known class. Every edge says how (`resolution`) and how sure (`confidence`). Anything else —
builtins, attributes of unknown objects, dynamic dispatch — stays unresolved and is counted, not guessed.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from cogo.code.facts import FileFacts, ImportRef, Symbol
from cogo.code.flow import Flow

CONFIDENCE = {
    "local": 1.0,
    "scope": 1.0,
    "import": 1.0,
    "same_file": 1.0,
    "import_reexport": 0.95,
    "class_attr": 0.95,
    "same_package": 0.95,
    "self": 0.9,
    "this": 0.9,
    "super": 0.9,
    "constructor": 0.9,
    "local_type": 0.85,
    "star_import": 0.8,
    # Learnt by following values (cogo.code.flow): through a variable, a declared type, a return, a
    # decorator, an argument, a loop, a table entry; a subclass's override reached through `self`.
    "class_object": 0.9,
    "assignment": 0.85,
    "annotation": 0.85,
    "return_type": 0.85,
    "decorator": 0.85,
    "parameter": 0.8,
    "iteration": 0.8,
    "container": 0.75,
    "override": 0.6,
}
# Edges at or above this are certain as far as static analysis goes: definitions, imports, `self`, `super()`,
# constructors; below it they depend on inferred values, declared types or class-hierarchy analysis.
CERTAIN = 0.9
MAX_DEPTH = 6
JS_LANGUAGES = {"javascript", "typescript", "tsx"}
JS_EXTENSIONS = (".ts", ".tsx", ".js", ".jsx", ".mjs", ".cjs", ".mts", ".cts")


@dataclass
class Resolved:
    kind: str  # "module" | "function" | "class" | "external"
    target: str  # qualified name, or the external top-level name
    reexport: bool = False


@dataclass
class FileLinks:
    """What one file's code points at, resolved against the whole snapshot."""

    calls: list[tuple[str, str, str, float]] = field(default_factory=list)  # (caller, callee, resolution, conf)
    uses: set[tuple[str, str]] = field(default_factory=set)  # (symbol qname, external top-level name)
    libraries: dict[str, str | None] = field(default_factory=dict)  # external top-level name -> alias
    internal_modules: set[str] = field(default_factory=set)  # modules of this repo the file imports
    call_sites: int = 0
    unresolved: int = 0


def _import_name_of(path: str, packages: set[str]) -> str:
    """The name Python imports a file by: the trailing run of package folders (with __init__.py) plus the
    module itself (src/pkg/mod.py -> pkg.mod when src/ is not a package; tests/test_x.py -> test_x)."""
    file = PurePosixPath(path)
    folders = list(file.parent.parts)
    start = len(folders)
    while start > 0 and "/".join(folders[:start]) in packages:
        start -= 1
    parts = folders[start:] + ([] if file.stem == "__init__" else [file.stem])
    return ".".join(parts)


class Index:
    """Every definition of a snapshot, by qualified name, with each module's imports."""

    def __init__(self, files: Iterable[FileFacts], go_module: str | None = None):
        self.files: dict[str, FileFacts] = {}
        self.symbols: dict[str, Symbol] = {}
        self.modules: dict[str, FileFacts] = {}  # full dotted name -> file (Python)
        self.namespaces: set[str] = set()
        self.aliases: dict[str, str | None] = {}  # import name -> full name (None: ambiguous)
        self.js_paths: dict[str, str] = {}  # path without extension -> module (JS/TS)
        self.go_packages: dict[tuple[str, str], list[str]] = {}  # (folder, name) -> qualified names
        self._bindings: dict[str, dict[str, str]] = {}
        self._stars: dict[str, list[str]] = {}
        self._mro: dict[str, list[str] | None] = {}
        self.go_module: str | None = go_module
        self.java_packages: set[str] = set()
        self._flow: Flow | None = None
        for facts in files:
            self.add(facts)
        self._finish()

    @property
    def flow(self) -> Flow:
        """The snapshot's value flow, computed when first asked for (Python files only)."""
        if self._flow is None:
            self._flow = Flow(self)
        return self._flow

    def add(self, facts: FileFacts) -> None:
        self.files[facts.path] = facts
        for symbol in facts.symbols:
            self.symbols[symbol.qualified_name] = symbol
        if facts.language == "python":
            self.modules[facts.module] = facts
        elif facts.language in JS_LANGUAGES:
            stem = str(PurePosixPath(facts.path).with_suffix(""))
            self.js_paths[stem] = facts.module
        elif facts.language == "java":
            self.java_packages.add(facts.module)
        elif facts.language == "go":
            folder = posixpath.dirname(facts.path)
            for symbol in facts.symbols:
                if symbol.parent is None:
                    self.go_packages.setdefault((folder, symbol.name), []).append(symbol.qualified_name)

    def _finish(self) -> None:
        packages = {posixpath.dirname(f.path) for f in self.modules.values() if f.path.endswith("__init__.py")}
        for name, facts in self.modules.items():
            parts = name.split(".")
            for i in range(1, len(parts)):
                self.namespaces.add(".".join(parts[:i]))
            alias = _import_name_of(facts.path, packages)
            if not alias or alias == name:
                continue
            alias_parts = alias.split(".")
            offset = len(parts) - len(alias_parts)
            for i in range(1, len(alias_parts) + 1):
                self._register_alias(".".join(alias_parts[:i]), ".".join(parts[: offset + i]))

    def _register_alias(self, alias: str, full: str) -> None:
        if alias in self.aliases and self.aliases[alias] != full:
            self.aliases[alias] = None  # two files answer to the same import name: resolve neither
        else:
            self.aliases[alias] = full

    # -- modules and names ------------------------------------------------------------------------------

    def module_for(self, name: str) -> str | None:
        if name in self.modules or name in self.namespaces:
            return name
        return self.aliases.get(name)

    def bindings(self, module: str) -> dict[str, str]:
        """Local name -> absolute dotted target, for a module's imports."""
        cached = self._bindings.get(module)
        if cached is not None:
            return cached
        facts = self.modules.get(module)
        result: dict[str, str] = {}
        stars: list[str] = []
        if facts is not None:
            for ref in facts.imports:
                target = self.import_target(facts, ref)
                if target is None:
                    continue
                if ref.name == "*":
                    stars.append(target)
                else:
                    result[ref.bound_name] = target
        self._bindings[module] = result
        self._stars[module] = stars
        return result

    def import_target(self, facts: FileFacts, ref: ImportRef) -> str | None:
        """The absolute dotted name an import refers to (`from ..a import b` in p.q.m -> p.a.b)."""
        if ref.level == 0:
            if ref.name is None:
                return ref.module if ref.alias else ref.module.split(".")[0]
            return f"{ref.module}.{ref.name}" if ref.name != "*" else ref.module
        package = facts.module.split(".")
        if not facts.path.endswith("__init__.py"):
            package = package[:-1]
        drop = ref.level - 1
        if drop > len(package):
            return None
        base = package[: len(package) - drop] if drop else package
        parts = [*base, *(ref.module.split(".") if ref.module else [])]
        if ref.name and ref.name != "*":
            parts.append(ref.name)
        return ".".join(parts) if parts else None

    def resolve_dotted(self, dotted: str, depth: int = 0) -> Resolved | None:
        """An absolute dotted name to a module, a definition, or an external package."""
        parts = dotted.split(".")
        for i in range(len(parts), 0, -1):
            module = self.module_for(".".join(parts[:i]))
            if module is not None:
                break
        else:
            return Resolved("external", parts[0])
        rest = parts[i:]
        if not rest:
            return Resolved("module", module)
        head = f"{module}.{rest[0]}"
        if head in self.symbols and self.symbols[head].parent is None:
            target = self.walk_members(head, rest[1:])
            return None if target is None else Resolved(self.symbols[target].kind, target)
        if depth < MAX_DEPTH:
            bound = self.bindings(module).get(rest[0])
            if bound is not None and bound != dotted:
                found = self.resolve_dotted(".".join([bound, *rest[1:]]), depth + 1)
                if found is not None and found.kind != "external":
                    found.reexport = True
                return found
        return None

    def walk_members(self, target: str, names: list[str]) -> str | None:
        """`target.a.b…` through class members (inherited ones included); None when a member is missing."""
        for name in names:
            member = self.member(target, name)
            if member is None:
                return None
            target = member
        return target

    def resolve_in_module(self, module: str, parts: list[str]) -> tuple[Resolved, str] | None:
        """A dotted name as written at a module's top level: its own definitions, then its imports."""
        head = f"{module}.{parts[0]}"
        if head in self.symbols and self.symbols[head].parent is None:
            target = self.walk_members(head, parts[1:])
            if target is None:
                return None
            return Resolved(self.symbols[target].kind, target), "scope" if len(parts) == 1 else "class_attr"
        bound = self.bindings(module).get(parts[0])
        if bound is not None:
            found = self.resolve_dotted(".".join([bound, *parts[1:]]))
            if found is None:
                return None
            return found, "import_reexport" if found.reexport else "import"
        for star in self._stars.get(module, []):
            found = self.resolve_dotted(".".join([star, *parts]))
            if found is not None and found.kind in ("function", "class"):
                return found, "star_import"
        return None

    def mro(self, class_q: str) -> list[str] | None:
        """The class's method resolution order (C3, as Python computes it). A base that is not a class of
        this repository (external, builtin, dynamic) stays in the order as an unknown `?...` entry: a
        member looked up past it cannot be known. None when the bases admit no order (or form a cycle)."""
        if class_q in self._mro:
            return self._mro[class_q]
        self._mro[class_q] = None  # a cycle through this class has no order
        symbol = self.symbols.get(class_q)
        module = self.module_of(class_q)
        parents: list[str] = []
        for i, parts in enumerate(symbol.bases if symbol is not None else []):
            found = self.resolve_in_module(module, parts) if module else None
            if found is not None and found[0].kind == "class":
                parents.append(found[0].target)
            elif parts != ["object"]:
                parents.append(f"?{class_q}#{i}")
        sequences: list[list[str]] = []
        for parent in parents:
            order = [parent] if parent.startswith("?") else self.mro(parent)
            if order is None:
                return None
            sequences.append(list(order))
        merged = _c3_merge([*sequences, list(parents)])
        self._mro[class_q] = None if merged is None else [class_q, *merged]
        return self._mro[class_q]

    def is_internal_path(self, language: str, name: str) -> bool:
        """A Go import path of this repository's own module, or a Java package of its own classes."""
        if language == "go":
            return self.go_module is not None and (name == self.go_module or name.startswith(self.go_module + "/"))
        if language == "java":
            return any(f".{name}." in f".{q}." for q in self.java_packages)
        return False

    def module_of(self, qname: str) -> str | None:
        parts = qname.split(".")
        for i in range(len(parts) - 1, 0, -1):
            if ".".join(parts[:i]) in self.modules:
                return ".".join(parts[:i])
        return None

    def member(self, class_q: str, name: str, *, skip_self: bool = False) -> str | None:
        """A class attribute in the class's MRO; None when an unknown base comes before any definition."""
        order = self.mro(class_q)
        if order is None:
            return None
        for cls in order[1:] if skip_self else order:
            if cls.startswith("?"):
                return None
            candidate = f"{cls}.{name}"
            if candidate in self.symbols:
                return candidate
        return None


def _c3_merge(sequences: list[list[str]]) -> list[str] | None:
    result: list[str] = []
    sequences = [seq for seq in sequences if seq]
    while sequences:
        for seq in sequences:
            head = seq[0]
            if not any(head in other[1:] for other in sequences):
                break
        else:
            return None  # inconsistent hierarchy: Python would refuse the class
        result.append(head)
        sequences = [rest for seq in sequences if (rest := seq[1:] if seq[0] == head else seq)]
    return result


def _enclosing_class(index: Index, fn: Symbol, self_name: str) -> str | None:
    """The class whose instance `self_name` is inside fn (a method, or a function nested in one)."""
    current: Symbol | None = fn
    while current is not None and current.kind == "function":
        if current.is_method and current.first_param == self_name:
            return current.parent
        current = index.symbols.get(current.parent) if current.parent else None
    return None


def _function_chain(index: Index, fn: Symbol) -> list[Symbol]:
    chain: list[Symbol] = []
    current: Symbol | None = fn
    while current is not None and current.kind == "function":
        chain.append(current)
        current = index.symbols.get(current.parent) if current.parent else None
    return chain


def _to_callable(index: Index, found: Resolved, resolution: str) -> tuple[str, str] | None:
    if found.kind == "function":
        return found.target, resolution
    if found.kind == "class":
        init = index.member(found.target, "__init__")
        if init is not None:
            return init, "constructor"
    return None


def resolve_python_call(index: Index, facts: FileFacts, fn: Symbol, parts: list[str]) -> tuple[str, str] | None:
    head, rest = parts[0], parts[1:]
    if head in ("self", "cls", "super()"):
        if len(rest) != 1:
            return None
        if head == "super()":
            cls = _enclosing_class(index, fn, "self") or _enclosing_class(index, fn, "cls")
            found = index.member(cls, rest[0], skip_self=True) if cls else None
            resolution = "super"
        else:
            cls = _enclosing_class(index, fn, head)
            found = index.member(cls, rest[0]) if cls else None
            resolution = "self"
        return (found, resolution) if found and index.symbols[found].kind == "function" else None
    for scope in _function_chain(index, fn):
        nested = f"{scope.qualified_name}.{head}"
        if nested in index.symbols:
            return _to_callable(index, Resolved(index.symbols[nested].kind, nested), "local") if not rest else None
        if head in scope.local_names:
            typed = scope.local_types.get(head)
            if typed and len(rest) == 1 and (found := _method_of_class(index, facts, typed, rest[0])):
                return found, "local_type"
            return None
    return resolve_module_call(index, facts, parts)


def _method_of_class(index: Index, facts: FileFacts, class_name: list[str], method: str) -> str | None:
    """`method` of the class `class_name` names in the file's module (a variable made by `x = C()`)."""
    cls = index.resolve_in_module(facts.module, class_name)
    if cls is None or cls[0].kind != "class":
        return None
    found = index.member(cls[0].target, method)
    return found if found and index.symbols[found].kind == "function" else None


def resolve_module_call(index: Index, facts: FileFacts, parts: list[str]) -> tuple[str, str] | None:
    """A name as module-level code sees it (also where a function's lookup ends). A name the module
    assigns is a variable, whatever else it may be: a call through it resolves only as a method of the
    class it was made from (`x = C()` once), never to a definition of the same name."""
    head, rest = parts[0], parts[1:]
    if head == "super()":
        return None
    if head in facts.module_names:
        typed = facts.module_types.get(head)
        if typed and len(rest) == 1 and typed[0] != head and (found := _method_of_class(index, facts, typed, rest[0])):
            return found, "local_type"
        return None
    found = index.resolve_in_module(facts.module, parts)
    if found is None or found[0].kind in ("module", "external"):
        return None
    return _to_callable(index, found[0], found[1])


def module_level_calls(index: Index, facts: FileFacts) -> list[tuple[str, str]]:
    """(callee, resolution) of the calls in a Python file's module-level code. The graph has no caller
    node for them (CALLS joins functions); the call-graph benchmark scores them."""
    return [found for parts in facts.module_calls if (found := resolve_module_call(index, facts, parts))]


def _resolve_js_module(index: Index, facts: FileFacts, source: str) -> str | None:
    if not source.startswith("."):
        return None
    base = posixpath.normpath(posixpath.join(posixpath.dirname(facts.path), source))
    for candidate in (base, *(base[: -len(ext)] for ext in JS_EXTENSIONS if base.endswith(ext))):
        if candidate in index.js_paths:
            return index.js_paths[candidate]
    return index.js_paths.get(f"{base}/index")


def resolve_other_call(index: Index, facts: FileFacts, fn: Symbol, parts: list[str]) -> tuple[str, str] | None:
    head, rest = parts[0], parts[1:]
    if rest:
        if len(rest) == 1 and fn.first_param and head == fn.first_param:
            cls = _enclosing_class(index, fn, head)
            if cls is not None and f"{cls}.{rest[0]}" in index.symbols:
                return f"{cls}.{rest[0]}", "this" if head == "this" else "self"
        return None
    for scope in _function_chain(index, fn):
        nested = f"{scope.qualified_name}.{head}"
        if nested in index.symbols and index.symbols[nested].kind == "function":
            return nested, "local"
    if facts.language == "java":  # an unqualified call is a method of the enclosing class
        cls = fn.parent
        if cls and f"{cls}.{head}" in index.symbols:
            return f"{cls}.{head}", "this"
        return None
    same_file = f"{facts.module}.{head}"
    if same_file in index.symbols and index.symbols[same_file].kind == "function":
        return same_file, "same_file"
    if facts.language == "go":
        found = index.go_packages.get((posixpath.dirname(facts.path), head), [])
        if len(found) == 1 and index.symbols[found[0]].kind == "function":
            return found[0], "same_package"
        return None
    if facts.language in JS_LANGUAGES:
        for ref in facts.imports:
            if ref.bound_name == head and ref.name and ref.name != "default":
                module = _resolve_js_module(index, facts, ref.module)
                target = f"{module}.{ref.name}" if module else None
                if target in index.symbols and index.symbols[target].kind == "function":
                    return target, "import"
    return None


def external_name(language: str, ref: ImportRef, target: str | None) -> str | None:
    """The package an import names outside the repository (None for relative/internal imports)."""
    if language == "python":
        return target.split(".")[0] if target else None
    module = ref.module
    if language in JS_LANGUAGES:
        if not module or module.startswith((".", "/")):
            return None
        parts = module.split("/")
        return "/".join(parts[:2]) if module.startswith("@") else parts[0]
    return module or None


def imported_modules(index: Index, facts: FileFacts) -> set[str]:
    """The modules of this repository a file imports (to know whom a change to a module concerns)."""
    modules: set[str] = set()
    for ref in facts.imports:
        module: str | None = None
        if facts.language == "python":
            target = index.import_target(facts, ref)
            if target:
                full = ref.module if ref.name is None and ref.level == 0 else target
                module = index.module_for(full) or index.module_of(full)
        elif facts.language in JS_LANGUAGES:
            module = _resolve_js_module(index, facts, ref.module)
        if module:
            modules.add(module)
    return modules


def link_file(index: Index, facts: FileFacts) -> FileLinks:
    links = FileLinks()
    python = facts.language == "python"
    external_bindings: dict[str, str] = {}
    links.internal_modules = imported_modules(index, facts)
    for ref in facts.imports:
        if python:
            if ref.level != 0:
                continue
            found = index.resolve_dotted(index.import_target(facts, ref) or ref.module)
            if found is not None and found.kind == "external":
                links.libraries.setdefault(found.target, ref.alias)
                external_bindings[ref.bound_name] = found.target
        elif not (facts.language in JS_LANGUAGES and ref.module.startswith(".")):
            name = external_name(facts.language, ref, None)
            if name and not index.is_internal_path(facts.language, name):
                links.libraries.setdefault(name, ref.alias)
                external_bindings[ref.alias or ref.bound_name] = name
                if facts.language == "go":
                    external_bindings[name.rsplit("/", 1)[-1]] = name
    best: dict[tuple[str, str], tuple[str, float]] = {}
    for symbol in facts.symbols:
        for ref_name in symbol.references:
            if ref_name in external_bindings and ref_name not in symbol.local_names:
                links.uses.add((symbol.qualified_name, external_bindings[ref_name]))
        if symbol.kind != "function":
            continue
        seen: set[tuple[str, ...]] = set()
        for parts in symbol.calls:
            key = tuple(parts)
            if key in seen:
                continue
            seen.add(key)
            links.call_sites += 1
            if parts[0] in external_bindings and parts[0] not in symbol.local_names:
                links.uses.add((symbol.qualified_name, external_bindings[parts[0]]))
                continue
            resolver = resolve_python_call if python else resolve_other_call
            found = resolver(index, facts, symbol, parts)
            if found is None:
                links.unresolved += 1
                continue
            callee, resolution = found
            if python and callee in index.flow.decorated:
                continue  # the name holds what the decorators returned: the flow's edges say where it goes
            key = (symbol.qualified_name, callee)
            if key not in best or CONFIDENCE[resolution] > best[key][1]:
                best[key] = (resolution, CONFIDENCE[resolution])
        if python:
            for callee, kind in index.flow.calls_of(symbol.qualified_name).items():
                resolution = kind or "assignment"
                key = (symbol.qualified_name, callee)
                if callee in index.symbols and (key not in best or CONFIDENCE[resolution] > best[key][1]):
                    best[key] = (resolution, CONFIDENCE[resolution])
    links.calls = [(caller, callee, res, conf) for (caller, callee), (res, conf) in best.items()]
    # A class uses what its methods use.
    by_parent = {s.qualified_name: s.parent for s in facts.symbols}
    for qname, library in list(links.uses):
        parent = by_parent.get(qname)
        while parent is not None and parent in index.symbols:
            if index.symbols[parent].kind == "class":
                links.uses.add((parent, library))
            parent = by_parent.get(parent)
    return links
