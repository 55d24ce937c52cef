"""A segment: a piece of a document's text with where it sits (page, lines, heading, symbol)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Segment:
    text: str
    # Citation fields: {"page": 3} | {"heading": "Intro > Scope"} | {"symbol": "Auth.refresh"} ...
    position: dict[str, Any] = field(default_factory=dict)
    # 1-based line of the segment's first character in the source, when lines mean something there.
    start_line: int | None = None

    @property
    def end_line(self) -> int | None:
        return None if self.start_line is None else self.start_line + self.text.count("\n")
