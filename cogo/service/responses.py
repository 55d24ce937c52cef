"""Fast JSON bodies for the hot read routes.

The conversation and message pages are the copilot's most frequent requests. Building pydantic models for
every row and serialising them again cost more than the query itself, so those routes send rows as plain
dicts through orjson (UUIDs and datetimes as the models would render them), and JSON columns go from
Postgres to the body as they are, never parsed into Python objects. The routes keep their pydantic response
models for the OpenAPI document, and tests validate the bodies against them.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Response
from psycopg.adapt import Loader


class RawJsonLoader(Loader):
    """Loads json/jsonb values as pre-serialised JSON fragments that orjson embeds unchanged."""

    def load(self, data: Any) -> orjson.Fragment:
        return orjson.Fragment(bytes(data))


def json_response(body: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json")
