"""Python expressions and statements as small JSON-able data, for the value-flow analysis (cogo.code.flow).

What values a name can hold is followed through assignments, arguments, returns, containers, loops and
decorators; each of those is recorded per scope as a statement. An expression is kept only as far as the
analysis can use it (names, calls, literals, containers, subscripts, attributes); anything else is None.

Expressions: ["n", dotted parts] | ["c", callee, [positional args], {keyword: arg}] | ["l", literal] |
["k", [[key, value], ...]] (dict, list, tuple, set: list items keyed by their index) | ["s", object, key] |
["a", object, attribute] | ["u", [exprs]] (any of them: `a or b`, `a if c else b`) | None.
Statements: ["=", target parts, expr] | ["t", target parts, annotation text] (a declared type) |
["r", expr] (returned) | ["c", expr] (a call made for its effect) | ["for", target name, expr, line] |
["d", decorated function, [decorator exprs, outermost first]].
"""

from __future__ import annotations

from typing import Any

import tree_sitter as ts

from cogo.code.python_text import callee_parts, literal, text

Expr = Any  # nested lists, see the module docstring
MAX_DEPTH = 4
MAX_ITEMS = 64  # a longer literal container is data, not a table of functions
CONTAINERS = {"dictionary", "list", "tuple", "set", "expression_list"}
# Assigned values that never hold a function, class or instance of the repository (a literal key assigned to a
# name is not followed: literal keys are followed through arguments and defaults).
_PLAIN_VALUES = {"string", "integer", "float", "true", "false", "none", "concatenated_string", "binary_operator"}


def expr(node: ts.Node | None, depth: int = 0) -> Expr:
    if node is None or depth > MAX_DEPTH:
        return None
    kind = node.type
    if kind in ("identifier", "attribute"):
        parts = callee_parts(node)
        if parts:
            return ["n", parts]
        if kind == "attribute":
            obj, attr = node.child_by_field_name("object"), node.child_by_field_name("attribute")
            inner = expr(obj, depth + 1)
            return ["a", inner, text(attr)] if inner is not None and attr is not None else None
        return None
    if kind == "call":
        return call(node, depth)
    if kind in ("string", "integer"):
        value = literal(node)
        return None if value is None else ["l", value]
    if kind in CONTAINERS:
        return container(node, depth)
    if kind == "subscript":
        obj, key = node.child_by_field_name("value"), node.child_by_field_name("subscript")
        inner = expr(obj, depth + 1)
        return ["s", inner, expr(key, depth + 1)] if inner is not None else None
    if kind == "parenthesized_expression" and node.named_child_count == 1:
        return expr(node.named_child(0), depth)
    if kind in ("conditional_expression", "boolean_operator"):  # either side's value
        sides = [e for child in node.named_children if (e := expr(child, depth + 1)) is not None]
        return ["u", sides] if sides else None
    return None


def call(node: ts.Node, depth: int = 0) -> Expr:
    function, arguments = node.child_by_field_name("function"), node.child_by_field_name("arguments")
    callee = expr(function, depth + 1)
    if callee is None:
        return None
    args: list[Expr] = []
    kwargs: dict[str, Expr] = {}
    if arguments is not None and arguments.type == "argument_list":
        for arg in arguments.named_children:
            if arg.type == "keyword_argument":
                name, value = arg.child_by_field_name("name"), arg.child_by_field_name("value")
                if name is not None:
                    kwargs[text(name)] = expr(value, depth + 1)
            elif arg.type in ("list_splat", "dictionary_splat"):
                break  # later positions are unknown
            elif arg.type != "comment":
                args.append(expr(arg, depth + 1))
    return ["c", callee, args, kwargs]


def carries_values(call_expr: list[Any]) -> bool:
    """Whether a call passes anything the analysis follows, or calls through something not a plain name."""
    return (
        call_expr[1][0] != "n"
        or any(arg is not None for arg in call_expr[2])
        or any(arg is not None for arg in call_expr[3].values())
    )


def container(node: ts.Node, depth: int) -> Expr:
    items: list[list[Expr]] = []
    if node.named_child_count > MAX_ITEMS:
        return None
    for i, child in enumerate(node.named_children):
        if child.type == "pair":
            key, value = child.child_by_field_name("key"), child.child_by_field_name("value")
            items.append([expr(key, depth + 1), expr(value, depth + 1)])
        elif child.type != "comment":
            items.append([["l", i], expr(child, depth + 1)])
    items = [item for item in items if item[1] is not None]
    return ["k", items] if items else None


def target(node: ts.Node | None) -> list[str] | None:
    """An assignment target the analysis follows: a plain name or a dotted attribute (`self.x`)."""
    if node is None or node.type not in ("identifier", "attribute"):
        return None
    return callee_parts(node)


def assignment(node: ts.Node) -> list[list[Any]]:
    """The statements of an `assignment` node: a type declared (`x: App`), a value assigned."""
    left = target(node.child_by_field_name("left"))
    if left is None:
        return []
    statements: list[list[Any]] = []
    annotation = node.child_by_field_name("type")
    if annotation is not None:
        statements.append(["t", left, text(annotation)])
    right = node.child_by_field_name("right")
    value = expr(right) if right is not None and right.type not in _PLAIN_VALUES else None
    if value is not None:
        statements.append(["=", left, value])
    return statements


def for_loop(node: ts.Node) -> list[Any] | None:
    left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
    if left is None or right is None:
        return None
    value = expr(right)
    if value is None:
        return None
    name = text(left) if left.type == "identifier" else ""
    return ["for", name, value, node.start_point[0] + 1]


def parameters(params: ts.Node | None) -> tuple[list[str], dict[str, str], list[list[Any]]]:
    """Parameter names in order (`*args`, `**kwargs` with their stars), their annotations as written, and
    their defaults as assignments."""
    names: list[str] = []
    types: dict[str, str] = {}
    defaults: list[list[Any]] = []
    if params is None:
        return names, types, defaults
    for child in params.named_children:
        kind = child.type
        if kind == "identifier":
            names.append(text(child))
            continue
        if kind in ("list_splat_pattern", "dictionary_splat_pattern"):
            inner = next((c for c in child.named_children if c.type == "identifier"), None)
            if inner is not None:
                names.append(("*" if kind == "list_splat_pattern" else "**") + text(inner))
            continue
        if kind == "typed_parameter":
            inner = child.named_child(0)
            if inner is None:
                continue
            if inner.type in ("list_splat_pattern", "dictionary_splat_pattern"):
                ident = next((c for c in inner.named_children if c.type == "identifier"), None)
                if ident is not None:
                    star = "*" if inner.type == "list_splat_pattern" else "**"
                    names.append(star + text(ident))
                continue
            if inner.type != "identifier":
                continue
            name = text(inner)
        elif kind in ("default_parameter", "typed_default_parameter"):
            ident = child.child_by_field_name("name")
            if ident is None or ident.type != "identifier":
                continue
            name = text(ident)
            value = expr(child.child_by_field_name("value"))
            if value is not None:
                defaults.append(["=", [name], value])
        else:
            continue  # `*` and `/` separators
        names.append(name)
        annotation = child.child_by_field_name("type")
        if annotation is not None:
            types[name] = text(annotation)
    return names, types, defaults
