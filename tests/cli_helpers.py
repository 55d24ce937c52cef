"""Running the real `cogo` command in a subprocess with a controlled environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PASSTHROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "JAVA_HOME", "TMPDIR")


def cogo_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: os.environ[k] for k in PASSTHROUGH if k in os.environ}
    env.update({"COGO_HOME": str(home), "COGO_WORKSPACES_DIR": str(home / "workspaces")})
    env.update(extra)
    return env


def run_cogo(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cogo.cli", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def new_shell_env(home: Path) -> dict[str, str]:
    """The environment of a new terminal that knows only COGO_HOME (as after `make run`, whose exports are gone)."""
    env = {k: os.environ[k] for k in PASSTHROUGH if k in os.environ}
    env["COGO_HOME"] = str(home)
    return env


def run_in_bash(env: dict[str, str], script: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`script` in bash, with "$PYTHON" this interpreter (`"$PYTHON" -m cogo.cli` is the real `cogo` command)."""
    env = {**env, "PYTHON": sys.executable}
    return subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=timeout)
