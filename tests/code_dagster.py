"""The code group through Dagster in tests: an instance that knows the repositories' partitions, resources on
either graph backend, and one repository's partition materialized."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from cogo.assets.code import REPOSITORIES, checks, code_embeddings, code_graph, concept_links
from cogo.resources import GraphResource, PostgresResource
from cogo.resources.embedder import EmbedderResource

MODEL = "local:all-MiniLM-L6-v2"
CODE_ASSETS = [code_graph, code_embeddings, concept_links]


def code_instance(*repos: str) -> dg.DagsterInstance:
    """An ephemeral instance with a partition for each repository, as git_commits_sensor leaves it."""
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(REPOSITORIES.name, list(repos))
    return instance


def graph_resource(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> GraphResource:
    """LadybugDB under tmp_path, or the session's Neo4j emptied for this test."""
    if backend == "ladybug":
        return GraphResource(home=str(tmp_path / "home"))
    request.getfixturevalue("neo4j_graph")  # clears the server's graph
    server = request.getfixturevalue("neo4j_server")
    return GraphResource(graph_url=server.url, user="neo4j", password=server.password)


def code_resources(database_url: str, graph: GraphResource) -> dict[str, Any]:
    return {
        "postgres": PostgresResource(database_url=database_url),
        "graph": graph,
        "embedder": EmbedderResource(model=MODEL),
    }


def materialize_repo(
    repo: str,
    instance: dg.DagsterInstance,
    resources: dict[str, Any],
    selection: dg.AssetSelection | None = None,
) -> dg.ExecuteInProcessResult:
    """One repository's partition of the code assets (or of `selection`) with the code group's checks."""
    return dg.materialize(
        [*CODE_ASSETS, *checks], partition_key=repo, instance=instance, resources=resources, selection=selection
    )


def materialization(result: dg.ExecuteInProcessResult, asset: str) -> dg.AssetMaterialization:
    [event] = [
        e.step_materialization_data.materialization
        for e in result.get_asset_materialization_events()
        if e.step_materialization_data.materialization.asset_key.to_user_string() == asset
    ]
    return event


def check_evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}
