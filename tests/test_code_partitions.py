"""The code group partitioned by repository: git_commits_sensor keeps one partition per repository of
COGO_REPOS (never deleting one) and asks for one run per moved repository; a partition's run builds its
repository alone, on either graph backend; the definitions say what they write."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from cogo.assets.code import REPOSITORIES, code_graph, git_commits_sensor, register_repositories
from cogo.pipelines import defs
from tests.code_dagster import code_instance, code_resources, graph_resource, materialization, materialize_repo
from tests.code_repos import Repo


def small_repo(path: Path, name: str) -> Repo:
    repo = Repo(path)
    repo.write(
        f"{name}/core.py", f"def {name}_main():\n    return {name}_helper()\n\n\ndef {name}_helper():\n    return 1\n"
    )
    repo.commit(f"Add {name}")
    return repo


def stored_instance(tmp_path: Path) -> dg.DagsterInstance:
    """An instance on disk: a sensor reads the partitions of the instance it is given by reference, as in the
    daemon."""
    home = tmp_path / "dagster"
    home.mkdir()
    return dg.DagsterInstance.local_temp(str(home))


def tick(instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorExecutionData:
    """One evaluation as the daemon does it: run requests resolved against the definitions and the instance's
    partitions (a partition key it does not know, nor the tick adds, is refused there), then the tick's partition
    requests applied."""
    context = dg.build_sensor_context(instance_ref=instance.get_ref(), cursor=cursor, definitions=defs)
    data = git_commits_sensor.evaluate_tick(context)
    for request in data.dynamic_partitions_requests or []:
        assert isinstance(request, dg.AddDynamicPartitionsRequest)  # the sensor never deletes a partition
        new = [k for k in request.partition_keys if not instance.has_dynamic_partition(request.partitions_def_name, k)]
        instance.add_dynamic_partitions(request.partitions_def_name, new)
    return data


def requested(data: dg.SensorExecutionData) -> dict[str, dict]:
    """partition key -> the run's code_graph config, per run requested."""
    return {r.partition_key: r.run_config["ops"]["code_graph"]["config"] for r in data.run_requests or []}


def partitions(instance: dg.DagsterInstance) -> list[str]:
    return list(instance.get_dynamic_partitions(REPOSITORIES.name))


def test_the_sensor_keeps_a_partition_per_repository_and_runs_the_moved_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, two = small_repo(tmp_path / "one", "one"), small_repo(tmp_path / "two", "two")
    odd = small_repo(tmp_path / "odd...name", "odd")  # '...' cannot be in a partition key
    a, b = str(one.path), str(two.path)
    monkeypatch.setenv("COGO_REPOS", f"{a},{b},{odd.path}")
    instance = stored_instance(tmp_path)

    first = tick(instance, None)
    assert requested(first) == {a: {"heads": {a: one.head()}}, b: {"heads": {b: two.head()}}}
    assert {r.tags["dagster/partition"] for r in first.run_requests or []} == {a, b}
    assert partitions(instance) == [a, b]

    assert tick(instance, first.cursor).skip_message == "no new commits"

    two.write("two/more.py", "def more():\n    return 2\n")
    new_head = two.commit("More")
    moved = tick(instance, first.cursor)
    assert requested(moved) == {b: {"heads": {b: new_head}}}
    assert partitions(instance) == [a, b]

    # A repository that leaves COGO_REPOS keeps its partition; coming back, it is looked at again.
    monkeypatch.setenv("COGO_REPOS", a)
    gone = tick(instance, moved.cursor)
    assert not gone.run_requests and partitions(instance) == [a, b]
    assert json.loads(gone.cursor or "") == {"heads": {a: one.head()}}
    monkeypatch.setenv("COGO_REPOS", f"{a},{b}")
    assert set(requested(tick(instance, gone.cursor))) == {b}


def test_a_cursor_from_before_partitions_gets_its_repositories_partitions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, two = small_repo(tmp_path / "one", "one"), small_repo(tmp_path / "two", "two")
    a, b = str(one.path), str(two.path)
    monkeypatch.setenv("COGO_REPOS", f"{a},{b}")
    instance = stored_instance(tmp_path)
    legacy = json.dumps({a: one.head(), b: two.head()})  # the bare {repo: head} the sensor used to keep
    data = tick(instance, legacy)
    assert not data.run_requests and partitions(instance) == [a, b]
    assert json.loads(data.cursor or "") == {"heads": {a: one.head(), b: two.head()}}


def test_register_repositories_adds_the_configured_ones_and_removes_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = str(tmp_path / "one"), str(tmp_path / "two")
    monkeypatch.setenv("COGO_REPOS", f"{a},{b}")
    instance = code_instance("/srv/retired", a)
    assert register_repositories(instance) == [a, b]
    assert partitions(instance) == ["/srv/retired", a, b]


@pytest.mark.parametrize("backend", ["ladybug", "neo4j"])
def test_a_partition_builds_its_repository_alone(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, two = small_repo(tmp_path / "one", "one"), small_repo(tmp_path / "two", "two")
    a, b = str(one.path), str(two.path)
    monkeypatch.setenv("COGO_REPOS", f"{a},{b}")
    instance = code_instance(a, b)
    graph = graph_resource(backend, request, tmp_path)
    resources = code_resources(database_url, graph)

    def repos_in_graph() -> list[str]:
        with graph.open() as store:
            return [r["repo"] for r in store.query("MATCH (f:Function) RETURN DISTINCT f.repo AS repo ORDER BY repo")]

    def cursors(conn: psycopg.Connection) -> dict[str, str]:
        return dict(conn.execute("SELECT repo, last_sha FROM code_repo_cursors").fetchall())

    result = materialize_repo(a, instance, resources)
    assert result.success
    built = materialization(result, "code_graph")
    assert built.partition == a and built.metadata["repository"].value == a
    assert built.metadata["graph_backend"].value == backend and built.metadata["commits"].value == 1
    assert {materialization(result, k).partition for k in ("code_embeddings", "concept_links")} == {a}
    assert repos_in_graph() == [a]
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert cursors(conn) == {a: one.head()}
        assert {r[0] for r in conn.execute("SELECT repo FROM code_embeddings").fetchall()} == {a}
    # The long steps say how far they got, with counts.
    messages = [e.user_message for e in instance.all_logs(result.run_id)]
    assert f"{a}: 2/2 changed chunks embedded" in "\n".join(messages)
    assert any(m.startswith(f"{a}: 1 commits read") for m in messages)

    assert materialize_repo(b, instance, resources, dg.AssetSelection.assets(code_graph)).success
    assert repos_in_graph() == sorted([a, b])

    # A new commit in one repository: rebuilding its partition touches nothing of the other.
    one.write("one/extra.py", "def extra():\n    return 3\n")
    new_head = one.commit("Extra")
    again = materialize_repo(a, instance, resources, dg.AssetSelection.assets(code_graph))
    assert materialization(again, "code_graph").metadata["commits"].value == 1
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert cursors(conn) == {a: new_head, b: two.head()}


def test_the_code_assets_say_what_they_write_and_who_owns_them() -> None:
    graph = defs.resolve_asset_graph()
    nodes = {name: graph.get(dg.AssetKey(name)) for name in ("code_graph", "code_embeddings", "concept_links")}
    # The graph may be LadybugDB or Neo4j, known only at run time: no backend's kind at definition time.
    assert nodes["code_graph"].kinds == nodes["concept_links"].kinds == {"graph", "postgres"}
    assert nodes["code_embeddings"].kinds == {"postgres", "pgvector"}
    for node in nodes.values():
        assert node.partitions_def == REPOSITORIES
        assert node.owners == ["team:data-platform"] and "Partition: the repository's path" in (node.description or "")
    assert defs.resolve_job_def("code_graph_job").partitions_def == REPOSITORIES
    checks = {key.name: key.asset_key.to_user_string() for key in graph.asset_check_keys}
    assert {k: v for k, v in checks.items() if v.startswith(("code_", "concept_"))} == {
        "symbols_in_files": "code_graph",
        "calls_have_both_ends": "code_graph",
        "embeddings_follow_graph": "code_embeddings",
    }
