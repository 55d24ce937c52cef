"""JavaScript/TypeScript, Go and Java files to facts: files, classes (and Go struct types), functions and
methods, imports and call sites. One tree-sitter query per language; only captured nodes are visited."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import tree_sitter as ts

from cogo.code.facts import FileFacts, ImportRef, Symbol
from cogo.code.languages import parser, query

_JS_COMMON = """
(function_declaration name: (identifier) @name) @function
(generator_function_declaration name: (identifier) @name) @function
(method_definition name: (_) @name) @function
(variable_declarator name: (identifier) @name value: [(arrow_function) (function_expression)]) @function
(class_declaration name: (_) @name) @class
(import_statement source: (string) @source) @import
(call_expression function: (_) @call)
(ERROR) @error
"""

QUERIES = {
    "javascript": _JS_COMMON,
    "typescript": _JS_COMMON + "(abstract_class_declaration name: (_) @name) @class\n",
    "tsx": _JS_COMMON + "(abstract_class_declaration name: (_) @name) @class\n",
    "go": """
(function_declaration name: (identifier) @name) @function
(method_declaration receiver: (parameter_list) @receiver name: (field_identifier) @name) @function
(type_spec name: (type_identifier) @name type: [(struct_type) (interface_type)]) @class
(import_spec path: (_) @source) @import
(call_expression function: (_) @call)
(ERROR) @error
""",
    "java": """
(class_declaration name: (identifier) @name) @class
(interface_declaration name: (identifier) @name) @class
(enum_declaration name: (identifier) @name) @class
(method_declaration name: (identifier) @name) @function
(constructor_declaration name: (identifier) @name) @function
(import_declaration) @import
(method_invocation) @call
(ERROR) @error
""",
}

SELF_NAMES = {"javascript": "this", "typescript": "this", "tsx": "this", "java": "this"}
_COMMENT_MARKERS = re.compile(r"^\s*(/\*\*?|\*/|\*|//+)\s?", re.MULTILINE)


def _text(node: ts.Node | None) -> str:
    return node.text.decode("utf-8", "replace") if node is not None and node.text is not None else ""


def _comment_text(node: ts.Node) -> str:
    text = _text(node)
    if text.endswith("*/"):
        text = text[:-2]
    return _COMMENT_MARKERS.sub("", text).strip()


def _leading_comment(node: ts.Node) -> str | None:
    """The comment block right above a definition (JSDoc, Javadoc, Go doc comment)."""
    lines: list[str] = []
    prev, line = node.prev_sibling, node.start_point[0]
    while prev is not None and prev.type in ("comment", "line_comment", "block_comment"):
        if prev.end_point[0] < line - 1:
            break
        lines.insert(0, _comment_text(prev))
        line = prev.start_point[0]
        prev = prev.prev_sibling
    text = "\n".join(lines).strip()
    return text or None


def _string(node: ts.Node) -> str:
    return _text(node).strip("\"'`")


def _call_parts(language: str, node: ts.Node) -> list[str] | None:
    if language == "java":  # method_invocation: object? . name
        name, obj = node.child_by_field_name("name"), node.child_by_field_name("object")
        if name is None:
            return None
        if obj is None:
            return [_text(name)]
        if obj.type in ("identifier", "this"):
            return [_text(obj), _text(name)]
        return None
    kind = node.type
    if kind == "identifier":
        return [_text(node)]
    if kind == "member_expression":
        obj, prop = node.child_by_field_name("object"), node.child_by_field_name("property")
        if obj is not None and prop is not None and obj.type in ("identifier", "this"):
            return [_text(obj), _text(prop)]
    if kind == "selector_expression":
        obj, field = node.child_by_field_name("operand"), node.child_by_field_name("field")
        if obj is not None and field is not None and obj.type == "identifier":
            return [_text(obj), _text(field)]
    return None


def _imports(language: str, node: ts.Node, source: ts.Node | None) -> list[ImportRef]:
    line = node.start_point[0] + 1
    if language == "java":
        path = next((c for c in node.named_children if c.type in ("scoped_identifier", "identifier")), None)
        wildcard = any(c.type == "asterisk" for c in node.children)
        name = _text(path)
        if wildcard:
            return [ImportRef(name, name="*", line=line)]
        module, _, short = name.rpartition(".")
        return [ImportRef(module, name=short, line=line)]
    if language == "go":
        alias = node.child_by_field_name("name")
        path = _string(source) if source is not None else ""
        return [ImportRef(path, alias=_text(alias) if alias is not None else None, line=line)]
    module = _string(source) if source is not None else ""
    refs: list[ImportRef] = []
    clause = next((c for c in node.named_children if c.type == "import_clause"), None)
    if clause is not None:
        for child in clause.named_children:
            if child.type == "identifier":
                refs.append(ImportRef(module, name="default", alias=_text(child), line=line))
            elif child.type == "namespace_import":
                ident = next((c for c in child.named_children if c.type == "identifier"), None)
                refs.append(ImportRef(module, alias=_text(ident), line=line))
            elif child.type == "named_imports":
                for spec in child.named_children:
                    if spec.type == "import_specifier":
                        name, alias = spec.child_by_field_name("name"), spec.child_by_field_name("alias")
                        refs.append(
                            ImportRef(module, name=_text(name), alias=_text(alias) if alias else None, line=line)
                        )
    return refs or [ImportRef(module, line=line)]


def _go_receiver(receiver: ts.Node) -> tuple[str | None, str | None]:
    """(receiver variable, receiver type name) of a Go method."""
    decl = next((c for c in receiver.named_children if c.type == "parameter_declaration"), None)
    if decl is None:
        return None, None
    name, type_node = decl.child_by_field_name("name"), decl.child_by_field_name("type")
    while type_node is not None and type_node.type in ("pointer_type", "generic_type"):
        type_node = next((c for c in type_node.named_children if c.type == "type_identifier"), None)
    return (_text(name) or None), (_text(type_node) or None)


@dataclass
class _Match:
    start: int
    order: int
    kind: str
    node: ts.Node
    name: ts.Node | None = None
    extra: ts.Node | None = None


def parse_other(language: str, data: bytes, facts: FileFacts) -> FileFacts:
    tree = parser(language).parse(data)
    root = tree.root_node
    first = root.named_children[0] if root.named_child_count else None
    if first is not None and first.type in ("comment", "line_comment", "block_comment"):
        facts.summary = _comment_text(first).split("\n\n", 1)[0][:1000] or None
    matches: list[_Match] = []
    for _, caps in ts.QueryCursor(query(language, QUERIES[language])).matches(root):
        if "error" in caps:
            facts.parse_errors += len(caps["error"])
            continue
        for kind in ("function", "class", "import", "call"):
            if kind in caps:
                node = caps[kind][0]
                name = caps.get("name", [None])[0]
                extra = caps.get("receiver", caps.get("source", [None]))[0]
                order = 0 if kind in ("function", "class") else 1
                matches.append(_Match(node.start_byte, order, kind, node, name, extra))
                break
    matches.sort(key=lambda m: (m.start, m.order))

    by_qname: dict[str, Symbol] = {}
    stack: list[tuple[int, Symbol]] = []
    module = facts.module
    self_name = SELF_NAMES.get(language)
    for match in matches:
        while stack and stack[-1][0] <= match.start:
            stack.pop()
        scope = stack[-1][1] if stack else None
        node = match.node
        if match.kind in ("function", "class"):
            short = _text(match.name)
            if not short:
                continue
            parent_q = scope.qualified_name if scope else module
            first_param = self_name
            is_method = scope is not None and scope.kind == "class" and match.kind == "function"
            if language == "go" and match.extra is not None:  # Go method: Type.Method
                receiver_var, receiver_type = _go_receiver(match.extra)
                if receiver_type:
                    parent_q, is_method, first_param = f"{module}.{receiver_type}", True, receiver_var
            outer = node
            if node.type == "variable_declarator" and node.parent is not None:
                outer = node.parent
            if outer.parent is not None and outer.parent.type == "export_statement":
                outer = outer.parent
            qname = f"{parent_q}.{short}" if parent_q else short
            symbol = Symbol(
                kind=match.kind,
                name=short,
                qualified_name=qname,
                parent=parent_q if parent_q != module else None,
                start_line=node.start_point[0] + 1,
                end_line=node.end_point[0] + 1,
                code_hash=hashlib.sha256(node.text or b"").hexdigest(),
                docstring=_leading_comment(outer),
                is_method=is_method,
                first_param=first_param if is_method else None,
            )
            if match.kind == "function":
                fn = node.child_by_field_name("value") if node.type == "variable_declarator" else node
                params = fn.child_by_field_name("parameters") if fn is not None else None
                result = None
                if fn is not None:
                    result = fn.child_by_field_name("return_type") or fn.child_by_field_name("result")
                    if language == "java":
                        result = fn.child_by_field_name("type")
                signature = _text(params)
                if result is not None:
                    returns = _text(result)
                    if language == "java":
                        signature = f"{returns} {signature}"
                    else:  # TS annotations carry their own colon: "(id: string): T"
                        signature = f"{signature}{returns}" if returns.startswith(":") else f"{signature} {returns}"
                symbol.signature = signature or None
            if qname in by_qname:  # overloads (Java) and redefinitions: one node
                existing = by_qname[qname]
                existing.code_hash = hashlib.sha256((existing.code_hash + symbol.code_hash).encode()).hexdigest()
                symbol = existing
            else:
                by_qname[qname] = symbol
            stack.append((node.end_byte, symbol))
        elif match.kind == "import":
            facts.imports.extend(_imports(language, node, match.extra))
        elif match.kind == "call":
            parts = _call_parts(language, node)
            if parts and parts[0] == "require" and language in ("javascript", "typescript", "tsx"):
                args = node.parent.child_by_field_name("arguments") if node.parent is not None else None
                arg = args.named_children[0] if args is not None and args.named_child_count else None
                if arg is not None and arg.type == "string":
                    facts.imports.append(ImportRef(_string(arg), line=node.start_point[0] + 1))
            elif parts and scope is not None:
                scope.calls.append(parts)
    facts.symbols = list(by_qname.values())
    return facts
