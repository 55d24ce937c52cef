"""A local HTTP server speaking OpenAI's embeddings API (POST /v1/embeddings), for tests.

Vectors are deterministic (a hash of the text spread over `dims` floats). `script` holds responses to give
before normal service, e.g. [(429, {"Retry-After": "2"}), (500, {})]; `reject` texts get a 400."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from tests.local_http import JsonHandler, serving


def fake_vector(text: str, dims: int) -> list[float]:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(dims).astype(np.float32).tolist()


class EmbeddingsServer:
    def __init__(self, dims: int = 64) -> None:
        self.dims = dims
        self.script: list[tuple[int, dict[str, str]]] = []
        self.reject: set[str] = set()
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.lock = threading.Lock()
        self.url = ""

    def handle(self, handler: JsonHandler) -> None:
        length = int(handler.headers.get("Content-Length", 0))
        body = json.loads(handler.rfile.read(length) or b"{}")
        with self.lock:
            self.requests.append({"body": body, "auth": handler.headers.get("Authorization")})
            scripted = self.script.pop(0) if self.script else None
        if handler.path != "/v1/embeddings":
            return self._reply(handler, 404, {"error": {"message": "not found"}})
        if scripted:
            status, headers = scripted
            return self._reply(handler, status, {"error": {"message": f"scripted {status}"}}, headers)
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        bad = [t for t in inputs if t in self.reject]
        if bad:
            return self._reply(handler, 400, {"error": {"message": f"input rejected: {bad[0][:20]}"}})
        data = [
            {"object": "embedding", "index": i, "embedding": fake_vector(t, self.dims)} for i, t in enumerate(inputs)
        ]
        # Out of order on purpose: clients must sort by index.
        usage = {"prompt_tokens": sum(len(t.split()) for t in inputs), "total_tokens": 0}
        self._reply(handler, 200, {"object": "list", "data": data[::-1], "model": body["model"], "usage": usage})

    def _reply(self, handler: JsonHandler, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
        with self.lock:
            self.statuses.append(status)
        handler.send_json(status, payload, headers)

    @property
    def embedding_requests(self) -> int:
        return len(self.requests)


@contextmanager
def embeddings_server(dims: int = 64) -> Iterator[EmbeddingsServer]:
    server = EmbeddingsServer(dims)

    class Handler(JsonHandler):
        def do_POST(self) -> None:
            server.handle(self)

    with serving(Handler) as base_url:
        server.url = f"{base_url}/v1"
        yield server
