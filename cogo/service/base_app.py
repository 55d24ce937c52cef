"""The read service's FastAPI class: FastAPI plus layers in front of all of it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send


class ReadServiceApp(FastAPI):
    """FastAPI with `outer_middleware`: layers in front of the whole app (FastAPI's per-request telemetry check,
    Starlette's error and body-limit middleware), so that a request such a layer answers itself
    (cogo.service.hot_reads) pays for none of them. The first entry is the outermost. A layer must answer only
    what cannot fail, and hand everything else on.

    Concepts: Performance
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.outer_middleware: list[Callable[[ASGIApp], ASGIApp]] = []
        self.outer_stack: ASGIApp | None = None  # built at the first request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.outer_stack is None:
            stack: ASGIApp = super().__call__
            for layer in reversed(self.outer_middleware):
                stack = layer(stack)
            self.outer_stack = stack
        scope["app"] = self
        await self.outer_stack(scope, receive, send)
