"""Assets, one module per lifecycle stage; each is a thin shell over plain, Dagster-free functions.

A stage module exports lists named `assets`, `checks`, `jobs`, `schedules` and `sensors` (any it lacks
count as empty). To add a stage, add its module name to STAGES.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

STAGES: tuple[str, ...] = ("platform", "tasks", "clerk", "retention", "workspace", "knowledge", "code")


def stage_modules() -> list[ModuleType]:
    return [importlib.import_module(f"cogo.assets.{name}") for name in STAGES]


def collect(attribute: str) -> list[Any]:
    return [item for module in stage_modules() for item in getattr(module, attribute, [])]
