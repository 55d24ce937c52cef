"""Request bodies over the limit are refused with 413 before they are read, over real sockets: by a declared
Content-Length at once (the body is never sent), and in chunks as soon as the limit is passed."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from cogo.config import Settings
from cogo.service.app import create_app
from tests.clerk_fake import SECRET
from tests.real_server import serving_app

LIMIT = 64 * 1024


@pytest.fixture
def base_url(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("CLERK_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("COGO_SERVICE_MAX_BODY_BYTES", str(LIMIT))
    with serving_app(create_app(dataclasses.replace(Settings.from_env(), database_url=database_url))) as url:
        yield url


def _raw_request(base_url: str, head: bytes) -> bytes:
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize("path", ["/webhooks/clerk", "/v1/search"])
def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(base_url: str, path: str) -> None:
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 268435456\r\n\r\n"
    answer = _raw_request(base_url, head.encode())
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"payload_too_large" in answer


def test_a_chunked_body_is_refused_once_it_passes_the_limit(base_url: str, db: psycopg.Connection) -> None:
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(64):  # 4 MB offered, 64 KB allowed
            sent += 65536
            yield b" " * 65536

    try:
        response = httpx.post(f"{base_url}/webhooks/clerk", content=chunks(), timeout=10)
        assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"
    except httpx.WriteError:
        pass  # the server closed the connection after answering, while the client was still sending
    assert sent < 64 * 65536
    assert db.execute("SELECT count(*) FROM clerk_webhook_inbox").fetchone() == (0,)


def test_a_body_under_the_limit_goes_through(base_url: str) -> None:
    response = httpx.post(f"{base_url}/webhooks/clerk", content=b"{}" + b" " * (LIMIT - 10), timeout=10)
    assert response.status_code == 401  # read whole, then refused for its (missing) signature
