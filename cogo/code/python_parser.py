"""Python files to facts with tree-sitter: one query run in C captures definitions, calls, imports and
local bindings; Python only visits the captured nodes (walking every node in Python would cost more than
the parse itself). Each kind of capture is handled in one loop of its own, in document order: the scope a
node belongs to is looked up by its start byte in the definitions' nesting (a bisect), not by merging and
sorting all captures."""

from __future__ import annotations

import ast
import hashlib
import inspect
from bisect import bisect_right
from typing import Any

import tree_sitter as ts

from cogo.code import python_flow
from cogo.code.facts import FileFacts, ImportRef, Symbol
from cogo.code.languages import parser, query
from cogo.code.python_text import callee_parts, dotted
from cogo.code.python_text import text as _text

# Only identifiers and attributes are call targets worth keeping (dotted() gives None for the rest).
QUERY = """
(function_definition) @function
(class_definition) @class
(call function: [(identifier) (attribute)] @call)
(import_statement) @import
(import_from_statement) @import
(attribute object: (identifier) @reference)
(assignment left: (identifier) right: (call function: (_) @local_call))
(assignment left: (identifier) @local)
(assignment left: (pattern_list (identifier) @local))
(assignment left: (tuple_pattern (identifier) @local))
(augmented_assignment left: (identifier) @local)
(for_statement left: (identifier) @local)
(for_statement left: (pattern_list (identifier) @local))
(as_pattern alias: (as_pattern_target (identifier) @local))
(named_expression name: (identifier) @local)
(assignment) @assign
(return_statement (_) @return)
(call arguments: (argument_list (_))) @call_args
(call function: [(subscript) (call)]) @call_args
(for_statement) @for
(ERROR) @error
(MISSING) @error
"""
# A call whose value is assigned or returned is recorded with that statement, not again on its own.
_VALUE_PARENTS = {"assignment", "return_statement"}


def _assigned_name(call_callee: ts.Node) -> str | None:
    """The plain name a call's result is assigned to (`x = C()`), from the call's callee node."""
    target = call_callee.parent.parent if call_callee.parent is not None else None  # callee -> call -> assignment
    left = target.child_by_field_name("left") if target is not None else None
    return _text(left) if left is not None and left.type == "identifier" else None


def _plain_string(raw: str) -> str | None:
    """The value of a string literal without prefix or escapes (what literal_eval would give, without
    compiling it), or None when it needs literal_eval."""
    quote = raw[:3] if raw[:3] in ('"""', "'''") else raw[:1]
    if quote not in ('"""', "'''", '"', "'") or len(raw) < 2 * len(quote) or not raw.endswith(quote):
        return None
    inner = raw[len(quote) : -len(quote)]
    if quote in inner or "\\" in inner or "\r" in inner or "\x00" in inner or (len(quote) == 1 and "\n" in inner):
        return None
    return inner


def string_value(node: ts.Node) -> str | None:
    raw = _text(node)
    value: object = _plain_string(raw)
    if value is None:
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            value = raw.strip("\"'rRbBuUfF")
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return inspect.cleandoc(value) if isinstance(value, str) else None


def docstring_of(body: ts.Node | None) -> str | None:
    if body is None:
        return None
    # Not named_children: a class body's list would hold every statement.
    child = body.named_child(0) if body.named_child_count else None
    while child is not None and child.type == "comment":
        child = child.next_named_sibling
    if child is not None and child.type == "expression_statement" and child.named_child_count == 1:
        first = child.named_child(0)
        if first is not None and first.type == "string":
            return string_value(first)
    return None


def _parameter_names(params: ts.Node | None) -> list[str]:
    names: list[str] = []
    if params is None:
        return names
    for child in params.named_children:
        target = child
        if child.type in ("default_parameter", "typed_default_parameter"):
            target = child.child_by_field_name("name") or child
        elif child.type in ("typed_parameter", "list_splat_pattern", "dictionary_splat_pattern"):
            target = next((c for c in child.named_children if c.type == "identifier"), child)
        if target.type == "identifier":
            names.append(_text(target))
    return names


def _summary(docstring: str | None) -> str | None:
    if not docstring:
        return None
    return docstring.split("\n\n", 1)[0].strip()[:1000] or None


def _imports(node: ts.Node, line: int) -> list[ImportRef]:
    refs: list[ImportRef] = []
    if node.type == "import_statement":
        for child in node.named_children:
            if child.type == "dotted_name":
                refs.append(ImportRef(_text(child), line=line))
            elif child.type == "aliased_import":
                name, alias = child.child_by_field_name("name"), child.child_by_field_name("alias")
                refs.append(ImportRef(_text(name), alias=_text(alias) if alias else None, line=line))
        return refs
    module_node = node.child_by_field_name("module_name")
    level, module = 0, ""
    if module_node is not None:
        if module_node.type == "relative_import":
            prefix = next((c for c in module_node.children if c.type == "import_prefix"), None)
            level = len(_text(prefix)) if prefix else 0
            inner = next((c for c in module_node.named_children if c.type == "dotted_name"), None)
            module = _text(inner) if inner else ""
        else:
            module = _text(module_node)
    for child in node.named_children:
        if child == module_node:
            continue
        if child.type == "dotted_name":
            refs.append(ImportRef(module, name=_text(child), level=level, line=line))
        elif child.type == "aliased_import":
            name, alias = child.child_by_field_name("name"), child.child_by_field_name("alias")
            refs.append(
                ImportRef(module, name=_text(name), alias=_text(alias) if alias else None, level=level, line=line)
            )
        elif child.type == "wildcard_import":
            refs.append(ImportRef(module, name="*", level=level, line=line))
    return refs


def _in_order(nodes: list[ts.Node]) -> list[tuple[int, ts.Node]]:
    """(start byte, node) of one capture name's nodes in document order. The cursor yields them in no
    fixed order; nodes starting at the same byte (the callees `super` and `super().f`) go shortest first."""
    starts = [n.start_byte for n in nodes]
    ends = [n.end_byte for n in nodes]
    return [(start, nodes[i]) for start, _, i in sorted(zip(starts, ends, range(len(nodes)), strict=True))]


def parse_python(path: str, data: bytes, facts: FileFacts) -> FileFacts:
    tree = parser("python").parse(data)
    root = tree.root_node
    facts.summary = _summary(docstring_of(root))
    captures = ts.QueryCursor(query("python", QUERY)).captures(root)
    facts.parse_errors = len(captures.get("error", ()))
    module = facts.module

    # Definitions in document order, each in the innermost one open at its start. Their nesting becomes
    # `bounds`/`owners`: from byte bounds[i] on (until the next bound) the innermost scope is owners[i]
    # (None: module level). A node's scope is owners[bisect_right(bounds, node.start_byte) - 1].
    by_qname: dict[str, Symbol] = {}
    stack: list[tuple[int, Symbol]] = []  # open scopes: (end_byte, symbol)
    bounds: list[int] = [0]
    owners: list[Symbol | None] = [None]
    for start, node in _in_order(captures.get("function", []) + captures.get("class", [])):
        while stack and stack[-1][0] <= start:
            bounds.append(stack.pop()[0])
            owners.append(stack[-1][1] if stack else None)
        ident = node.child_by_field_name("name")
        if ident is None:
            continue
        scope = stack[-1][1] if stack else None
        symbol = _definition(node, ident, scope, module)
        existing = by_qname.get(symbol.qualified_name)
        if existing is not None:  # redefinition (property setter, if/else variants): one node
            existing.code_hash = hashlib.sha256((existing.code_hash + symbol.code_hash).encode()).hexdigest()
            existing.end_line = max(existing.end_line, symbol.end_line)
            symbol = existing
        else:
            by_qname[symbol.qualified_name] = symbol
        if node.parent is not None and node.parent.type == "decorated_definition":
            applied = [python_flow.expr(d.named_child(0)) for d in node.parent.named_children if d.type == "decorator"]
            (scope.flows if scope is not None else facts.flows).append(["d", symbol.qualified_name, applied])
        stack.append((node.end_byte, symbol))
        bounds.append(start)
        owners.append(symbol)
    while stack:
        bounds.append(stack.pop()[0])
        owners.append(stack[-1][1] if stack else None)

    # A function-level import binds names in that function only; it is kept with the file's imports
    # (resolution treats them alike) so calls through it still resolve.
    for _, node in _in_order(captures.get("import", [])):
        facts.imports.extend(_imports(node, node.start_point[0] + 1))

    module_calls: set[tuple[str, ...]] = set()
    for start, node in _in_order(captures.get("call", [])):
        parts = callee_parts(node)
        if not parts:
            continue
        scope = owners[bisect_right(bounds, start) - 1]
        if scope is not None:
            scope.calls.append(parts)
        elif (key := tuple(parts)) not in module_calls:
            module_calls.add(key)
            facts.module_calls.append(parts)

    for node in captures.get("reference", ()):  # sorted into a set below: order does not matter
        scope = owners[bisect_right(bounds, node.start_byte) - 1]
        if scope is not None:
            scope.references.append(node.text.decode("utf-8", "replace"))

    for node in captures.get("local", ()):  # likewise
        scope = owners[bisect_right(bounds, node.start_byte) - 1]
        (scope.local_names if scope is not None else facts.module_names).append(node.text.decode("utf-8", "replace"))

    for start, node in _in_order(captures.get("local_call", [])):
        parts, assigned = callee_parts(node), _assigned_name(node)
        if not parts or assigned is None:
            continue
        scope = owners[bisect_right(bounds, start) - 1]
        if scope is not None:
            scope.local_types[assigned] = parts
        else:
            # A name assigned twice from different calls has no one type.
            known = facts.module_types.get(assigned)
            facts.module_types[assigned] = parts if known in (None, parts) else []

    _flows(captures, bounds, owners, facts)

    for symbol in by_qname.values():
        symbol.local_names = sorted(set(symbol.local_names))
        symbol.references = sorted(set(symbol.references))
    facts.symbols = list(by_qname.values())
    facts.module_names = sorted(set(facts.module_names))
    facts.module_types = {k: v for k, v in facts.module_types.items() if v}
    return facts


def _flows(
    captures: dict[str, list[ts.Node]], bounds: list[int], owners: list[Symbol | None], facts: FileFacts
) -> None:
    """The statements the value-flow analysis follows (see python_flow), each in its scope, in document
    order (nodes starting at the same byte: the shortest first)."""
    statements: list[tuple[int, int, int, list[Any]]] = []
    for node in captures.get("assign", ()):
        for i, statement in enumerate(python_flow.assignment(node)):
            statements.append((node.start_byte, node.end_byte, i, statement))
    for node in captures.get("return", ()):
        if (value := python_flow.expr(node)) is not None:
            statements.append((node.start_byte, node.end_byte, 0, ["r", value]))
    seen: set[tuple[int, int]] = set()
    for node in captures.get("call_args", ()):
        parent, key = node.parent, (node.start_byte, node.end_byte)
        if key in seen or (parent is not None and parent.type in _VALUE_PARENTS):
            continue
        seen.add(key)
        if (value := python_flow.call(node)) is not None and python_flow.carries_values(value):
            statements.append((node.start_byte, node.end_byte, 0, ["c", value]))
    for node in captures.get("for", ()):
        if (statement := python_flow.for_loop(node)) is not None:
            statements.append((node.start_byte, node.end_byte, 0, statement))
    statements.sort(key=lambda item: item[:3])
    for start, _, _, statement in statements:
        scope = owners[bisect_right(bounds, start) - 1]
        (scope.flows if scope is not None else facts.flows).append(statement)


def _definition(node: ts.Node, ident: ts.Node, scope: Symbol | None, module: str) -> Symbol:
    """The Symbol of a function_definition or class_definition node (its name node given)."""
    kind = "function" if node.type == "function_definition" else "class"
    short = _text(ident)
    parent = node.parent
    outer = parent if parent is not None and parent.type == "decorated_definition" else node
    decorators = [_text(d)[1:].strip() for d in outer.named_children if d.type == "decorator"] if outer != node else []
    qname = f"{scope.qualified_name if scope else module}.{short}" if module else short
    symbol = Symbol(
        kind=kind,
        name=short,
        qualified_name=qname,
        parent=scope.qualified_name if scope else None,
        start_line=outer.start_point[0] + 1,
        end_line=node.end_point[0] + 1,
        code_hash=hashlib.sha256(outer.text or b"").hexdigest(),
        docstring=docstring_of(node.child_by_field_name("body")),
        decorators=decorators,
        is_method=scope is not None and scope.kind == "class" and kind == "function",
    )
    if kind == "function":
        params = node.child_by_field_name("parameters")
        returns = node.child_by_field_name("return_type")
        symbol.signature = _text(params) + (f" -> {_text(returns)}" if returns is not None else "")
        symbol.local_names = _parameter_names(params)
        symbol.first_param = symbol.local_names[0] if symbol.local_names else None
        symbol.params, symbol.param_types, symbol.flows = python_flow.parameters(params)
        symbol.returns = _text(returns) if returns is not None else None
    else:
        superclasses = node.child_by_field_name("superclasses")
        if superclasses is not None:
            for arg in superclasses.named_children:
                parts = dotted(arg)
                if parts:
                    symbol.bases.append(parts)
                    symbol.references.append(parts[0])
    for decorator in decorators:
        symbol.references.append(decorator.split("(", 1)[0].split(".", 1)[0])
    return symbol
