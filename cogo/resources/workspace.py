"""The workspace root: workspaces/{org}/{user}/{conversation}/files/{uploads,generated,attachments}/."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from cogo.config import Settings


class WorkspaceResource(dg.ConfigurableResource):
    root: str | None = Field(default=None, description="empty: COGO_WORKSPACES_DIR (default ./workspaces).")

    def path(self) -> Path:
        return Path(self.root).expanduser().absolute() if self.root else Settings.from_env().workspaces_dir
