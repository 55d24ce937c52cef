"""Content hash and MIME type of a file, in one streaming pass (a 50 MB file is never held in memory)."""

from __future__ import annotations

import hashlib
import mimetypes
from pathlib import Path
from typing import BinaryIO

# Extensions the platform's mimetypes table may not know, or knows differently on other systems.
EXTRA_TYPES = {
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".py": "text/x-python",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".jsx": "text/javascript",
    ".ts": "text/x-typescript",
    ".tsx": "text/x-typescript",
    ".go": "text/x-go",
    ".java": "text/x-java",
    ".csv": "text/csv",
    ".json": "application/json",
    ".jsonl": "application/jsonl",
    ".html": "text/html",
    ".htm": "text/html",
    ".txt": "text/plain",
    ".log": "text/plain",
    ".yaml": "text/yaml",
    ".yml": "text/yaml",
    ".toml": "text/plain",
    ".sql": "text/x-sql",
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}
MAGIC = [
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"PK\x03\x04", "application/zip"),
]
BUFFER = 1 << 20


def guess_mime(filename: str, head: bytes) -> str:
    suffix = Path(filename).suffix.lower()
    if suffix in EXTRA_TYPES:
        return EXTRA_TYPES[suffix]
    guessed, _ = mimetypes.guess_type(filename, strict=False)
    if guessed:
        return guessed
    for magic, mime in MAGIC:
        if head.startswith(magic):
            return mime
    if not head:
        return "application/octet-stream"
    if b"\x00" in head:
        return "application/octet-stream"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the buffer's end is still text.
        if exc.start < len(head) - 4:
            return "application/octet-stream"
    return "text/plain"


def hash_and_sniff(f: BinaryIO, filename: str) -> tuple[str, int, str]:
    """(sha256 hex, size in bytes, MIME type) of an open file, read to its end."""
    digest = hashlib.sha256()
    size = 0
    head = b""
    while block := f.read(BUFFER):
        if not head:
            head = block[:8192]
        digest.update(block)
        size += len(block)
    return digest.hexdigest(), size, guess_mime(filename, head)
