"""The resources every run gets, by the names assets ask for them."""

from __future__ import annotations

from typing import Any

from cogo.resources import GraphResource, PostgresResource
from cogo.resources.clerk import ClerkApiResource
from cogo.resources.embedder import EmbedderResource
from cogo.resources.workspace import WorkspaceResource


def default_resources() -> dict[str, Any]:
    return {
        "postgres": PostgresResource(),
        "graph": GraphResource(),
        "clerk_api": ClerkApiResource(),
        "embedder": EmbedderResource(),
        "workspace": WorkspaceResource(),
    }
