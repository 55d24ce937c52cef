"""Settings read from the environment (at call time, never at import time)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_EMBEDDER = "local:all-MiniLM-L6-v2"


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str | None
    graph_url: str | None
    neo4j_user: str
    neo4j_password: str | None
    workspaces_dir: Path
    repos: tuple[Path, ...]
    embedder: str
    retention_days: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        repos = tuple(Path(p.strip()).expanduser() for p in env.get("COGO_REPOS", "").split(",") if p.strip())
        return cls(
            home=Path(env.get("COGO_HOME") or ".cogo").expanduser().absolute(),
            database_url=env.get("COGO_DATABASE_URL") or None,
            graph_url=env.get("COGO_GRAPH_URL") or None,
            neo4j_user=env.get("NEO4J_USER") or "neo4j",
            neo4j_password=env.get("NEO4J_PASSWORD") or None,
            workspaces_dir=Path(env.get("COGO_WORKSPACES_DIR") or "workspaces").expanduser().absolute(),
            repos=repos,
            embedder=env.get("COGO_EMBEDDER") or DEFAULT_EMBEDDER,
            retention_days=int(env.get("COGO_RETENTION_DAYS") or 30),
        )

    @property
    def pgdata(self) -> Path:
        return self.home / "pg"

    @property
    def graph_dir(self) -> Path:
        return self.home / "graph"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def uses_embedded_postgres(self) -> bool:
        return self.database_url is None

    @property
    def uses_neo4j(self) -> bool:
        return bool(self.graph_url) and self.graph_url.split("://", 1)[0].startswith(("bolt", "neo4j"))
