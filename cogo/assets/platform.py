"""[platform] The schema itself: migrations applied and the graph schema ensured."""
# No `from __future__ import annotations` in asset modules: Dagster inspects the real annotations.

import time

import dagster as dg

from cogo.db.migrate import migrate
from cogo.resources import GraphResource, PostgresResource
from cogo.schema_report import EXPECTED_TABLES, EXPECTED_VIEWS, missing_relations, row_counts


# The graph's backend (LadybugDB or Neo4j) is chosen when a run opens the graph resource, so the kind stays
# neutral, as on the code assets; each materialization names the backend it wrote in `graph_backend`.
@dg.asset(group_name="platform", kinds={"postgres", "graph"})
def platform_schema(
    context: dg.AssetExecutionContext, postgres: PostgresResource, graph: GraphResource
) -> dg.MaterializeResult:
    """The Postgres schema (numbered SQL migrations in sql/) and the code graph's schema (unique keys,
    node and relationship tables). Idempotent: a re-run applies nothing."""
    started = time.monotonic()
    applied = migrate(postgres.url(), on_apply=lambda m: context.log.info(f"applied {m.filename}"))
    with graph.open() as store:
        store.ensure_schema()
        backend = store.backend
    with postgres.connection() as conn:
        counts = row_counts(conn)
    return dg.MaterializeResult(
        metadata={
            "migrations_applied": len(applied),
            "applied": ", ".join(m.filename for m in applied) or "none",
            "graph_backend": backend,
            "rows_by_table": dg.MetadataValue.json(counts),
            "duration_s": round(time.monotonic() - started, 3),
        }
    )


@dg.asset_check(
    asset=platform_schema,
    description=f"Every core table and view exists in Postgres: the {len(EXPECTED_TABLES)} tables and "
    f"{len(EXPECTED_VIEWS)} views listed in cogo.schema_report (metadata `missing` names any absent).",
)
def schema_complete(postgres: PostgresResource) -> dg.AssetCheckResult:
    with postgres.connection() as conn:
        missing = missing_relations(conn)
    return dg.AssetCheckResult(passed=not missing, metadata={"missing": ", ".join(missing) or "none"})


assets = [platform_schema]
checks = [schema_complete]
