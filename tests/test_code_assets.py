"""The [code] stage through Dagster: code_graph, code_embeddings and concept_links materialized on a
repository the test makes, the seed's queries (6.1 concepts, 7.2 similar code) answering, and
git_commits_sensor picking up a new commit."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from pgvector.psycopg import register_vector

from cogo.assets.code import code_embeddings, code_graph, git_commits_sensor
from cogo.code.builder import build_repository
from cogo.code.concepts import docstring_tags, link_concepts
from cogo.embed import get_embedder
from cogo.graph.base import GraphStore
from cogo.resources import GraphResource
from tests.code_dagster import (
    MODEL,
    check_evaluations,
    code_instance,
    code_resources,
    materialization,
    materialize_repo,
)
from tests.code_repos import Repo, build_history

SEED_6_1 = """
MATCH (c:Concept {name: "Authentication"})<-[:IMPLEMENTS]-(f:Function)
RETURN f.name, f.signature, f.docstring
"""
SEED_7_2 = """
SELECT ce.file_path, ce.content, ce.embedding <=> $1 as distance
FROM "CodeEmbeddings" ce
ORDER BY distance
LIMIT 10;
"""


def test_docstring_tags_name_concepts() -> None:
    assert docstring_tags("Check.\n\nConcepts: Authentication, Security.\n") == ["Authentication", "Security"]
    assert docstring_tags("Concept: Caching") == ["Caching"]
    assert docstring_tags("No tags here; concepts are elsewhere.") == []


def test_seed_6_1_returns_the_functions_implementing_a_concept(
    graph: GraphStore, db: psycopg.Connection, tmp_path: Path
) -> None:
    repo = str(tmp_path / "demo")
    build_history(Path(repo))
    build_repository(repo, graph, db)
    stats = link_concepts(db, graph, [repo], embedder=None)  # tags only: exact
    assert stats.tagged == 1
    rows = graph.query(SEED_6_1)
    assert rows == [
        {
            "f.name": "login",
            "f.signature": "(user, password)",
            "f.docstring": "Check a password.\n\nConcepts: Authentication",
        }
    ]
    related = graph.query(
        "MATCH (:Concept {name: 'Authentication'})-[:RELATED_TO]->(c:Concept) RETURN c.name AS name ORDER BY name"
    )
    assert related == [{"name": "Authorization"}, {"name": "Security"}]
    # a second run replaces the links, it does not add to them
    link_concepts(db, graph, [repo], embedder=None)
    assert len(graph.query(SEED_6_1)) == 1


@pytest.fixture
def repo_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, dict[str, str]]:
    repo = tmp_path / "demo"
    commits = build_history(repo)
    monkeypatch.setenv("COGO_REPOS", str(repo))
    return str(repo), commits


def test_the_code_assets_materialize_and_answer_the_seed_queries(
    repo_env: tuple[str, dict[str, str]], database_url: str, tmp_path: Path
) -> None:
    repo, commits = repo_env
    instance = code_instance(repo)
    resources = code_resources(database_url, GraphResource(home=str(tmp_path / "home")))
    result = materialize_repo(repo, instance, resources)
    assert result.success
    graph = materialization(result, "code_graph")
    assert graph.partition == repo
    assert graph.metadata["commits"].value == 7 and graph.metadata["rewritten_from"].value == ""
    assert graph.metadata["graph_backend"].value == "ladybug" and graph.metadata["repository"].value == repo
    embed_meta = materialization(result, "code_embeddings").metadata
    assert embed_meta["embedded"].value == embed_meta["dagster/row_count"].value == 10  # live symbols
    assert {name: e.passed for name, e in check_evaluations(result).items()} == {
        "symbols_in_files": True,
        "calls_have_both_ends": True,
        "embeddings_follow_graph": True,
    }

    with psycopg.connect(database_url, autocommit=True) as conn:
        register_vector(conn)
        rows = conn.execute(
            "SELECT file_path, symbol, symbol_kind, commit_hash, dims FROM code_embeddings ORDER BY symbol"
        ).fetchall()
        assert {r[1] for r in rows} >= {"app.auth.login", "app.auth.TokenService", "app.helpers.helper"}
        assert {r[3] for r in rows} == {commits["merge"]} and {r[4] for r in rows} == {384}
        query = get_embedder(MODEL).embed(["check a user's password when logging in"])[0]
        similar = conn.execute(SEED_7_2.replace("$1", "%s"), (query,)).fetchall()
        assert similar[0][0] == "app/auth.py"

    with GraphResource(home=str(tmp_path / "home")).open() as store:
        names = {r["f.name"] for r in store.query(SEED_6_1)}
        assert "login" in names
        sources = store.query(
            "MATCH (f:Function {name: 'login'})-[r:IMPLEMENTS]->(:Concept {name: 'Authentication'}) "
            "RETURN r.source AS source, r.score AS score"
        )
        assert sources == [{"source": "tag", "score": 1.0}]

    # nothing new: the graph writes nothing and no chunk is embedded again
    again = materialize_repo(repo, instance, resources, dg.AssetSelection.assets(code_graph, code_embeddings))
    assert materialization(again, "code_graph").metadata["nodes_written"].value == 0
    assert materialization(again, "code_embeddings").metadata["embedded"].value == 0


def test_the_sensor_requests_a_partitioned_run_for_a_new_commit(repo_env: tuple[str, dict[str, str]]) -> None:
    repo, commits = repo_env
    instance = dg.DagsterInstance.ephemeral()
    first = git_commits_sensor(dg.build_sensor_context(instance=instance))
    assert isinstance(first, dg.SensorResult)
    [request] = first.run_requests or []
    assert request.partition_key == repo
    assert request.run_config == {"ops": {"code_graph": {"config": {"heads": {repo: commits["merge"]}}}}}
    [added] = first.dynamic_partitions_requests or []
    assert isinstance(added, dg.AddDynamicPartitionsRequest)
    assert (added.partitions_def_name, list(added.partition_keys)) == ("repositories", [repo])
    assert json.loads(first.cursor or "") == {"heads": {repo: commits["merge"]}}

    unchanged = git_commits_sensor(dg.build_sensor_context(cursor=first.cursor, instance=instance))
    assert isinstance(unchanged, dg.SkipReason)

    r = Repo(Path(repo), init=False, tick=500)
    r.write("app/new.py", "def new():\n    return 1\n")
    new_head = r.commit("A new commit")
    moved = git_commits_sensor(dg.build_sensor_context(cursor=first.cursor, instance=instance))
    assert isinstance(moved, dg.SensorResult)
    [request] = moved.run_requests or []
    assert request.partition_key == repo
    assert request.run_config["ops"]["code_graph"]["config"]["heads"] == {repo: new_head}
    assert request.run_key != first.run_requests[0].run_key
    assert json.loads(moved.cursor or "") == {"heads": {repo: new_head}}
