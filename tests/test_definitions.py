"""The Dagster code location: loads with no secret set, has the contract's keys, materializes against
the real embedded Postgres and LadybugDB, and gives every definition owners, tags, kinds and a description."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from cogo.assets.platform import platform_schema, schema_complete
from cogo.resources import GraphResource, PostgresResource


def test_definitions_load_with_no_environment() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COGO_", "CLERK_", "OPENAI_", "NEO4J_"))}
    code = (
        "from cogo.pipelines import defs; defs.resolve_all_job_defs(); print(len(list(defs.resolve_all_asset_keys())))"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) >= 1


def test_platform_schema_materializes_and_its_check_passes(database_url: str, tmp_path: Path) -> None:
    result = dg.materialize(
        [platform_schema, schema_complete],
        resources={"postgres": PostgresResource(database_url=database_url), "graph": GraphResource(home=str(tmp_path))},
    )
    assert result.success
    materialization = result.asset_materializations_for_node("platform_schema")[0]
    assert materialization.metadata["migrations_applied"].value == 0  # the template is already migrated
    assert materialization.metadata["graph_backend"].value == "ladybug"
    checks = result.get_asset_check_evaluations()
    assert [c.passed for c in checks] == [True]
    assert (tmp_path / "graph" / "cogo.lbug").exists()


def test_the_schema_check_fails_when_a_table_is_missing(database_url: str, tmp_path: Path) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute('DROP VIEW "CodeEmbeddings"')
    result = dg.materialize(
        [platform_schema, schema_complete],
        resources={"postgres": PostgresResource(database_url=database_url), "graph": GraphResource(home=str(tmp_path))},
        raise_on_error=False,
    )
    check = result.get_asset_check_evaluations()[0]
    assert not check.passed and check.metadata["missing"].value == "CodeEmbeddings"


def test_dagster_validates_the_code_location_with_postgres_storage(database_url: str, tmp_path: Path) -> None:
    """`dagster definitions validate` as a user runs it: DAGSTER_HOME with the repo's dagster.yaml."""
    from cogo.db.urls import sqlalchemy_psycopg2_url
    from cogo.local_services import REPO_ROOT

    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO_ROOT / "dagster.yaml").read_text())
    env = {**os.environ, "DAGSTER_HOME": str(home), "COGO_DAGSTER_DATABASE_URL": sqlalchemy_psycopg2_url(database_url)}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr


def test_the_public_contract_is_in_the_definitions() -> None:
    from cogo.pipelines import defs

    graph = defs.resolve_asset_graph()
    groups = {key.to_user_string(): graph.get(key).group_name for key in graph.get_all_asset_keys()}
    expected = {
        "clerk_directory": "clerk",
        "workspace_files": "workspace",
        "file_chunks": "knowledge",
        "file_embeddings": "knowledge",
        "code_graph": "code",
        "code_embeddings": "code",
        "concept_links": "code",
        "task_rollups": "tasks",
        "retention_sweep": "retention",
    }
    assert {key: groups.get(key) for key in expected} == expected
    assert {"clerk_inbox_sensor", "workspace_files_sensor", "git_commits_sensor"} <= {s.name for s in defs.sensors}
    assert {"clerk_reconcile_daily", "retention_daily", "reindex_weekly", "task_rollups_hourly"} <= {
        s.name for s in defs.schedules
    }


# --- owners, tags, kinds and descriptions -------------------------------------------------------------------


def test_every_asset_has_its_groups_owners_and_tags_a_description_and_a_kind() -> None:
    from cogo.pipelines import defs
    from cogo.pipelines.definitions import GROUPS

    specs = defs.resolve_all_asset_specs()
    assert specs
    for spec in specs:
        name = spec.key.to_user_string()
        scheme = GROUPS[spec.group_name or ""]
        assert spec.owners and set(scheme.owners) <= set(spec.owners), name
        assert {k: spec.tags.get(k) for k in ("layer", "tenant_data")} == scheme.tags, name
        assert spec.description and spec.description.strip(), name
        assert spec.kinds, name


def test_a_group_without_an_owner_refuses_to_load() -> None:
    from cogo.pipelines.definitions import with_group_scheme

    with pytest.raises(KeyError, match="asset group 'billing' has no entry"):
        with_group_scheme(dg.AssetSpec("invoices", group_name="billing"))


def test_every_check_sensor_schedule_and_job_has_a_description() -> None:
    from cogo.pipelines import defs

    repository = defs.get_repository_def()
    # Dagster's own jobs (the global asset job, a sensor's anonymous target) are named with two underscores.
    jobs = [job for job in repository.get_all_jobs() if not job.name.startswith("__")]
    graph = defs.resolve_asset_graph()
    # Checks from @asset_check and those an asset declares in check_specs alike.
    checks = {key.name: graph.get(key).description for key in graph.asset_check_keys}
    described = {
        **{f"job {j.name}": j.description for j in jobs},
        **{f"check {name}": text for name, text in checks.items()},
        **{f"sensor {s.name}": s.description for s in repository.sensor_defs},
        **{f"schedule {s.name}": s.description for s in repository.schedule_defs},
    }
    assert len(jobs) >= 3 and len(checks) >= 9 and repository.sensor_defs and repository.schedule_defs
    assert [name for name, text in described.items() if not (text and text.strip())] == []


def test_check_descriptions_cite_only_documents_in_the_repository() -> None:
    from cogo.local_services import REPO_ROOT
    from cogo.pipelines import defs

    graph = defs.resolve_asset_graph()
    texts = [graph.get(key).description or "" for key in graph.asset_check_keys]
    cited = {doc for text in texts for doc in re.findall(r"[\w./-]+\.md\b", text)}
    assert {doc for doc in cited if not (REPO_ROOT / doc).exists()} == set()
    assert all("section" not in text.lower() for text in texts)


def test_the_clerk_code_tasks_and_retention_automations_carry_their_groups_owners_and_tags() -> None:
    from cogo.pipelines import defs
    from cogo.pipelines.definitions import GROUPS

    repository = defs.get_repository_def()
    owned = {
        "clerk": ["clerk_inbox_sensor", "clerk_reconcile_daily", "clerk_reconcile_job"],
        "code": ["git_commits_sensor", "code_graph_job"],
        "tasks": ["task_rollups_hourly", "task_rollups_job"],
        "retention": ["retention_daily", "retention_sweep_job"],
    }
    for group, names in owned.items():
        for name in names:
            definition = (
                repository.get_sensor_def(name)
                if repository.has_sensor_def(name)
                else repository.get_schedule_def(name)
                if repository.has_schedule_def(name)
                else repository.get_job(name)
            )
            assert list(definition.owners or []) == list(GROUPS[group].owners), name
            assert {k: definition.tags.get(k) for k in ("layer", "tenant_data")} == GROUPS[group].tags, name


def test_no_asset_names_a_graph_backend_it_may_not_write() -> None:
    """The backend (LadybugDB by default, Neo4j with a bolt:// COGO_GRAPH_URL) is chosen when a run opens the
    graph, so an asset that writes the graph says `graph`; its materialization names the backend."""
    from cogo.pipelines import defs

    kinds = {s.key.to_user_string(): s.kinds for s in defs.resolve_all_asset_specs()}
    assert kinds["platform_schema"] == {"postgres", "graph"}
    assert {name for name, k in kinds.items() if k & {"neo4j", "ladybugdb", "ladybug"}} == set()


def test_lineage_orders_the_work_schema_first_and_retention_after_what_feeds_it() -> None:
    from cogo.pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    schema = dg.AssetKey("platform_schema")
    for key in graph.materializable_asset_keys - {schema}:
        assert schema in graph.get_ancestor_asset_keys(key), f"{key.to_user_string()} does not follow the schema"
    retention = dg.AssetKey("retention_sweep")
    feeders = {"clerk_directory", "workspace_files", "file_chunks", "file_embeddings", "message_embeddings"}
    assert {dg.AssetKey(name) for name in feeders} <= graph.get_ancestor_asset_keys(retention)
    # Under the daemon a sweep never runs beside a workspace scan: they share a pool of one.
    assert graph.get(retention).pools == graph.get(dg.AssetKey("workspace_files")).pools == {"workspace"}
