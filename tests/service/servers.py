"""The read service on a real socket, two ways: the app served in this process (uvicorn in a thread: lifespan,
pool, middleware, real HTTP), and `cogo serve` itself in its own processes (granian, its workers and limits)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import uvicorn
from fastapi import FastAPI

from tests.neo4j_server import free_port
from tests.service.helpers import wait_until


@contextmanager
def serving_app(app: FastAPI) -> Iterator[str]:
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


@dataclass
class Served:
    process: subprocess.Popen[str]
    port: int
    url: str


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def cogo_serve(env: dict[str, str], workers: int = 1) -> Iterator[Served]:
    """`cogo serve --workers N` on a free port with `env` (added to this process's), until the block ends, then
    SIGTERM; it must exit 0."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "cogo.cli", "serve", "--port", str(port), "--workers", str(workers)],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(f"{url}/openapi.json") or process.poll() is not None, "cogo serve to answer", 60)
        assert process.poll() is None, "cogo serve exited"
        yield Served(process, port, url)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
