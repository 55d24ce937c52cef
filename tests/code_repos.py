"""Git repositories the code-graph tests build: real `git` commits with fixed dates, so every run of a
test sees the same hashes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

TASK_ID = "7d9f1c2a-4b1e-4c3a-9f00-0123456789ab"


class Repo:
    def __init__(self, path: Path, *, init: bool = True, tick: int = 0):
        self.path = path
        self.path.mkdir(parents=True, exist_ok=True)
        self._tick = tick
        if init:
            self.git("init", "-q", "-b", "main")

    def git(self, *args: str) -> str:
        self._tick += 1
        date = f"2026-01-01T00:{self._tick // 60:02d}:{self._tick % 60:02d}+00:00"
        env = {
            **os.environ,
            "GIT_AUTHOR_NAME": "Ada",
            "GIT_AUTHOR_EMAIL": "ada@example.com",
            "GIT_COMMITTER_NAME": "Ada",
            "GIT_COMMITTER_EMAIL": "ada@example.com",
            "GIT_AUTHOR_DATE": date,
            "GIT_COMMITTER_DATE": date,
        }
        out = subprocess.run(["git", "-C", str(self.path), *args], env=env, capture_output=True, check=True)
        return out.stdout.decode().strip()

    def write(self, rel: str, content: str | bytes) -> None:
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            target.write_text(content)
        else:
            target.write_bytes(content)

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")


AUTH_V1 = '''"""Authentication helpers."""
import jwt
from .util import helper as h


def login(user, password):
    """Check a password.

    Concepts: Authentication
    """
    return h(user) and verify(password)


def verify(password):
    return bool(password)


class TokenService:
    """Tokens."""

    def refresh(self, token: str) -> str:
        self.check(token)
        return jwt.encode(token)

    def check(self, token):
        return login(token, token)
'''

AUTH_V2 = (
    AUTH_V1.replace("return bool(password)", "return len(password) > 8")
    + """

def logout(user):
    return verify(user)
"""
)

AUTH_V3 = AUTH_V2.replace("from .util import helper as h", "from .helpers import helper as h")
AUTH_V4 = AUTH_V3.replace(
    """

def logout(user):
    return verify(user)
""",
    "",
)

FEATURE = """from app.auth import login


def feature(user):
    return login(user, "secret")
"""


def build_history(path: Path) -> dict[str, str]:
    """The scenario: add, change (with a task trailer), rename, delete, odd files, a merge. Returns the
    commit hashes by step name."""
    repo = Repo(path)
    commits: dict[str, str] = {}
    repo.write("requirements.txt", "pyjwt==2.8.0\n")
    repo.write("app/__init__.py", '"""The demo app."""\n')
    repo.write("app/auth.py", AUTH_V1)
    repo.write("app/util.py", "def helper(x):\n    return x\n")
    repo.write("app/old.py", "def legacy():\n    return 1\n")
    repo.write("README.md", "# demo\n")
    commits["add"] = repo.commit("Add the app")
    repo.write("app/auth.py", AUTH_V2)
    commits["change"] = repo.commit(f"Stricter passwords, logout\n\nTask-Id: {TASK_ID}")
    repo.git("mv", "app/util.py", "app/helpers.py")
    repo.write("app/auth.py", AUTH_V3)
    commits["rename"] = repo.commit("Rename util to helpers")
    repo.git("rm", "-q", "app/old.py")
    repo.write("app/auth.py", AUTH_V4)
    commits["delete"] = repo.commit("Remove logout and the legacy module")
    repo.write("app/broken.py", "def fine():\n    return 1\n\ndef broken(:\n    pass\n")
    repo.write("app/latin1.py", b"# caf\xe9 cr\xe8me\ndef latin():\n    return '\xe9'\n")
    repo.write("app/blob.py", b"\x00\x01\x02binary\x00" * 10)
    repo.write("assets/logo.png", b"\x89PNG\r\n\x1a\n\x00\x00" + bytes(range(256)))
    big = "".join(f"def generated_{i}():\n    return {i}\n\n" for i in range(200_000))
    repo.write("app/generated.py", big[: 5 * 1024 * 1024])
    commits["odd_files"] = repo.commit("Odd files: a syntax error, latin-1, binary, 5 MB generated")
    repo.git("checkout", "-q", "-b", "feature")
    repo.write("app/feature.py", FEATURE)
    commits["feature_branch"] = repo.commit("Feature on a branch")
    repo.git("checkout", "-q", "main")
    repo.write("app/helpers.py", "def helper(x):\n    return x or None\n")
    commits["main_after_branch"] = repo.commit("Helpers return None")
    repo.git("merge", "-q", "--no-ff", "-m", "Merge feature", "feature")
    commits["merge"] = repo.head()
    return commits
