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
