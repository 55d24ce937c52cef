"""The read service on a real socket: uvicorn serving the app on a free loopback port in a thread, as in
production (lifespan, pool, middleware), for tests that talk HTTP to it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from cogo.service.base_app import ReadServiceApp
from tests.neo4j_server import free_port
from tests.service_helpers import wait_until


@contextmanager
def serving_app(app: ReadServiceApp) -> Iterator[str]:
    """Serve `app` until the block ends; yields its base URL (no trailing slash)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), "the server to start", 30)
    assert server.started, "the server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
