"""The code group's asset checks on both graph backends: they pass on a graph built from a real history (renames,
removals, a merge) and fail, naming the offending rows, once the graph or code_embeddings is broken by a real
query."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import pytest

from cogo.assets.code import code_embeddings, code_graph
from tests.code_dagster import (
    check_evaluations,
    code_instance,
    code_resources,
    graph_resource,
    materialization,
    materialize_repo,
)
from tests.code_repos import build_history

# code_graph again (it finds nothing new and writes nothing) and every check: code_embeddings would mend its table.
GRAPH_AND_CHECKS = dg.AssetSelection.assets(code_graph) | dg.AssetSelection.checks_for_assets(
    code_graph, code_embeddings
)


@pytest.fixture(params=["ladybug", "neo4j"])
def built(
    request: pytest.FixtureRequest, tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, dg.DagsterInstance, dict[str, Any]]:
    """The demo repository's partition materialized on one backend, its checks passing."""
    repo = str(tmp_path / "demo")
    build_history(Path(repo))
    monkeypatch.setenv("COGO_REPOS", repo)
    instance = code_instance(repo)
    resources = code_resources(database_url, graph_resource(request.param, request, tmp_path))
    result = materialize_repo(repo, instance, resources)
    assert result.success
    evaluations = check_evaluations(result)
    assert {name: e.passed for name, e in evaluations.items()} == {
        "symbols_in_files": True,
        "calls_have_both_ends": True,
        "embeddings_follow_graph": True,
    }
    assert {e.partition for e in evaluations.values()} == {repo}
    assert evaluations["symbols_in_files"].metadata["offending_rows"].value == 0
    return repo, instance, resources


def run_checks(
    repo: str, instance: dg.DagsterInstance, resources: dict[str, Any]
) -> dict[str, dg.AssetCheckEvaluation]:
    result = materialize_repo(repo, instance, resources, GRAPH_AND_CHECKS)
    assert result.success
    assert materialization(result, "code_graph").metadata["nodes_written"].value == 0
    return check_evaluations(result)


def graph_write(resources: dict[str, Any], cypher: str) -> None:
    with resources["graph"].open() as store:
        store.write(cypher)


def test_a_symbol_whose_file_is_gone_fails_symbols_in_files(
    built: tuple[str, dg.DagsterInstance, dict[str, Any]],
) -> None:
    repo, instance, resources = built
    graph_write(resources, "MATCH (f:CodeFile {path: 'app/auth.py'}) DETACH DELETE f")
    evaluations = run_checks(repo, instance, resources)
    check = evaluations["symbols_in_files"]
    assert not check.passed and check.partition == repo
    # login, verify, logout (removed, still in the graph), the class and, through it, its two methods
    assert check.metadata["offending_rows"].value == 6
    assert check.metadata["Function"].value == 5 and check.metadata["Class"].value == 1
    sample = check.metadata["sample"].value
    names = ("login", "verify", "logout", "TokenService", "TokenService.refresh", "TokenService.check")
    assert {row["id"] for row in sample} == {f"{repo}:app.auth.{name}" for name in names}
    assert {row["repository"] for row in sample} == {repo}
    assert evaluations["calls_have_both_ends"].passed


def test_a_call_to_a_removed_function_fails_calls_have_both_ends(
    built: tuple[str, dg.DagsterInstance, dict[str, Any]],
) -> None:
    repo, instance, resources = built
    graph_write(resources, "MATCH (f:Function {name: 'verify'}) SET f.removed_in = 'f00d'")
    check = run_checks(repo, instance, resources)["calls_have_both_ends"]
    assert not check.passed
    [row] = check.metadata["sample"].value
    assert row["caller"] == f"{repo}:app.auth.login" and row["callee"] == f"{repo}:app.auth.verify"
    assert row["callee_removed_in"] == "f00d" and check.metadata["offending_rows"].value == 1


def test_embeddings_out_of_step_with_the_graph_fail_embeddings_follow_graph(
    built: tuple[str, dg.DagsterInstance, dict[str, Any]], database_url: str
) -> None:
    repo, instance, resources = built
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM code_embeddings WHERE symbol = 'app.helpers.helper'")
    graph_write(resources, "MATCH (c:Class {name: 'TokenService'}) SET c.removed_in = 'f00d'")
    evaluations = run_checks(repo, instance, resources)
    check = evaluations["embeddings_follow_graph"]
    assert not check.passed
    assert check.metadata["not_embedded"].value == 1 and check.metadata["embedded_not_in_graph"].value == 1
    assert {(row["symbol"], row["problem"]) for row in check.metadata["sample"].value} == {
        ("app.helpers.helper", "not embedded"),
        ("app.auth.TokenService", "not in the graph"),
    }
    assert evaluations["symbols_in_files"].passed
