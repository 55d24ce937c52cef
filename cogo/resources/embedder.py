"""The embedder for assets: COGO_EMBEDDER (`local:all-MiniLM-L6-v2` by default, or `openai:<model>` with
OPENAI_API_KEY and OPENAI_BASE_URL), read when a run starts."""

from __future__ import annotations

import os

import dagster as dg
from pydantic import Field

from cogo.config import Settings
from cogo.embed import Embedder, get_embedder


class EmbedderResource(dg.ConfigurableResource):
    """Empty fields fall back to the environment. `for_model` serves the other models agents choose
    (agent_knowledge_sources.embedding_model) with the same endpoint settings."""

    model: str | None = Field(default=None, description="local:<name> or openai:<model>; empty: COGO_EMBEDDER.")
    openai_base_url: str | None = Field(default=None, description="empty: OPENAI_BASE_URL or OpenAI's.")
    openai_api_key: str | None = Field(default=None, description="empty: OPENAI_API_KEY.")

    def default_model(self) -> str:
        return self.model or Settings.from_env().embedder

    def for_model(self, model: str | None = None) -> Embedder:
        return get_embedder(
            model or self.default_model(),
            api_key=self.openai_api_key or os.environ.get("OPENAI_API_KEY"),
            base_url=self.openai_base_url or os.environ.get("OPENAI_BASE_URL"),
        )
