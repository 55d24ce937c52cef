"""Source code split by definitions with tree-sitter: each top-level function or class is a segment (a
class too large for one chunk is split into its header and its methods); the code between definitions
(imports, module statements) is kept as segments of its own."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from cogo.knowledge.segments import Segment

LANGUAGE_BY_SUFFIX = {
    ".py": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".java": "java",
}
DEFINITIONS = {
    "python": {"function_definition", "class_definition", "decorated_definition"},
    "javascript": {"function_declaration", "class_declaration", "method_definition", "generator_function_declaration"},
    "typescript": {
        "function_declaration",
        "class_declaration",
        "method_definition",
        "interface_declaration",
        "abstract_class_declaration",
        "type_alias_declaration",
        "enum_declaration",
    },
    "go": {"function_declaration", "method_declaration", "type_declaration"},
    "java": {
        "class_declaration",
        "interface_declaration",
        "enum_declaration",
        "record_declaration",
        "method_declaration",
        "constructor_declaration",
    },
}
DEFINITIONS["tsx"] = DEFINITIONS["typescript"]
WRAPPERS = {"export_statement", "decorated_definition"}


@cache
def parser(language: str) -> Any:
    import tree_sitter

    if language == "python":
        import tree_sitter_python as mod

        lang = mod.language()
    elif language == "javascript":
        import tree_sitter_javascript as mod

        lang = mod.language()
    elif language in ("typescript", "tsx"):
        import tree_sitter_typescript as mod

        lang = mod.language_typescript() if language == "typescript" else mod.language_tsx()
    elif language == "go":
        import tree_sitter_go as mod

        lang = mod.language()
    elif language == "java":
        import tree_sitter_java as mod

        lang = mod.language()
    else:
        raise ValueError(language)
    return tree_sitter.Parser(tree_sitter.Language(lang))


def _is_definition(node: Any, language: str) -> bool:
    if node.type in DEFINITIONS[language]:
        return True
    return node.type in WRAPPERS and any(c.type in DEFINITIONS[language] for c in node.named_children)


def _name(node: Any) -> str | None:
    target = node
    if node.type in WRAPPERS:
        target = next((c for c in node.named_children if c.child_by_field_name("name") is not None), node)
    name = target.child_by_field_name("name")
    if name is None and target.type == "type_declaration":  # go: type_declaration > type_spec > name
        spec = next((c for c in target.named_children if c.child_by_field_name("name") is not None), None)
        name = spec.child_by_field_name("name") if spec else None
    return name.text.decode("utf-8", "replace") if name is not None else None


def _body(node: Any) -> Any | None:
    target = node
    if node.type in WRAPPERS:
        target = next((c for c in node.named_children if c.child_by_field_name("body") is not None), node)
    return target.child_by_field_name("body")


def code_segments(source: str, language: str, count_tokens: Callable[[str], int], max_tokens: int) -> list[Segment]:
    data = source.encode("utf-8")
    tree = parser(language).parse(data)
    segments: list[Segment] = []
    _collect(tree.root_node, data, language, count_tokens, max_tokens, segments, prefix="")
    return [s for s in segments if s.text.strip()]


def _text(data: bytes, start: int, end: int) -> str:
    return data[start:end].decode("utf-8", "replace")


def _collect(
    parent: Any,
    data: bytes,
    language: str,
    count_tokens: Callable[[str], int],
    max_tokens: int,
    out: list[Segment],
    prefix: str,
) -> None:
    """Children of `parent` as segments: definitions alone, the code between them grouped."""
    gap_start: Any = None
    gap_end: Any = None

    def flush_gap() -> None:
        nonlocal gap_start, gap_end
        if gap_start is not None:
            text = _text(data, gap_start.start_byte, gap_end.end_byte)
            position = {"symbol": prefix.rstrip(".")} if prefix else {}
            out.append(Segment(text, position, gap_start.start_point[0] + 1))
        gap_start = gap_end = None

    for child in parent.named_children:
        if not _is_definition(child, language):
            gap_start = gap_start or child
            gap_end = child
            continue
        flush_gap()
        name = _name(child) or child.type
        text = _text(data, child.start_byte, child.end_byte)
        body = _body(child)
        nested = body is not None and any(_is_definition(c, language) for c in body.named_children)
        if nested and count_tokens(text) > max_tokens:
            # The header (signature, docstring up to the first member) and then each member on its own.
            first = next(c for c in body.named_children)
            header = _text(data, child.start_byte, first.start_byte)
            out.append(Segment(header, {"symbol": prefix + name}, child.start_point[0] + 1))
            _collect(body, data, language, count_tokens, max_tokens, out, prefix=f"{prefix}{name}.")
        else:
            out.append(Segment(text, {"symbol": prefix + name}, child.start_point[0] + 1))
    flush_gap()
