"""Token-based chunking with overlap, over segments: small neighbouring segments are packed together
(never across pages), a segment longer than the chunk size is cut into overlapping token windows. Tokens
are the local model's WordPiece tokens (its tokenizer ships with the package, works offline). Each chunk
keeps its position for citations, and a deterministic id: a hash of the chunker version and the content.

A chunk reaches its embedders whole: the chunk size is at most an embedder's budget (its window less its
special tokens; cogo.knowledge.targets clamps a profile to it), windows end between words, every chunk is
counted again as it is stored, and a chunk that one of its embedders would still not read whole (another
tokenizer, such as OpenAI's) is cut smaller.

Bump CHUNKER_VERSION whenever the output for the same input could change: every file is chunked again and
the reindex replaces the vectors."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from cogo.knowledge.segments import Segment

if TYPE_CHECKING:
    from cogo.embed.base import Embedder

CHUNKER_VERSION = "c2"
DEFAULT_CHUNK_SIZE = 256  # what an index asks for; clamped to its embedder's budget
DEFAULT_CHUNK_OVERLAP = 32
WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)

Piece = tuple[str, dict[str, Any], int]  # content, position, tokens
T = TypeVar("T")


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

    def encode(self, text: str) -> tuple[list[tuple[int, int]], list[bool]]:
        """Each token's character offsets, and whether it starts a word (the only places to cut: the second
        half of a cut word is tokenized afresh, into other and usually more tokens)."""
        if self._tok is None:
            spans = [m.span() for m in WORD.finditer(text)]
            return spans, [True] * len(spans)
        encoding = self._tok.encode(text, add_special_tokens=False)
        words = encoding.word_ids
        starts = [i == 0 or words[i] != words[i - 1] for i in range(len(words))]
        return [tuple(o) for o in encoding.offsets], starts  # type: ignore[misc]

    def count(self, text: str) -> int:
        if self._tok is None:
            return len(WORD.findall(text))
        return len(self._tok.encode(text, add_special_tokens=False).ids)

    def count_many(self, texts: list[str]) -> list[int]:
        if self._tok is None:
            return [self.count(t) for t in texts]
        return [len(e.ids) for e in self._tok.encode_batch_fast(texts, add_special_tokens=False)]


def chunk_segments(
    segments: list[Segment],
    chunk_size: int,
    overlap: int,
    counter: TokenCounter,
    embedders: Sequence[Embedder] = (),
) -> list[Chunk]:
    """Chunks of at most `chunk_size` tokens, each of which every one of `embedders` reads whole."""
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
    return _fitted([c for c in chunks if c.content.strip()], chunk_size, overlap, counter, embedders)


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


def _fitted(
    chunks: list[Chunk], size: int, overlap: int, counter: TokenCounter, embedders: Sequence[Embedder]
) -> list[Chunk]:
    """Every chunk counted as it is stored (joined or cut text can count differently from its parts); one over
    `size` or over an embedder's window is cut again."""
    out: list[Chunk] = []
    for fits, chunk, n in _checked(chunks, [c.content for c in chunks], size, counter, embedders):
        if fits:
            out.append(Chunk(len(out), chunk.content, chunk.position, n))
            continue
        for content, position, tokens in _split(_as_segment(chunk), n, size, overlap, counter, embedders):
            out.append(Chunk(len(out), content, position, tokens))
    return out


def _checked(
    items: list[T], texts: list[str], size: int, counter: TokenCounter, embedders: Sequence[Embedder]
) -> list[tuple[bool, T, int]]:
    """(fits, item, tokens) per item and its text: it fits with at most `size` tokens, read whole by every
    embedder."""
    if not texts:
        return []
    unreadable = {i for e in embedders for i in e.over_window(texts)}
    counts = counter.count_many(texts)
    return [(n <= size and i not in unreadable, item, n) for i, (item, n) in enumerate(zip(items, counts, strict=True))]


def _as_segment(chunk: Chunk) -> Segment:
    position = {k: v for k, v in chunk.position.items() if k not in ("start_line", "end_line")}
    return Segment(chunk.content, position, chunk.position.get("start_line"))


def _split(
    segment: Segment, tokens: int, size: int, overlap: int, counter: TokenCounter, embedders: Sequence[Embedder]
) -> list[Piece]:
    """`segment` (`tokens` long) cut into windows that fit, each piece that still does not cut again smaller,
    in proportion to how far over it is. A single token over a window is left for the embed stage to refuse."""
    if tokens <= 1:  # nothing left to cut
        return [(segment.text, _window_position(segment, 0, len(segment.text)), tokens)]
    excess = max([tokens / size, *(n / e.max_input_tokens for e in embedders for n in e.window_tokens([segment.text]))])
    smaller = max(1, min(tokens - 1, size, int(tokens / excess)))
    pieces = _windows(segment, smaller, min(overlap, smaller // 2), counter)
    out: list[Piece] = []
    for fits, (content, position, _), n in _checked(pieces, [p[0] for p in pieces], size, counter, embedders):
        if fits:
            out.append((content, position, n))
        else:
            out.extend(_split(_as_segment(Chunk(0, content, position, n)), n, size, overlap, counter, embedders))
    return out


def _windows(segment: Segment, size: int, overlap: int, counter: TokenCounter) -> list[Piece]:
    """Windows of `size` tokens (fewer where a word would be cut), `overlap` tokens shared with the next."""
    text = segment.text
    offsets, starts = counter.encode(text)
    out: list[Piece] = []
    start = 0
    while start < len(offsets):
        end = _word_cut(starts, start, start + size)
        begin_char, end_char = offsets[start][0], offsets[end - 1][1]
        out.append((text[begin_char:end_char], _window_position(segment, begin_char, end_char), end - start))
        if end == len(offsets):
            break
        start = _word_cut(starts, start, max(start + 1, end - overlap))
    return out


def _word_cut(starts: list[bool], low: int, cut: int) -> int:
    """`cut` moved back to the nearest word start after `low`, so that no word is cut in two; `cut` itself
    when a single word fills everything after `low`."""
    if cut >= len(starts):
        return len(starts)
    return next((i for i in range(cut, low, -1) if starts[i]), cut)


def _window_position(segment: Segment, begin_char: int, end_char: int) -> dict[str, Any]:
    position = dict(segment.position)
    if segment.start_line is not None:
        position["start_line"] = segment.start_line + segment.text.count("\n", 0, begin_char)
        position["end_line"] = segment.start_line + segment.text.count("\n", 0, end_char)
    return position
