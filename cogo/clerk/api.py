"""A small client for the Clerk Backend API's list endpoints, paged with limit/offset at the largest page.

GET /organizations and GET /organization_memberships (the instance-wide list) answer {data, total_count};
GET /users answers a bare JSON array and its total comes from GET /users/count. A 429 waits Retry-After
seconds; a 5xx or a dropped connection is retried with exponential backoff and jitter.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from cogo.errors import CogoError

DEFAULT_API_URL = "https://api.clerk.com/v1"
MAX_PAGE_SIZE = 500  # Clerk's limit for these list endpoints (1..500)


class ClerkApiError(CogoError):
    """Clerk refused or kept failing; the pull is incomplete."""


@dataclass
class Page:
    items: list[dict[str, Any]]
    total_count: int | None


@dataclass
class ClerkClient:
    secret_key: str
    api_url: str = DEFAULT_API_URL
    page_size: int = MAX_PAGE_SIZE
    max_retries: int = 6
    backoff_s: float = 0.5
    max_wait_s: float = 60.0
    timeout_s: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    requests_made: int = 0
    waits: list[float] = field(default_factory=list)
    _http: httpx.Client | None = None

    def __post_init__(self) -> None:
        if not self.secret_key:
            raise ClerkApiError("CLERK_SECRET_KEY is not set: the Clerk Backend API needs it.")

    def __enter__(self) -> ClerkClient:
        self._http = httpx.Client(
            base_url=self.api_url.rstrip("/") + "/",
            headers={"Authorization": f"Bearer {self.secret_key}", "Accept": "application/json"},
            timeout=self.timeout_s,
        )
        return self

    def __exit__(self, *_: object) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET with retries: 429 honours Retry-After, 5xx and transport errors back off exponentially."""
        if self._http is None:
            raise RuntimeError("use ClerkClient as a context manager")
        for attempt in range(self.max_retries + 1):
            self.requests_made += 1
            try:
                response = self._http.get(path.lstrip("/"), params=params)
            except httpx.TransportError as exc:
                if attempt == self.max_retries:
                    raise ClerkApiError(f"GET {path}: {type(exc).__name__} after {attempt + 1} attempts") from None
                self._wait(self._backoff(attempt))
                continue
            if response.status_code == 429 and attempt < self.max_retries:
                self._wait(self._retry_after(response, attempt))
                continue
            if response.status_code >= 500 and attempt < self.max_retries:
                self._wait(self._backoff(attempt))
                continue
            if response.status_code >= 400:
                raise ClerkApiError(f"GET {path}: HTTP {response.status_code} {_clerk_message(response)}")
            return decode_json(response.content, path)
        raise AssertionError("unreachable")

    def _wait(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.sleep(seconds)

    def _backoff(self, attempt: int) -> float:
        return min(self.max_wait_s, self.backoff_s * 2**attempt) * random.uniform(0.5, 1.0)

    def _retry_after(self, response: httpx.Response, attempt: int) -> float:
        header = response.headers.get("Retry-After")
        try:
            return min(self.max_wait_s, max(0.0, float(header))) if header is not None else self._backoff(attempt)
        except ValueError:  # an HTTP date: rare from Clerk; back off instead of parsing it
            return self._backoff(attempt)

    def pages(self, path: str, *, bare_array: bool = False) -> Iterator[Page]:
        """Every page of a list endpoint, oldest first so that objects created during the pull land on
        later pages instead of shifting earlier ones."""
        offset = 0
        while True:
            body = self.get(path, {"limit": self.page_size, "offset": offset, "order_by": "+created_at"})
            if bare_array:
                if not isinstance(body, list):
                    raise ClerkApiError(f"GET {path}: expected a JSON array")
                page = Page(body, None)
            else:
                if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                    raise ClerkApiError(f"GET {path}: expected {{data, total_count}}")
                page = Page(body["data"], body.get("total_count"))
            yield page
            if len(page.items) < self.page_size:
                return
            offset += len(page.items)

    def organizations(self) -> Iterator[Page]:
        return self.pages("/organizations")

    def memberships(self) -> Iterator[Page]:
        return self.pages("/organization_memberships")

    def users(self) -> Iterator[Page]:
        return self.pages("/users", bare_array=True)

    def user_count(self) -> int:
        body = self.get("/users/count")
        return int(body["total_count"])


def decode_json(body: bytes, path: str) -> Any:
    """orjson: a page of 500 users is ~0.5 MB, which json.loads takes several times longer to decode. (orjson
    reads an integer beyond 64 bits as a float, as Clerk's JavaScript clients would; json.loads is the
    fallback for what orjson refuses.)"""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body)
    except ValueError:
        raise ClerkApiError(f"GET {path}: the answer is not JSON") from None


def _clerk_message(response: httpx.Response) -> str:
    try:
        errors = response.json().get("errors") or []
        return "; ".join(str(e.get("long_message") or e.get("message")) for e in errors) or response.reason_phrase
    except (ValueError, AttributeError):
        return response.reason_phrase
