"""Dagster as it runs in production: a code server, the daemon and the webserver as three processes over the
project's own dagster.yaml (Postgres storage, the queued run coordinator), the way `deploy/` runs them. For the
tests that claim the platform does something by itself, and for bench/bench_upload_latency.py."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from cogo.db.urls import sqlalchemy_psycopg2_url

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _default_signals() -> None:
    # A shell tool may start us with SIGTERM/SIGINT ignored; children inherit that unless reset.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@dataclass
class Topology:
    home: Path  # DAGSTER_HOME
    env: dict[str, str]
    webserver_url: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def instance(self) -> dg.DagsterInstance:
        """The Dagster instance on the same storage (read runs, events and materializations through Dagster's API)."""
        previous = {k: os.environ.get(k) for k in ("DAGSTER_HOME", "COGO_DAGSTER_DATABASE_URL")}
        os.environ.update({k: self.env[k] for k in previous})
        try:
            return dg.DagsterInstance.get()
        finally:
            for k, v in previous.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def logs(self) -> str:
        """The last lines of each process's log, for a failure message."""
        out = []
        for name in self.processes:
            text = (self.home / f"{name}.log").read_text(errors="replace")
            out.append(f"--- {name} ---\n" + "\n".join(text.splitlines()[-40:]))
        return "\n".join(out)

    def wait_for(self, condition: Callable[[], bool], what: str, limit_s: float) -> float:
        """Poll until `condition` holds; seconds waited. Fails with the processes' logs after `limit_s`."""
        started = time.monotonic()
        while not condition():
            for name, process in self.processes.items():
                assert process.poll() is None, f"{name} exited ({process.returncode})\n{self.logs()}"
            assert time.monotonic() - started < limit_s, f"gave up waiting ({limit_s:.0f} s): {what}\n{self.logs()}"
            time.sleep(0.25)
        return time.monotonic() - started


def _start(topology: Topology, name: str, args: list[str]) -> None:
    log = open(topology.home / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
    topology.processes[name] = subprocess.Popen(
        args,
        env=topology.env,
        cwd=topology.home,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_default_signals,
    )
    log.close()


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass


def _url_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@contextmanager
def dagster_topology(home: Path, env: Mapping[str, str], dagster_database_url: str) -> Iterator[Topology]:
    """Start the code server (`dagster code-server start -m cogo.pipelines`), `dagster-daemon run` and
    `dagster-webserver` with DAGSTER_HOME=`home` (the repository's dagster.yaml) and `env`; stop them after."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    code_port, web_port = free_port(), free_port()
    (home / "workspace.yaml").write_text(
        f"load_from:\n  - grpc_server:\n      host: 127.0.0.1\n      port: {code_port}\n      location_name: cogo\n"
    )
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("COGO_", "DAGSTER_", "PYTEST_"))},
        **env,
        "DAGSTER_HOME": str(home),
        "COGO_DAGSTER_DATABASE_URL": sqlalchemy_psycopg2_url(dagster_database_url),
        "PYTHONPATH": str(REPO_ROOT),
    }
    topology = Topology(home, full_env, f"http://127.0.0.1:{web_port}")
    with ExitStack() as stack:
        stack.callback(lambda: [_stop(p) for p in reversed(list(topology.processes.values()))])
        dagster = str(BIN / "dagster")
        _start(
            topology,
            "code-server",
            [dagster, "code-server", "start", "-m", "cogo.pipelines", "-h", "127.0.0.1", "-p", str(code_port)],
        )
        topology.wait_for(lambda: _grpc_ready(code_port), "the code server to answer", 120)
        workspace = str(home / "workspace.yaml")
        _start(topology, "daemon", [str(BIN / "dagster-daemon"), "run", "-w", workspace])
        _start(
            topology,
            "webserver",
            [str(BIN / "dagster-webserver"), "-w", workspace, "-h", "127.0.0.1", "-p", str(web_port)],
        )
        topology.wait_for(lambda: _url_answers(f"{topology.webserver_url}/server_info"), "the webserver", 120)
        yield topology


def _grpc_ready(port: int) -> bool:
    from dagster._grpc.client import DagsterGrpcClient

    try:
        DagsterGrpcClient(port=port, host="127.0.0.1").ping("ready")
        return True
    except Exception:
        return False
