"""One file's bytes to its facts, whatever they hold: too large and binary files are recorded as skipped,
bytes that are not UTF-8 are parsed anyway (tree-sitter reads bytes), syntax errors are counted and the
valid parts still yield their symbols."""

from __future__ import annotations

from cogo.code.facts import FileFacts
from cogo.code.languages import language_of, module_name
from cogo.code.other_parsers import parse_other
from cogo.code.python_parser import parse_python

DEFAULT_SIZE_LIMIT = 1_000_000  # bytes; generated bundles and vendored blobs above this are skipped
BINARY_PROBE = 8_000


def parse_file(path: str, data: bytes, *, blob_sha: str = "", size_limit: int = DEFAULT_SIZE_LIMIT) -> FileFacts | None:
    """Facts of a code file, or None when the path is not a language we parse."""
    language = language_of(path)
    if language is None:
        return None
    facts = FileFacts(
        path=path, language=language, module=module_name(path, language), size_bytes=len(data), blob_sha=blob_sha
    )
    if len(data) > size_limit:
        facts.skipped = "too_large"
        return facts
    if b"\x00" in data[:BINARY_PROBE]:
        facts.skipped = "binary"
        return facts
    if language == "python":
        return parse_python(path, data, facts)
    return parse_other(language, data, facts)
