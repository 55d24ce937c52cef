"""The Dagster code location: loads with no secret set, has the contract's keys, and materializes against
the real embedded Postgres and LadybugDB."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import psycopg

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
    from cogo.services import REPO_ROOT

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


def test_the_public_contract_of_design_section_3_is_in_the_definitions() -> None:
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
