"""Any OpenAI-compatible embeddings endpoint (`POST {base_url}/embeddings`), over httpx.

Batches by count and by a token budget (the API's per-request limits); retries 429, 5xx and transport errors
with exponential backoff and jitter, waiting what Retry-After asks when the server says; a batch rejected
for its content (another 4xx) is split in halves until the offending text stands alone, so one bad chunk
fails alone and is reported with the server's reason.

Window: OpenAI's embedding models read at most 8,191 tokens of cl100k_base, and add no special tokens. That
tokenizer's BPE files are downloaded at run time (not possible offline), so the room a text takes is bounded
by its UTF-8 length instead: a byte-level BPE token is at least one byte, so a text never has more tokens than
bytes. Chunks under that bound always fit, at the cost of chunks shorter than the window allows.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Callable

import httpx
import numpy as np

from cogo.embed.base import Embedder, EmbedOutcome, normalise
from cogo.embed.batching import token_budget_batches

KNOWN_DIMS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}
DEFAULT_BASE_URL = "https://api.openai.com/v1"
MAX_INPUTS_PER_REQUEST = 2048
MAX_TOKENS_PER_REQUEST = 300_000
MAX_TOKENS_PER_INPUT = 8191  # text-embedding-3-small/-large and ada-002; also assumed for other models


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class _Rejected(Exception):
    """The server refused the request for what it contains (4xx other than 429): retrying will not help."""


def estimate_tokens(text: str) -> int:
    """A conservative token estimate without the model's BPE files (not shipped offline): about 3 bytes per
    token for English and code, fewer for other scripts. The API reports the real count in `usage`."""
    return max(1, math.ceil(len(text.encode("utf-8")) / 3))


def window_bound(text: str) -> int:
    """At least the cl100k_base token count of `text`: its UTF-8 bytes (each token is one byte or more)."""
    return len(text.encode("utf-8"))


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class OpenAIEmbedder(Embedder):
    window_unit = "UTF-8 bytes (the bound on its tokens)"

    def __init__(
        self,
        name: str,
        *,
        api_key: str | None,
        base_url: str | None = None,
        max_retries: int = 5,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 30.0,
        timeout_s: float = 60.0,
        max_inputs: int = MAX_INPUTS_PER_REQUEST,
        max_tokens: int = MAX_TOKENS_PER_REQUEST,
        max_input_tokens: int = MAX_TOKENS_PER_INPUT,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """`max_input_tokens`: the model's window (a compatible server's model may have a smaller one)."""
        super().__init__(f"openai:{name}")
        self.name = name
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.max_inputs = max_inputs
        self.max_tokens = max_tokens
        self._max_input_tokens = max_input_tokens
        self._sleep = sleep
        self._dims = KNOWN_DIMS.get(name, 0)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s)

    @property
    def dims(self) -> int:
        if not self._dims:  # an unknown model: ask it once
            self.embed(["dimension probe"])
        return self._dims

    def dims_if_known(self) -> int:
        return self._dims

    @property
    def max_input_tokens(self) -> int:
        return self._max_input_tokens

    def window_tokens(self, texts: list[str]) -> list[int]:
        return [window_bound(t) for t in texts]

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [estimate_tokens(t) for t in texts]

    def close(self) -> None:
        self._client.close()

    def _embed_outcome(self, texts: list[str]) -> EmbedOutcome:
        lengths = self.count_tokens(texts)
        vectors: dict[int, np.ndarray] = {}
        failures: dict[int, str] = {}
        tokens = 0
        for batch in token_budget_batches(lengths, max_count=self.max_inputs, max_tokens=self.max_tokens):
            tokens += self._embed_batch(texts, batch, vectors, failures)
        dims = self._dims or (len(next(iter(vectors.values()))) if vectors else 1)
        out = np.zeros((len(texts), dims), dtype=np.float32)
        for i, v in vectors.items():
            out[i] = v
        return EmbedOutcome(out, failures, tokens)

    def _embed_batch(
        self, texts: list[str], batch: list[int], vectors: dict[int, np.ndarray], failures: dict[int, str]
    ) -> int:
        try:
            data, used = self._request([texts[i] for i in batch])
        except _Rejected as exc:
            if len(batch) == 1:
                failures[batch[0]] = str(exc)
                return 0
            half = len(batch) // 2
            return self._embed_batch(texts, batch[:half], vectors, failures) + self._embed_batch(
                texts, batch[half:], vectors, failures
            )
        except _Retryable as exc:
            failures.update({i: f"gave up after {self.max_retries} retries: {exc}" for i in batch})
            return 0
        for i, v in zip(batch, normalise(data), strict=True):
            vectors[i] = v
        self._dims = data.shape[1]  # the server is authoritative (a compatible server may serve other sizes)
        return used

    def _request(self, inputs: list[str]) -> tuple[np.ndarray, int]:
        attempt = 0
        while True:
            self.stats.add(calls=1, texts=len(inputs))
            try:
                return self._post(inputs)
            except _Retryable as exc:
                if attempt >= self.max_retries:
                    raise
                delay = exc.retry_after
                if delay is None:
                    delay = min(self.backoff_cap_s, self.backoff_base_s * 2**attempt) * (0.5 + random.random() / 2)
                attempt += 1
                self.stats.add(retries=1)
                self._sleep(min(delay, self.backoff_cap_s * 4))

    def _post(self, inputs: list[str]) -> tuple[np.ndarray, int]:
        try:
            response = self._client.post(
                "/embeddings", json={"model": self.name, "input": inputs, "encoding_format": "float"}
            )
        except httpx.TransportError as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}", None) from None
        if response.status_code == 429 or response.status_code >= 500:
            raise _Retryable(
                f"HTTP {response.status_code}: {_error_message(response)}",
                parse_retry_after(response.headers.get("retry-after")),
            )
        if response.status_code >= 400:
            raise _Rejected(f"HTTP {response.status_code}: {_error_message(response)}")
        body = response.json()
        rows = sorted(body["data"], key=lambda d: d["index"])
        if len(rows) != len(inputs):
            raise _Retryable(f"asked for {len(inputs)} vectors, got {len(rows)}", None)
        data = np.asarray([r["embedding"] for r in rows], dtype=np.float32)
        used = int((body.get("usage") or {}).get("prompt_tokens") or sum(estimate_tokens(t) for t in inputs))
        self.stats.add(tokens=used)
        return data, used


def _error_message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])[:300]
    except Exception:
        return response.text[:300] or response.reason_phrase
