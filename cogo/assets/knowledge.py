"""[knowledge] Workspace files to searchable knowledge: file_chunks -> file_embeddings, reindex_weekly; and
conversation messages: new_messages_sensor -> message_embeddings; both -> tenant_vector_indexes."""
# No `from __future__ import annotations` in asset modules: Dagster inspects the real annotations.

import dagster as dg
from pydantic import Field

from cogo.assets.workspace import workspace_files
from cogo.knowledge.chunk_stage import chunk_files
from cogo.knowledge.chunking import CHUNKER_VERSION
from cogo.knowledge.embed_stage import embed_files
from cogo.knowledge.extract import DEFAULT_MAX_BYTES
from cogo.knowledge.messages import embed_messages
from cogo.knowledge.tenant_indexes import TENANT_INDEX_MIN_ROWS, refresh_tenant_indexes
from cogo.resources import PostgresResource
from cogo.resources.embedder import EmbedderResource
from cogo.resources.workspace import WorkspaceResource

SHOWN = 50


class ChunkConfig(dg.Config):
    max_extract_bytes: int = Field(
        default=DEFAULT_MAX_BYTES, description="Files larger than this are registered but not extracted."
    )


@dg.asset(
    group_name="knowledge",
    kinds={"postgres"},
    deps=[workspace_files],
    automation_condition=dg.AutomationCondition.eager(),
)
def file_chunks(
    context: dg.AssetExecutionContext,
    config: ChunkConfig,
    postgres: PostgresResource,
    workspace: WorkspaceResource,
    embedder: EmbedderResource,
) -> dg.MaterializeResult:
    """Text extracted from every active workspace file (text, Markdown, source code by definitions with
    tree-sitter, PDF, DOCX, HTML, CSV, JSON; binaries have none) and cut into token chunks with overlap, once
    per chunk profile its indexes ask for, each with its position (page, line range, heading, symbol) and a
    deterministic id. Only files whose content or chunker changed are redone; a file that fails to extract is
    recorded in file_extractions with its reason and the rest proceed."""
    with postgres.connection() as conn:
        report = chunk_files(conn, workspace.path(), embedder.default_model(), max_bytes=config.max_extract_bytes)
    context.log.info(
        f"file_chunks: {report.files_extracted} of {report.files_seen} files extracted, "
        f"{report.chunks_written} chunks written, {report.chunks_deleted} deleted in {report.duration_s}s"
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": report.chunks_written,
            "chunker_version": CHUNKER_VERSION,
            **report.as_metadata(SHOWN),
        }
    )


@dg.asset(
    group_name="knowledge",
    kinds={"postgres", "pgvector"},
    deps=[file_chunks],
    automation_condition=dg.AutomationCondition.eager(),
    pool="embeddings",
    retry_policy=dg.RetryPolicy(max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS),
)
def file_embeddings(
    context: dg.AssetExecutionContext, postgres: PostgresResource, embedder: EmbedderResource
) -> dg.MaterializeResult:
    """Vectors for every chunk an index needs (the organisation's default index with COGO_EMBEDDER, and each
    agent knowledge source's model and chunk size), in `embeddings`. Identical content is embedded once per
    model; vectors are written with binary COPY while the next slice is embedded; one partial HNSW index per
    model is created on first use. Chunks that still fail after retries are recorded in embedding_failures.
    A new model or chunker builds a new index while the old one keeps answering; once complete, the old
    vectors are removed. Token counts and estimated cost per model are in the metadata."""
    with postgres.connection() as conn, postgres.connection() as writer:
        report = embed_files(conn, embedder.for_model, embedder.default_model(), writer=writer, log=context.log.info)
    context.log.info(
        f"file_embeddings: {report.rows_written} rows written, {report.embed_calls} embedding calls, "
        f"{report.tokens} tokens, ~${report.estimated_cost_usd} in {report.duration_s}s"
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": report.rows_written,
            **report.as_metadata(SHOWN),
        }
    )


@dg.asset_check(
    asset=file_embeddings,
    description="Every chunk an index needs has its vector: no chunk left in embedding_failures, no index "
    "still building after the run.",
)
def knowledge_embedded(postgres: PostgresResource) -> dg.AssetCheckResult:
    with postgres.connection() as conn:
        failed = conn.execute("SELECT count(*) FROM embedding_failures").fetchone()[0]  # type: ignore[index]
        reasons = conn.execute(
            "SELECT reason, count(*) FROM embedding_failures GROUP BY 1 ORDER BY 2 DESC LIMIT 5"
        ).fetchall()
        building = conn.execute("SELECT count(*) FROM knowledge_indexes WHERE state = 'building'").fetchone()[0]  # type: ignore[index]
    return dg.AssetCheckResult(
        passed=failed == 0 and building == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "failed_chunks": failed,
            "indexes_building": building,
            "top_reasons": dg.MetadataValue.json([{"reason": r, "chunks": n} for r, n in reasons]),
        },
    )


@dg.asset(
    group_name="knowledge",
    kinds={"postgres", "pgvector"},
    deps=["platform_schema"],
    pool="embeddings",
    retry_policy=dg.RetryPolicy(max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS),
)
def message_embeddings(
    context: dg.AssetExecutionContext, postgres: PostgresResource, embedder: EmbedderResource
) -> dg.MaterializeResult:
    """Conversation messages in `embeddings`, searched beside file chunks (POST /v1/search, kind 'message').
    Each message is embedded with the default model (COGO_EMBEDDER) and, in an agent's conversation, with the
    agent's embedding_model; long messages in token windows. Incremental: only messages without a vector for a
    model they need; identical content reuses a stored vector. Messages that still fail are recorded in
    message_embedding_failures. Vectors of a model no longer wanted go once the organisation's new ones are
    complete."""
    with postgres.connection() as conn:
        report = embed_messages(conn, embedder.for_model, embedder.default_model())
    context.log.info(
        f"message_embeddings: {report.messages_embedded} messages, {report.rows_written} rows written, "
        f"{report.embed_calls} embedding calls, {report.tokens} tokens in {report.duration_s}s"
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": report.rows_written,
            **report.as_metadata(SHOWN),
        }
    )


message_embeddings_job = dg.define_asset_job(
    "embed_messages",
    selection=[message_embeddings],
    executor_def=dg.in_process_executor,
    description="Embed conversation messages not embedded yet.",
)


@dg.sensor(
    name="new_messages_sensor",
    job=message_embeddings_job,
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests message_embeddings when messages arrived since its cursor (the highest message id "
    "seen); the asset finds what is missing itself, so a message committed late is picked up by a later run.",
)
def new_messages_sensor(context: dg.SensorEvaluationContext, postgres: PostgresResource):
    with postgres.connection() as conn:
        newest = conn.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()[0]  # type: ignore[index]
    seen = int(context.cursor or 0)
    if newest <= seen:
        return dg.SkipReason(f"no message after id {seen}")
    context.update_cursor(str(newest))
    return dg.RunRequest(run_key=f"messages:{newest}", tags={"cogo/messages_after": str(seen)})


class TenantIndexConfig(dg.Config):
    min_rows: int = Field(
        default=TENANT_INDEX_MIN_ROWS,
        description="Vectors of one model an organisation needs for its own HNSW index; smaller ones are searched "
        "exactly. Indexes of organisations under half of this are dropped.",
    )
    build_memory: str = Field(default="1GB", description="maintenance_work_mem for each index build.")


@dg.asset(
    group_name="knowledge",
    kinds={"postgres", "pgvector"},
    deps=[file_embeddings, message_embeddings],
    automation_condition=dg.AutomationCondition.eager(),
    pool="embeddings",
)
def tenant_vector_indexes(
    context: dg.AssetExecutionContext, config: TenantIndexConfig, postgres: PostgresResource
) -> dg.MaterializeResult:
    """One HNSW index per organisation and model with at least `min_rows` vectors (partial: WHERE model and
    organization_id), built CONCURRENTLY and used by search only once complete. The shared per-model index
    would make a tenant's search walk every organisation's vectors (recall@10 0.93 with one tenant in ten at
    1,000,000 vectors); smaller organisations are searched exactly. Indexes of organisations that shrank or
    left are dropped; one left invalid by an interrupted build is dropped and built again."""
    with postgres.connection(autocommit=True) as conn:
        report = refresh_tenant_indexes(
            conn, min_rows=config.min_rows, build_memory=config.build_memory, log=context.log.info
        )
    context.log.info(
        f"tenant_vector_indexes: {len(report.created)} built, {len(report.dropped)} dropped, "
        f"{report.tenants_with_index} organisations with their own index in {report.duration_s}s"
    )
    return dg.MaterializeResult(
        metadata={
            "tenants_with_index": report.tenants_with_index,
            "tenants_without_index": report.tenants_without_index,
            "indexes_built": dg.MetadataValue.json(report.created[:SHOWN]),
            "indexes_dropped": dg.MetadataValue.json(report.dropped[:SHOWN]),
            "invalid_indexes_dropped": dg.MetadataValue.json(report.invalid_dropped[:SHOWN]),
            "min_rows": config.min_rows,
            "duration_s": report.duration_s,
        }
    )


reindex_job = dg.define_asset_job(
    "reindex_knowledge",
    selection=[file_chunks, file_embeddings, message_embeddings, tenant_vector_indexes],
    description="Re-chunk and re-embed what is stale (a changed chunker version, an agent's new model or chunk "
    "size); old vectors answer until the new index is complete. What reindex_weekly runs; launch it by hand "
    "after changing agent_knowledge_sources.",
)

reindex_weekly = dg.ScheduleDefinition(
    name="reindex_weekly",
    job=reindex_job,
    cron_schedule="23 2 * * 0",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Sundays at 02:23 UTC: rebuild knowledge indexes whose model, chunk size or chunker changed.",
)

# Dagster's own automation sensor is off by default: this one evaluates the eager conditions above (a manual
# workspace_files run flows on to chunks and vectors; new vectors to the tenant indexes) with no toggle.
automation_sensor = dg.AutomationConditionSensorDefinition(
    "cogo_automation_sensor",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Evaluates every asset's automation condition (eager: file_chunks, file_embeddings, "
    "tenant_vector_indexes follow their parents), on by default.",
)

assets = [file_chunks, file_embeddings, message_embeddings, tenant_vector_indexes]
checks = [knowledge_embedded]
jobs = [reindex_job, message_embeddings_job]
schedules = [reindex_weekly]
sensors = [new_messages_sensor, automation_sensor]
