"""Text out of a file, as segments with positions: plain text, Markdown, source code, PDF (pypdf), DOCX
(python-docx), HTML (BeautifulSoup with lxml), CSV and JSON. Images and other binaries have no text.
A file that cannot be read is an Extraction with status 'failed' and the reason; nothing raises."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cogo.knowledge.code import LANGUAGE_BY_SUFFIX, code_segments
from cogo.knowledge.segments import Segment

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
MARKDOWN_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
HTML_HEADINGS = ["h1", "h2", "h3", "h4", "h5", "h6"]
HEADING_MARK = "\x00H"


@dataclass
class Extraction:
    status: str  # ok | no_text | too_large | failed
    extractor: str
    segments: list[Segment] = field(default_factory=list)
    reason: str | None = None

    @property
    def characters(self) -> int:
        return sum(len(s.text) for s in self.segments)


def extractor_for(filename: str, mime: str | None) -> str:
    suffix = Path(filename).suffix.lower()
    mime = mime or ""
    if suffix in LANGUAGE_BY_SUFFIX:
        return "code"
    if suffix == ".pdf" or mime == "application/pdf":
        return "pdf"
    if suffix == ".docx" or mime.endswith("wordprocessingml.document"):
        return "docx"
    if suffix in (".html", ".htm") or mime == "text/html":
        return "html"
    if suffix in (".md", ".markdown") or mime == "text/markdown":
        return "markdown"
    if suffix == ".csv" or mime == "text/csv":
        return "csv"
    if suffix in (".json", ".jsonl") or mime in ("application/json", "application/jsonl"):
        return "json"
    if mime.startswith("text/") or mime in ("application/xml", "application/x-yaml"):
        return "text"
    return "binary"


def extract(
    data: bytes,
    filename: str,
    mime: str | None,
    *,
    count_tokens: Callable[[str], int],
    max_tokens: int,
) -> Extraction:
    """The text of a file's bytes (read and verified by the caller, see cogo.workspace.fs.read_registered)."""
    kind = extractor_for(filename, mime)
    if kind == "binary":
        return Extraction("no_text", kind, reason=f"no text extractor for {mime or 'unknown type'}")
    if not data:
        return Extraction("no_text", kind, reason="empty file")
    try:
        segments = EXTRACTORS[kind](data, Path(filename), count_tokens, max_tokens)
    except Exception as exc:  # any parser error is this file's failure, recorded with its reason
        return Extraction("failed", kind, reason=f"{type(exc).__name__}: {exc}"[:500])
    segments = [s for s in segments if s.text.strip()]
    if not segments:
        return Extraction("no_text", kind, reason="no text found")
    return Extraction("ok", kind, segments)


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM); otherwise the encoding charset-normalizer detects (Windows-1252 when it
    only knows the text is some single-byte Latin encoding)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data[: 1 << 20]).best()
    encoding = best.encoding if best is not None and best.encoding else "latin_1"
    # Short texts leave single-byte Latin encodings indistinguishable; Windows-1252 is by far the most common.
    if encoding.startswith(("cp125", "iso8859", "latin", "mac_")):
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            pass
    return data.decode(encoding, errors="replace")


def _text(data: bytes, path: Path, count_tokens: Callable[[str], int], max_tokens: int) -> list[Segment]:
    text = decode_text(data)
    if "\x00" in text:
        raise ValueError("NUL bytes in text: binary content")
    return [Segment(text, {}, 1)]


def _markdown(data: bytes, path: Path, count_tokens: Callable[[str], int], max_tokens: int) -> list[Segment]:
    lines = decode_text(data).splitlines(keepends=True)
    segments: list[Segment] = []
    trail: list[str] = []
    start, buf = 1, []
    in_fence = False
    has_body = False  # a heading with nothing under it yet stays with the section that follows
    for n, line in enumerate(lines, start=1):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        match = None if in_fence else MARKDOWN_HEADING.match(line.rstrip("\n"))
        if match:
            if has_body:
                segments.append(_section(buf, trail, start))
                start, buf, has_body = n, [], False
            elif not any(text.strip() for text in buf):  # only blank lines so far: the section starts here
                start, buf = n, []
            level = len(match.group(1))
            trail = [*trail[: level - 1], match.group(2)]
            buf.append(line)
        else:
            buf.append(line)
            has_body = has_body or bool(line.strip())
    if buf:
        segments.append(_section(buf, trail, start))
    return segments


def _section(lines: list[str], trail: list[str], start: int) -> Segment:
    return Segment("".join(lines), {"heading": " > ".join(trail)} if trail else {}, start)


def _code(data: bytes, path: Path, count_tokens: Callable[[str], int], max_tokens: int) -> list[Segment]:
    source = decode_text(data)
    return code_segments(source, LANGUAGE_BY_SUFFIX[path.suffix.lower()], count_tokens, max_tokens)


def _pdf(data: bytes, path: Path, count_tokens: Callable[[str], int], max_tokens: int) -> list[Segment]:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted:
        raise ValueError("encrypted PDF")
    return [Segment(page.extract_text() or "", {"page": n}) for n, page in enumerate(reader.pages, start=1)]


def _docx(data: bytes, path: Path, count_tokens: Callable[[str], int], max_tokens: int) -> list[Segment]:
    import docx

    document = docx.Document(io.BytesIO(data))
    segments: list[Segment] = []
    trail: list[str] = []
    buf: list[str] = []
    has_body = False  # a heading with nothing under it yet stays with the section that follows
    for paragraph in document.paragraphs:
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        if style.startswith("Heading") or style == "Title":
            if has_body:
                segments.append(Segment("\n".join(buf), {"heading": " > ".join(trail)} if trail else {}))
                buf, has_body = [], False
            level = int(style.split()[-1]) if style.split()[-1].isdigit() else 1
            trail = [*trail[: level - 1], paragraph.text.strip()]
            buf.append(paragraph.text)
        elif paragraph.text.strip():
            buf.append(paragraph.text)
            has_body = True
    if buf:
        segments.append(Segment("\n".join(buf), {"heading": " > ".join(trail)} if trail else {}))
    for t, table in enumerate(document.tables, start=1):
        rows = [" | ".join(cell.text.strip() for cell in row.cells) for row in table.rows]
        segments.append(Segment("\n".join(rows), {"table": t}))
    return segments


def _html(data: bytes, path: Path, count_tokens: Callable[[str], int], max_tokens: int) -> list[Segment]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(data, "lxml")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    for heading in soup.find_all(HTML_HEADINGS):
        heading.replace_with(f"\n{HEADING_MARK}{heading.name[1]} {heading.get_text(' ', strip=True)}\n")
    text = soup.get_text("\n")
    segments: list[Segment] = []
    trail: list[str] = []
    buf: list[str] = []
    has_body = False  # a heading with nothing under it yet stays with the section that follows
    for line in text.splitlines():
        if line.startswith(HEADING_MARK):
            if has_body:
                segments.append(Segment("\n".join(buf), {"heading": " > ".join(trail)} if trail else {}))
                buf, has_body = [], False
            level, title = int(line[2]), line[4:].strip()
            trail = [*trail[: level - 1], title]
            buf.append(title)
        elif line.strip():
            buf.append(line.strip())
            has_body = True
    if buf:
        segments.append(Segment("\n".join(buf), {"heading": " > ".join(trail)} if trail else {}))
    return segments


def _csv(data: bytes, path: Path, count_tokens: Callable[[str], int], max_tokens: int) -> list[Segment]:
    """One line per record, 'column: value; ...', so a chunk is readable alone; lines are the file's rows."""
    text = decode_text(data)
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        return []
    lines = ["; ".join(f"{h}: {v}" for h, v in zip(header, row, strict=False) if v.strip()) for row in reader]
    return [Segment("\n".join(lines), {}, 2)]


def _json(data: bytes, path: Path, count_tokens: Callable[[str], int], max_tokens: int) -> list[Segment]:
    """Flattened to 'a.b[0].c: value' lines; one segment per top-level key (its heading)."""
    text = decode_text(data)
    if path.suffix.lower() == ".jsonl":
        docs = [json.loads(line) for line in text.splitlines() if line.strip()]
        return [Segment("\n".join(_flatten(d, "")), {"record": i}) for i, d in enumerate(docs, start=1)]
    doc = json.loads(text)
    if isinstance(doc, dict):
        return [Segment("\n".join(_flatten(v, k)), {"heading": k}) for k, v in doc.items()]
    return [Segment("\n".join(_flatten(doc, "")), {})]


def _flatten(value: Any, prefix: str) -> list[str]:
    if isinstance(value, dict):
        return [line for k, v in value.items() for line in _flatten(v, f"{prefix}.{k}" if prefix else k)]
    if isinstance(value, list):
        return [line for i, v in enumerate(value) for line in _flatten(v, f"{prefix}[{i}]")]
    return [f"{prefix}: {value}" if prefix else str(value)]


EXTRACTORS: dict[str, Callable[[bytes, Path, Callable[[str], int], int], list[Segment]]] = {
    "text": _text,
    "markdown": _markdown,
    "code": _code,
    "pdf": _pdf,
    "docx": _docx,
    "html": _html,
    "csv": _csv,
    "json": _json,
}
