"""Token-based chunking with overlap, over segments: small neighbouring segments are packed together
(never across pages), a segment longer than the chunk size is cut into overlapping token windows. Tokens
are the local model's WordPiece tokens (its tokenizer ships with the package, works offline). Each chunk
keeps its position for citations, and a deterministic id: a hash of the chunker version and the content.

Bump CHUNKER_VERSION whenever the output for the same input could change: every file is chunked again and
the reindex replaces the vectors."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from cogo.knowledge.segments import Segment

CHUNKER_VERSION = "c1"
DEFAULT_CHUNK_SIZE = 256
DEFAULT_CHUNK_OVERLAP = 32
WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def chunk_profile(chunk_size: int, chunk_overlap: int, version: str = CHUNKER_VERSION) -> str:
    return f"{version}/{chunk_size}/{chunk_overlap}"


def parse_profile(profile: str) -> tuple[str, int, int]:
    version, size, overlap = profile.split("/")
    return version, int(size), int(overlap)


def chunk_id(content: str, version: str = CHUNKER_VERSION) -> str:
    return hashlib.sha256(f"{version}\x00{content}".encode()).hexdigest()[:32]


def content_sha256(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()


@dataclass
class Chunk:
    index: int
    content: str
    position: dict[str, Any]
    token_count: int

    @property
    def chunk_id(self) -> str:
        return chunk_id(self.content)

    @property
    def content_sha256(self) -> str:
        return content_sha256(self.content)


class TokenCounter:
    """Token offsets with the local model's tokenizer; a word/punctuation regex if it is not installed."""

    def __init__(self) -> None:
        try:
            from cogo.embed.local import tokenizer

            self._tok: Any = tokenizer()
        except Exception:
            self._tok = None

    def offsets(self, text: str) -> list[tuple[int, int]]:
        if self._tok is None:
            return [m.span() for m in WORD.finditer(text)]
        return [tuple(o) for o in self._tok.encode(text, add_special_tokens=False).offsets]  # type: ignore[misc]

    def count(self, text: str) -> int:
        if self._tok is None:
            return len(WORD.findall(text))
        return len(self._tok.encode(text, add_special_tokens=False).ids)

    def count_many(self, texts: list[str]) -> list[int]:
        if self._tok is None:
            return [self.count(t) for t in texts]
        return [len(e.ids) for e in self._tok.encode_batch_fast(texts, add_special_tokens=False)]


def chunk_segments(segments: list[Segment], chunk_size: int, overlap: int, counter: TokenCounter) -> list[Chunk]:
    counts = counter.count_many([s.text for s in segments])
    chunks: list[Chunk] = []
    pack: list[tuple[Segment, int]] = []

    def flush() -> None:
        if pack:
            chunks.append(_packed(pack, len(chunks)))
            pack.clear()

    for segment, n in zip(segments, counts, strict=True):
        if n > chunk_size:
            flush()
            for content, position, tokens in _windows(segment, chunk_size, overlap, counter):
                chunks.append(Chunk(len(chunks), content, position, tokens))
            continue
        same_page = not pack or pack[0][0].position.get("page") == segment.position.get("page")
        if pack and (sum(c for _, c in pack) + n > chunk_size or not same_page):
            flush()
        pack.append((segment, n))
    flush()
    return [c for c in chunks if c.content.strip()]


def _packed(pack: list[tuple[Segment, int]], index: int) -> Chunk:
    first = pack[0][0]
    content = "\n\n".join(s.text.strip("\n") for s, _ in pack)
    position = dict(first.position)
    symbols = [s.position["symbol"] for s, _ in pack if s.position.get("symbol")]
    if len(symbols) > 1:
        position["symbol"] = symbols[0]
        position["symbols"] = symbols
    if first.start_line is not None:
        position["start_line"] = first.start_line
        position["end_line"] = max(s.end_line or 0 for s, _ in pack)
    return Chunk(index, content, position, sum(n for _, n in pack))


def _windows(segment: Segment, size: int, overlap: int, counter: TokenCounter) -> list[tuple[str, dict[str, Any], int]]:
    text = segment.text
    offsets = counter.offsets(text)
    out: list[tuple[str, dict[str, Any], int]] = []
    step = max(1, size - overlap)
    start = 0
    while start < len(offsets):
        end = min(start + size, len(offsets))
        begin_char, end_char = offsets[start][0], offsets[end - 1][1]
        position = dict(segment.position)
        if segment.start_line is not None:
            position["start_line"] = segment.start_line + text.count("\n", 0, begin_char)
            position["end_line"] = segment.start_line + text.count("\n", 0, end_char)
        out.append((text[begin_char:end_char], position, end - start))
        if end == len(offsets):
            break
        start += step
    return out
