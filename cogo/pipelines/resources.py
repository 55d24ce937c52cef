"""The resources every run gets, by the names assets ask for them."""

from __future__ import annotations

from typing import Any

from cogo.resources import GraphResource, PostgresResource
from cogo.resources.clerk import ClerkApiResource


def default_resources() -> dict[str, Any]:
    return {
        "postgres": PostgresResource(),
        "graph": GraphResource(),
        "clerk_api": ClerkApiResource(),
    }
