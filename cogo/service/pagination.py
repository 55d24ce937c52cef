"""Opaque keyset cursors: the sort key of the last row of a page, base64url-encoded JSON.

A cursor carries no authority: it only says where to resume, and every query that takes one still
filters by the caller's organisation (and row-level security applies regardless).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from typing import Any

import orjson
from fastapi import HTTPException

MAX_CURSOR_CHARS = 512


def encode_cursor(at: dt.datetime, key: Any) -> str:
    raw = orjson.dumps([at.isoformat(), str(key)])  # the bytes of json.dumps(..., separators=(",", ":"))
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    """(timestamp, key) of a cursor from `encode_cursor`; 400 for anything else."""
    try:
        if len(cursor) > MAX_CURSOR_CHARS:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at_text, key = json.loads(raw)
        at = dt.datetime.fromisoformat(at_text)
        if at.tzinfo is None or not isinstance(key, str):
            raise ValueError("not a cursor")
        return at, key
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise HTTPException(400, "invalid cursor: pass next_cursor from a previous page unchanged") from None
