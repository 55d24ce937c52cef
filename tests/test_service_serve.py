"""`cogo serve --workers N`: worker processes on their own SO_REUSEPORT sockets, supervised by the parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from tests.cli_helpers import cogo_env, run_cogo
from tests.neo4j_server import free_port


def wait_until_served(url: str, deadline_s: float = 60) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError(f"{url} never answered")


def listeners(server_pid: int, port: int) -> list[psutil.Process]:
    """The server's child processes listening on `port` themselves (multiprocessing adds a resource tracker)."""
    found = []
    for child in psutil.Process(server_pid).children():
        try:
            if any(c.laddr.port == port and c.status == psutil.CONN_LISTEN for c in child.net_connections()):
                found.append(child)
        except psutil.NoSuchProcess:
            pass
    return found


def test_workers_share_the_port_restart_when_killed_and_stop_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = cogo_env(tmp_path / "home")
    server = subprocess.Popen(
        [sys.executable, "-m", "cogo.cli", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until_served(f"http://127.0.0.1:{port}/openapi.json")
        # Each worker listens on the port itself (SO_REUSEPORT), not on a socket inherited from the parent.
        # The first worker may answer before the second has started listening.
        deadline = time.monotonic() + 60
        while len(workers := listeners(server.pid, port)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(workers) == 2

        # A second server on the same port is refused, not silently added to the first one's workers.
        second = run_cogo(env, "serve", "--port", str(port), "--workers", "2", timeout=60)
        assert second.returncode != 0 and f"127.0.0.1:{port}" in second.stderr

        # A worker that dies is replaced; the port keeps answering.
        os.kill(workers[0].pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            alive = listeners(server.pid, port)
            if len(alive) == 2 and workers[0].pid not in {p.pid for p in alive}:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the killed worker was not replaced")
        wait_until_served(f"http://127.0.0.1:{port}/openapi.json")
        for _ in range(20):
            assert httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=5).status_code == 200
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0
    # Every worker is gone and the port is free again.
    assert not any(c.laddr.port == port and c.status == psutil.CONN_LISTEN for c in psutil.net_connections("tcp"))


def test_workers_run_on_uvloop_and_httptools() -> None:
    import uvloop
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from cogo.service.server import _config

    config = _config(None)
    loop = config.get_loop_factory()()  # type: ignore[misc]
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()
    assert isinstance(config.http, type) and issubclass(config.http, HttpToolsProtocol)


def test_writes_in_one_pass_of_the_loop_leave_as_one_and_close_sends_what_is_held() -> None:
    import asyncio
    import socket

    import uvloop

    from cogo.service.server import CoalescingTransport

    async def run() -> list[bytes | None]:
        loop = asyncio.get_running_loop()
        ours, peer = socket.socketpair()
        peer.setblocking(False)
        transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
        coalescing = CoalescingTransport(transport, loop)  # type: ignore[arg-type]

        def received() -> bytes | None:
            try:
                return peer.recv(1 << 20)
            except BlockingIOError:
                return None

        seen: list[bytes | None] = []
        coalescing.write(b"HTTP/1.1 200 OK\r\n\r\n")
        coalescing.write(b"body")
        seen.append(received())  # nothing sent while this pass of the loop writes
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        seen.append(received())  # both, once the pass is over
        big = b"x" * (CoalescingTransport.MAX_HELD_BYTES + 1)
        coalescing.write(big)  # more than it holds: written at once
        seen.append(b"" if received() else None)
        while received():
            await asyncio.sleep(0.01)
        coalescing.write(b"last words")
        coalescing.close()  # writes what it holds first
        await asyncio.sleep(0.05)
        seen.append(received())
        assert coalescing.is_closing()  # the rest is the socket transport's
        peer.close()
        return seen

    assert uvloop.run(run()) == [None, b"HTTP/1.1 200 OK\r\n\r\nbody", b"", b"last words"]
