"""[code] The code knowledge graph from git history, its code embeddings and concept links; the sensor
that notices new commits on each repository's default branch."""
# No `from __future__ import annotations` in asset modules: Dagster inspects the real annotations.

import hashlib
import json
import time

import dagster as dg
from pydantic import Field

from cogo.code.builder import BuildOptions, build_repository
from cogo.code.concepts import DEFAULT_THRESHOLD, link_concepts
from cogo.code.embeddings import sync_code_embeddings
from cogo.code.git import GitRepo
from cogo.code.parse import DEFAULT_SIZE_LIMIT
from cogo.config import Settings
from cogo.errors import CogoError
from cogo.resources import GraphResource, PostgresResource
from cogo.resources.embedder import EmbedderResource


def configured_repos(repos: list[str]) -> list[str]:
    return repos or [str(p) for p in Settings.from_env().repos]


class CodeGraphConfig(dg.Config):
    repos: list[str] = Field(default_factory=list, description="Repository paths; empty: COGO_REPOS.")
    heads: dict[str, str] = Field(
        default_factory=dict, description="repo -> commit to process up to (the sensor passes what it saw)."
    )
    max_commits: int | None = Field(default=None, description="A first run takes only the last N commits.")
    since: str | None = Field(default=None, description="A first run takes only commits after this date.")
    size_limit_bytes: int = Field(default=DEFAULT_SIZE_LIMIT, description="Larger files are recorded, not parsed.")


@dg.asset(group_name="code", kinds={"neo4j", "postgres"}, pool="neo4j")
def code_graph(
    context: dg.AssetExecutionContext, config: CodeGraphConfig, postgres: PostgresResource, graph: GraphResource
) -> dg.MaterializeResult:
    """CodeFile, Function, Class, Library, Commit and Task nodes with CONTAINS, CALLS, IMPORTS, USES,
    MODIFIED_IN, AFFECTS and GENERATED_BY, for each repository in COGO_REPOS: the first-parent commits of
    its default branch after the cursor (table code_repo_cursors). A force-pushed branch is rebuilt and
    the rewrite recorded on the cursor. Idempotent: a re-run with no new commit writes nothing."""
    repos = configured_repos(config.repos)
    results = []
    started = time.monotonic()
    with graph.open() as store, postgres.connection(autocommit=True) as conn:
        store.ensure_schema()
        for repo in repos:
            options = BuildOptions(
                head=config.heads.get(repo),
                max_commits=config.max_commits,
                since=config.since,
                size_limit=config.size_limit_bytes,
            )
            try:
                stats = build_repository(repo, store, conn, options)
            except CogoError as exc:
                raise dg.Failure(str(exc), allow_retries=False) from exc
            if stats.rewritten_from:
                context.log.warning(f"{repo}: history rewritten (was at {stats.rewritten_from}); rebuilt")
            for path, reason in stats.skipped:
                context.log.info(f"{repo}: {path} not parsed ({reason})")
            context.log.info(
                f"{repo}: {stats.commits} commits, {stats.files_changed} files changed at {stats.head[:12]}, "
                f"{stats.nodes_written} nodes and {stats.relationships_written} relationships written"
            )
            results.append(stats.as_metadata() | {"skipped": [f"{p} ({r})" for p, r in stats.skipped]})
    return dg.MaterializeResult(
        metadata={
            "repositories": len(repos),
            "commits": sum(r["commits"] for r in results),
            "nodes_written": sum(r["nodes_written"] for r in results),
            "relationships_written": sum(r["relationships_written"] for r in results),
            "calls_resolved": sum(r["calls_resolved"] for r in results),
            "calls_unresolved": sum(r["calls_unresolved"] for r in results),
            "rewrites": sum(1 for r in results if r["rewritten_from"]),
            "by_repository": dg.MetadataValue.json(results),
            "duration_s": round(time.monotonic() - started, 3),
        }
    )


@dg.asset(group_name="code", kinds={"postgres", "pgvector"}, deps=[code_graph], pool="embeddings")
def code_embeddings(
    context: dg.AssetExecutionContext, postgres: PostgresResource, embedder: EmbedderResource
) -> dg.MaterializeResult:
    """One chunk per function and class of each repository's head (file path, symbol, commit) embedded
    into code_embeddings, so "find similar code" works. Only chunks whose content changed are embedded."""
    model = embedder.for_model()
    results = []
    with postgres.connection(autocommit=True) as conn:
        for repo in configured_repos([]):
            stats = sync_code_embeddings(conn, repo, model)
            for key, reason in list(stats.failed.items())[:20]:
                context.log.warning(f"{repo}: {key} not embedded: {reason}")
            results.append(vars(stats) | {"failed": len(stats.failed)})
    return dg.MaterializeResult(
        metadata={
            "model": model.model,
            "dagster/row_count": sum(r["chunks"] for r in results),
            "embedded": sum(r["embedded"] for r in results),
            "unchanged": sum(r["unchanged"] for r in results),
            "deleted": sum(r["deleted"] for r in results),
            "failed": sum(r["failed"] for r in results),
            "by_repository": dg.MetadataValue.json(results),
        }
    )


class ConceptLinksConfig(dg.Config):
    threshold: float = Field(
        default=DEFAULT_THRESHOLD, description="Cosine similarity at or above which code implements a concept."
    )


@dg.asset(group_name="code", kinds={"neo4j", "postgres"}, deps=[code_graph, code_embeddings], pool="neo4j")
def concept_links(
    config: ConceptLinksConfig, postgres: PostgresResource, graph: GraphResource, embedder: EmbedderResource
) -> dg.MaterializeResult:
    """Concept nodes and RELATED_TO from the catalogue (table code_concepts); IMPLEMENTS from functions and
    classes by `Concepts: …` docstring tags and by embedding similarity above the threshold."""
    with graph.open() as store, postgres.connection(autocommit=True) as conn:
        stats = link_concepts(conn, store, configured_repos([]), embedder.for_model(), config.threshold)
    return dg.MaterializeResult(
        metadata={
            "concepts": stats.concepts,
            "related_to": stats.related,
            "implements_by_tag": stats.tagged,
            "implements_by_similarity": stats.by_similarity,
            "per_concept": dg.MetadataValue.json(stats.per_concept),
            "threshold": config.threshold,
        }
    )


code_graph_job = dg.define_asset_job(
    "code_graph_job",
    selection=[code_graph, code_embeddings, concept_links],
    executor_def=dg.in_process_executor,
    description="New commits to the graph, their code embeddings and concept links, in one process.",
)


def heads_now(repos: list[str]) -> dict[str, str]:
    """Each repository's default-branch head (two cheap git calls each); unreadable ones are left out."""
    heads: dict[str, str] = {}
    for repo in repos:
        try:
            git = GitRepo(repo)
            heads[repo] = git.resolve(git.default_branch())
        except CogoError:
            continue
    return heads


@dg.sensor(
    job=code_graph_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts code_graph_job when a repository of COGO_REPOS has a new head on its default branch.",
)
def git_commits_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    """A run when a repository's default branch has moved; the cursor is {repo: last head seen}. The run
    processes the commits itself: the sensor only reads each branch's head."""
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    repos = configured_repos([])
    if not repos:
        return dg.SkipReason("COGO_REPOS names no repository")
    heads = heads_now(repos)
    moved = {repo: sha for repo, sha in heads.items() if seen.get(repo) != sha}
    if not moved:
        return dg.SkipReason("no new commits")
    run_key = hashlib.sha256(json.dumps(sorted(moved.items())).encode()).hexdigest()[:32]
    run_config = {"ops": {"code_graph": {"config": {"repos": sorted(moved), "heads": moved}}}}
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=run_key, run_config=run_config, tags={"cogo/repos": ",".join(moved)})],
        cursor=json.dumps({**seen, **moved}, sort_keys=True),
    )


assets = [code_graph, code_embeddings, concept_links]
jobs = [code_graph_job]
sensors = [git_commits_sensor]
