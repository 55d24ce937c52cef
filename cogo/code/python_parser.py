"""Python files to facts with tree-sitter: one query run in C captures definitions, calls, imports and
local bindings; Python only visits the captured nodes (walking every node in Python would cost more than
the parse itself)."""

from __future__ import annotations

import ast
import hashlib
import inspect
import itertools

import tree_sitter as ts

from cogo.code.facts import FileFacts, ImportRef, Symbol
from cogo.code.languages import parser, query

QUERY = """
(function_definition) @function
(class_definition) @class
(call function: (_) @call)
(decorator) @decorator
(import_statement) @import
(import_from_statement) @import_from
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
(ERROR) @error
(MISSING) @error
"""

# Which capture a node counts as, in document order; definitions open a scope.
_ORDER = {"function": 0, "class": 0, "decorator": 1, "local": 2, "local_call": 3, "call": 4, "reference": 5}


def _assigned_name(call_callee: ts.Node) -> str | None:
    """The plain name a call's result is assigned to (`x = C()`), from the call's callee node."""
    target = call_callee.parent.parent if call_callee.parent is not None else None  # callee -> call -> assignment
    left = target.child_by_field_name("left") if target is not None else None
    return _text(left) if left is not None and left.type == "identifier" else None


def _text(node: ts.Node) -> str:
    text = node.text  # a new bytes object on each access
    return text.decode("utf-8", "replace") if text is not None else ""


def dotted(node: ts.Node) -> list[str] | None:
    """A call target or name as dotted parts, or None when it is not a plain dotted name."""
    kind = node.type
    if kind == "identifier":
        return [_text(node)]
    if kind == "attribute":
        obj, attr = node.child_by_field_name("object"), node.child_by_field_name("attribute")
        if obj is None or attr is None:
            return None
        if obj.type == "call":
            fn = obj.child_by_field_name("function")
            if fn is not None and fn.type == "identifier" and _text(fn) == "super":
                return ["super()", _text(attr)]
            return None
        head = dotted(obj)
        return [*head, _text(attr)] if head else None
    return None


def string_value(node: ts.Node) -> str | None:
    raw = _text(node)
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
    for child in body.named_children:
        if child.type == "comment":
            continue
        if child.type == "expression_statement" and child.named_child_count == 1:
            first = child.named_children[0]
            if first.type == "string":
                return string_value(first)
        return None
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


def parse_python(path: str, data: bytes, facts: FileFacts) -> FileFacts:
    tree = parser("python").parse(data)
    root = tree.root_node
    facts.summary = _summary(docstring_of(root))
    captures = ts.QueryCursor(query("python", QUERY)).captures(root)
    facts.parse_errors = len(captures.get("error", ()))

    # (start, capture order, sequence, name, node): the unique sequence number keeps the sort from ever
    # comparing nodes, and lets it run without a key function.
    events: list[tuple[int, int, int, str, ts.Node]] = []
    sequence = itertools.count()
    for name, nodes in captures.items():
        if name == "error":
            continue
        order = _ORDER.get(name, 9)
        events.extend((node.start_byte, order, next(sequence), name, node) for node in nodes)
    events.sort()

    by_qname: dict[str, Symbol] = {}
    # Open scopes: (end_byte, symbol)
    stack: list[tuple[int, Symbol]] = []
    module = facts.module

    for start, _, _, name, node in events:
        while stack and stack[-1][0] <= start:
            stack.pop()
        scope = stack[-1][1] if stack else None
        if name in ("function", "class"):
            ident = node.child_by_field_name("name")
            if ident is None:
                continue
            short = _text(ident)
            outer = node.parent if node.parent is not None and node.parent.type == "decorated_definition" else node
            decorators = (
                [_text(d)[1:].strip() for d in outer.named_children if d.type == "decorator"] if outer != node else []
            )
            qname = f"{scope.qualified_name if scope else module}.{short}" if module else short
            body = node.child_by_field_name("body")
            source = outer.text or b""
            symbol = Symbol(
                kind=name,
                name=short,
                qualified_name=qname,
                parent=scope.qualified_name if scope else None,
                start_line=outer.start_point[0] + 1,
                end_line=node.end_point[0] + 1,
                code_hash=hashlib.sha256(source).hexdigest(),
                docstring=docstring_of(body),
                decorators=decorators,
                is_method=scope is not None and scope.kind == "class" and name == "function",
            )
            if name == "function":
                params = node.child_by_field_name("parameters")
                returns = node.child_by_field_name("return_type")
                symbol.signature = _text(params) + (f" -> {_text(returns)}" if returns is not None else "")
                symbol.local_names = _parameter_names(params)
                symbol.first_param = symbol.local_names[0] if symbol.local_names else None
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
            existing = by_qname.get(qname)
            if existing is not None:  # redefinition (property setter, if/else variants): one node
                existing.code_hash = hashlib.sha256((existing.code_hash + symbol.code_hash).encode()).hexdigest()
                existing.end_line = max(existing.end_line, symbol.end_line)
                symbol = existing
            else:
                by_qname[qname] = symbol
            stack.append((node.end_byte, symbol))
        elif scope is None:
            if name == "import" or name == "import_from":
                facts.imports.extend(_imports(node, node.start_point[0] + 1))
            elif name == "call":
                parts = dotted(node)
                if parts and parts not in facts.module_calls:
                    facts.module_calls.append(parts)
            elif name == "local":
                facts.module_names.append(_text(node))
            elif name == "local_call":
                parts, assigned = dotted(node), _assigned_name(node)
                if parts and assigned is not None:
                    # A name assigned twice from different calls has no one type.
                    known = facts.module_types.get(assigned)
                    facts.module_types[assigned] = parts if known in (None, parts) else []
            continue
        elif name == "call":
            parts = dotted(node)
            if parts:
                scope.calls.append(parts)
        elif name == "reference":
            scope.references.append(_text(node))
        elif name == "local":
            scope.local_names.append(_text(node))
        elif name == "local_call":
            parts, assigned = dotted(node), _assigned_name(node)
            if parts and assigned is not None:
                scope.local_types[assigned] = parts
        elif name in ("import", "import_from"):
            # A function-level import binds names in that function only; keep them with the file's
            # imports (resolution treats them alike) so calls through them still resolve.
            facts.imports.extend(_imports(node, node.start_point[0] + 1))
    for symbol in by_qname.values():
        symbol.local_names = sorted(set(symbol.local_names))
        symbol.references = sorted(set(symbol.references))
    facts.symbols = list(by_qname.values())
    facts.module_names = sorted(set(facts.module_names))
    facts.module_types = {k: v for k, v in facts.module_types.items() if v}
    return facts
