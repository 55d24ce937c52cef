"""The seed's concept query (COGO seed 6.1) over the code graph, scoped to the caller's repositories.

Graph nodes carry no organisation. A Function is shown when its `repo` is one the caller's organisation
can see in Postgres: a repository with code_embeddings rows of the organisation or of the platform
(organization_id NULL), read under row-level security. A repository that is in the graph but has no
code embeddings yet is therefore not shown to anyone (fail closed).
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, HTTPException, Path, Request
from psycopg_pool import AsyncConnectionPool

from cogo.errors import CogoError
from cogo.service.auth import Principal, current_principal
from cogo.service.db import pool_of, tenant_queries
from cogo.service.models import ERROR_RESPONSES, ConceptFunction, ConceptFunctions

router = APIRouter(prefix="/v1/graph", tags=["graph"], responses=ERROR_RESPONSES)

CONCEPT_FUNCTIONS_CYPHER = (
    "MATCH (c:Concept {name: $name})<-[:IMPLEMENTS]-(f:Function) "
    "WHERE f.repo IN $repos AND f.removed_in IS NULL "
    "RETURN f.name AS name, f.signature AS signature, f.docstring AS docstring, "
    "f.qualified_name AS qualified_name, f.repo AS repo, f.path AS path "
    "ORDER BY f.repo, f.qualified_name LIMIT 1000"
)


async def visible_repos(pool: AsyncConnectionPool, organization_id: str) -> list[str]:
    """Repositories the organisation can see: its own and the platform's (RLS on code_embeddings)."""
    (rows,) = await tenant_queries(
        pool,
        organization_id,
        (
            "SELECT DISTINCT repo FROM code_embeddings WHERE organization_id = %(org)s OR organization_id IS NULL",
            {"org": organization_id},
        ),
    )
    return [r[0] for r in rows]


def _query_graph(request: Request, cypher: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    from cogo.graph import open_graph

    with open_graph(request.app.state.settings, read_only=True) as graph:
        return graph.query(cypher, params)


@router.get("/concepts/{name}/functions", response_model=ConceptFunctions, summary="Functions implementing a concept")
async def concept_functions(
    request: Request,
    name: Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")],
    caller: Annotated[Principal, Depends(current_principal)],
    pool: Annotated[AsyncConnectionPool, Depends(pool_of)],
) -> ConceptFunctions:
    """`MATCH (c:Concept {name: $name})<-[:IMPLEMENTS]-(f:Function) RETURN f.name, f.signature, f.docstring`,
    limited to the caller's repositories. An unknown concept answers an empty list."""
    repos = await visible_repos(pool, caller.organization_id)
    if not repos:
        return ConceptFunctions(concept=name, functions=[])
    try:
        rows = await anyio.to_thread.run_sync(
            _query_graph, request, CONCEPT_FUNCTIONS_CYPHER, {"name": name, "repos": repos}
        )
    except CogoError as exc:
        raise HTTPException(503, f"the code graph is unavailable: {exc}") from None
    return ConceptFunctions(concept=name, functions=[ConceptFunction(**row) for row in rows])
