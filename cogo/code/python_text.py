"""The text of tree-sitter Python nodes: names as dotted parts, literals as values."""

from __future__ import annotations

import re

import tree_sitter as ts

# An attribute whose text is a plain dotted name (no spaces, comments, calls or subscripts) splits on its
# dots; None/True/False are not identifiers in the grammar, so a name starting with one takes the slow path.
_PLAIN_DOTTED = re.compile(r"[^\W\d]\w*(?:\.[^\W\d]\w*)+")
_NOT_IDENTIFIERS = ("None.", "True.", "False.")
_PLAIN_STRING = re.compile(r"""(?:'[^'\\\n]*'|"[^"\\\n]*")""")


def text(node: ts.Node) -> str:
    raw = node.text  # a new bytes object on each access
    return raw.decode("utf-8", "replace") if raw is not None else ""


def dotted(node: ts.Node) -> list[str] | None:
    """A call target or name as dotted parts, or None when it is not a plain dotted name."""
    kind = node.type
    if kind == "identifier":
        return [text(node)]
    if kind == "attribute":
        obj, attr = node.child_by_field_name("object"), node.child_by_field_name("attribute")
        if obj is None or attr is None:
            return None
        if obj.type == "call":
            fn = obj.child_by_field_name("function")
            if fn is not None and fn.type == "identifier" and text(fn) == "super":
                return ["super()", text(attr)]
            return None
        head = dotted(obj)
        return [*head, text(attr)] if head else None
    return None


def callee_parts(node: ts.Node) -> list[str] | None:
    """dotted() of a call target, reading a plain dotted attribute's text once instead of node by node."""
    if node.type == "attribute":
        value = text(node)
        if _PLAIN_DOTTED.fullmatch(value) and not value.startswith(_NOT_IDENTIFIERS):
            return value.split(".")
        return dotted(node)
    if node.type == "identifier":
        return [text(node)]
    return None


def literal(node: ts.Node) -> str | int | None:
    """A plain string or decimal integer literal's value (keys of tables of functions), else None."""
    value = text(node)
    if node.type == "integer":
        return int(value) if value.isdigit() else None
    return value[1:-1] if _PLAIN_STRING.fullmatch(value) else None
