"""A local HTTP server speaking OpenAI's embeddings API (POST /v1/embeddings), for tests.

Vectors are deterministic (a hash of the text spread over `dims` floats). `script` holds responses to give
before normal service, e.g. [(429, {"Retry-After": "2"}), (500, {})]; `reject` texts get a 400."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np


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

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
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

    def _reply(
        self, handler: BaseHTTPRequestHandler, status: int, payload: dict, headers: dict[str, str] | None = None
    ) -> None:
        with self.lock:
            self.statuses.append(status)
        raw = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(raw)))
        for k, v in (headers or {}).items():
            handler.send_header(k, v)
        handler.end_headers()
        handler.wfile.write(raw)

    @property
    def embedding_requests(self) -> int:
        return len(self.requests)


@contextmanager
def embeddings_server(dims: int = 64) -> Iterator[EmbeddingsServer]:
    server = EmbeddingsServer(dims)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            server.handle(self)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
