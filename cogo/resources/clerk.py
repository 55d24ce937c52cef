"""The Clerk Backend API for assets. Empty fields fall back to CLERK_API_URL / CLERK_SECRET_KEY, read when
a run uses the resource (never at import), so the code location loads with no secret set."""

from __future__ import annotations

import os

import dagster as dg
from pydantic import Field

from cogo.clerk.api import DEFAULT_API_URL, MAX_PAGE_SIZE, ClerkClient


class ClerkApiResource(dg.ConfigurableResource):
    """Clerk's Backend API (bearer secret key), paged at the largest page size with 429/5xx retries."""

    api_url: str | None = Field(default=None, description=f"empty: CLERK_API_URL, else {DEFAULT_API_URL}")
    secret_key: str | None = Field(default=None, description="empty: CLERK_SECRET_KEY")
    page_size: int = Field(default=MAX_PAGE_SIZE, description="limit per list request (Clerk allows 1..500)")
    max_retries: int = Field(default=6, description="retries of one request after a 429, 5xx or dropped connection")

    def resolved_secret_key(self) -> str | None:
        return self.secret_key or os.environ.get("CLERK_SECRET_KEY") or None

    def resolved_api_url(self) -> str:
        return self.api_url or os.environ.get("CLERK_API_URL") or DEFAULT_API_URL

    def client(self) -> ClerkClient:
        """A client to use as a context manager; raises ClerkApiError when no secret key is configured."""
        return ClerkClient(
            secret_key=self.resolved_secret_key() or "",
            api_url=self.resolved_api_url(),
            page_size=self.page_size,
            max_retries=self.max_retries,
        )
