"""GET /v1/graph/concepts/{name}/functions: the seed's concept query (COGO seed 6.1) over the code graph, limited to
the repositories the caller's organisation sees (cogo.tenancy.VISIBLE_REPOS: graph nodes carry no organisation)."""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, HTTPException, Path, Request

from cogo.errors import CogoError
from cogo.service.deps import CallerTenant
from cogo.service.models import ERROR_RESPONSES, ConceptFunction, ConceptFunctions
from cogo.tenancy import VISIBLE_REPOS, rule_params

router = APIRouter(prefix="/v1/graph", tags=["graph"], responses=ERROR_RESPONSES)

CONCEPT_FUNCTIONS_CYPHER = (
    "MATCH (c:Concept {name: $name})<-[:IMPLEMENTS]-(f:Function) "
    "WHERE f.repo IN $repos AND f.removed_in IS NULL "
    "RETURN f.name AS name, f.signature AS signature, f.docstring AS docstring, "
    "f.qualified_name AS qualified_name, f.repo AS repo, f.path AS path "
    "ORDER BY f.repo, f.qualified_name LIMIT 1000"
)


@router.get("/concepts/{name}/functions", response_model=ConceptFunctions, summary="Functions implementing a concept")
async def concept_functions(
    request: Request,
    name: Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")],
    db: CallerTenant,
) -> ConceptFunctions:
    """`MATCH (c:Concept {name: $name})<-[:IMPLEMENTS]-(f:Function) RETURN f.name, f.signature, f.docstring`,
    limited to the caller's repositories. An unknown concept answers an empty list."""
    (rows,) = await db.read((VISIBLE_REPOS, rule_params(db.caller)))
    repos = [r[0] for r in rows]
    if not repos:
        return ConceptFunctions(concept=name, functions=[])
    try:
        found = await anyio.to_thread.run_sync(_query_graph, request, {"name": name, "repos": repos})
    except CogoError as exc:
        raise HTTPException(503, f"the code graph is unavailable: {exc}") from None
    return ConceptFunctions(concept=name, functions=[ConceptFunction(**row) for row in found])


def _query_graph(request: Request, params: dict[str, Any]) -> list[dict[str, Any]]:
    from cogo.graph import open_graph

    with open_graph(request.app.state.settings, read_only=True) as graph:
        return graph.query(CONCEPT_FUNCTIONS_CYPHER, params)
