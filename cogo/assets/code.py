"""[code] The code knowledge graph from git history, its code embeddings and concept links, one partition per
repository; the sensor that keeps the partitions and notices new commits on each default branch; checks that
the graph hangs together and that code_embeddings follows it."""
# No `from __future__ import annotations` in asset modules: Dagster inspects the real annotations.

import hashlib
import json
import time
from collections.abc import Callable, Sequence

import dagster as dg
import psycopg
from pydantic import Field

from cogo.code import consistency
from cogo.code.builder import BuildOptions, BuildStats, build_repository
from cogo.code.concepts import DEFAULT_THRESHOLD, link_concepts
from cogo.code.embeddings import sync_code_embeddings
from cogo.code.git import GitRepo
from cogo.code.parse import DEFAULT_SIZE_LIMIT
from cogo.config import Settings
from cogo.errors import CogoError
from cogo.graph.base import GraphStore
from cogo.resources import GraphResource, PostgresResource
from cogo.resources.embedder import EmbedderResource

# The group's owners and tags as cogo.pipelines.definitions gives its assets; Dagster takes them on a job or
# sensor only when it is built, so they are repeated here (tests/test_definitions.py keeps them equal).
OWNERS = ["team:data-platform"]
TAGS = {"layer": "derived", "tenant_data": "true"}
# The graph's backend (LadybugDB or Neo4j) is known only when a run opens it: the kind stays neutral and each
# materialization says which backend it wrote, as `graph_backend`.
GRAPH_KINDS = {"graph", "postgres"}
PROGRESS_EVERY_S = 5.0
# Dagster refuses partition keys holding these (dagster's INVALID_PARTITION_SUBSTRINGS).
INVALID_KEY_PARTS = ("...", "\a", "\b", "\f", "\n", "\r", "\t", "\v", "\0")

# One partition per repository, keyed by its path as COGO_REPOS gives it: the `repo` of its graph nodes,
# code_embeddings rows and cursor, so a key names the same repository everywhere and needs no lookup table.
REPOSITORIES = dg.DynamicPartitionsDefinition(name="repositories")


def configured_repos() -> list[str]:
    return [str(p) for p in Settings.from_env().repos]


def valid_key(repo: str) -> bool:
    return bool(repo) and not any(part in repo for part in INVALID_KEY_PARTS)


def repository_keys() -> list[str]:
    """The partition keys of COGO_REPOS' repositories (a path Dagster cannot take as a key is left out)."""
    return [repo for repo in configured_repos() if valid_key(repo)]


def register_repositories(instance: dg.DagsterInstance) -> list[str]:
    """Add a partition for each repository of COGO_REPOS that has none (none is ever removed here); the keys of
    COGO_REPOS, in its order. For whoever materializes without the sensor, as `make run` does."""
    keys = repository_keys()
    known = set(instance.get_dynamic_partitions(REPOSITORIES.name))
    new = [key for key in keys if key not in known]
    if new:
        instance.add_dynamic_partitions(REPOSITORIES.name, new)
    return keys


class Throttled:
    """Calls `log` at most every `every_s` seconds, plus the first and the final call, so a long step says how
    far it got without a line per batch."""

    def __init__(self, log: Callable[[str], None], every_s: float = PROGRESS_EVERY_S):
        self.log, self.every_s = log, every_s
        self.last: float | None = None

    def __call__(self, message: str, *, final: bool = False) -> None:
        now = time.monotonic()
        if final or self.last is None or now - self.last >= self.every_s:
            self.log(message)
            self.last = now


class CodeGraphConfig(dg.Config):
    heads: dict[str, str] = Field(
        default_factory=dict, description="repo -> commit to process up to (the sensor passes what it saw)."
    )
    max_commits: int | None = Field(default=None, description="A first run takes only the last N commits.")
    since: str | None = Field(default=None, description="A first run takes only commits after this date.")
    size_limit_bytes: int = Field(default=DEFAULT_SIZE_LIMIT, description="Larger files are recorded, not parsed.")


def build_progress(context: dg.AssetExecutionContext, repo: str) -> Callable[[str, BuildStats], None]:
    say = Throttled(context.log.info)

    def report(phase: str, stats: BuildStats) -> None:
        if phase == "head":
            say(f"{repo}: {stats.commits} commits read, linking the head {stats.head[:12]}", final=True)
        else:
            say(f"{repo}: {stats.commits} commits read, {stats.files_parsed} file versions parsed")

    return report


def build_one(
    context: dg.AssetExecutionContext, config: CodeGraphConfig, repo: str, store: GraphStore, conn: psycopg.Connection
) -> BuildStats:
    options = BuildOptions(
        head=config.heads.get(repo),
        max_commits=config.max_commits,
        since=config.since,
        size_limit=config.size_limit_bytes,
        progress=build_progress(context, repo),
    )
    try:
        stats = build_repository(repo, store, conn, options)
    except CogoError as exc:
        raise dg.Failure(f"{repo}: {exc}", allow_retries=False) from exc
    if stats.rewritten_from:
        context.log.warning(f"{repo}: history rewritten (was at {stats.rewritten_from}); rebuilt")
    for path, reason in stats.skipped:
        context.log.info(f"{repo}: {path} not parsed ({reason})")
    context.log.info(
        f"{repo}: {stats.commits} commits, {stats.files_changed} files changed at {stats.head[:12]}, "
        f"{stats.nodes_written} nodes and {stats.relationships_written} relationships written"
    )
    return stats


def graph_metadata(stats: BuildStats, backend: str, duration_s: float) -> dict[str, object]:
    numbers = stats.as_metadata()
    return {
        "repository": stats.repo,
        "graph_backend": backend,
        "head": stats.head,
        "commits": stats.commits,
        "nodes_written": stats.nodes_written,
        "relationships_written": stats.relationships_written,
        "calls_resolved": stats.calls_resolved,
        "calls_unresolved": stats.calls_unresolved,
        "rewritten_from": stats.rewritten_from or "",
        "skipped": dg.MetadataValue.json([f"{p} ({r})" for p, r in stats.skipped]),
        "build": dg.MetadataValue.json(numbers),
        "duration_s": round(duration_s, 3),
    }


def per_partition(context: dg.AssetExecutionContext, metadata: dict[str, dict[str, object]]) -> dg.MaterializeResult:
    """Each repository's figures on its own partition (a range run builds several)."""
    for key, values in metadata.items():
        context.add_asset_metadata(values, partition_key=key)
    # Every figure was given per partition above; a value here would be copied onto each of them.
    return dg.MaterializeResult()


@dg.asset(group_name="code", kinds=GRAPH_KINDS, deps=["platform_schema"], pool="neo4j", partitions_def=REPOSITORIES)
def code_graph(
    context: dg.AssetExecutionContext, config: CodeGraphConfig, postgres: PostgresResource, graph: GraphResource
) -> dg.MaterializeResult:
    """One repository's CodeFile, Function, Class, Library, Commit and Task nodes with CONTAINS, CALLS, IMPORTS,
    USES, MODIFIED_IN, AFFECTS and GENERATED_BY: the first-parent commits of its default branch after its cursor
    (table code_repo_cursors). A force-pushed branch is rebuilt and the rewrite recorded on the cursor.
    Idempotent: a re-run with no new commit writes nothing. Partition: the repository's path (COGO_REPOS)."""
    metadata = {}
    with graph.open() as store, postgres.connection(autocommit=True) as conn:
        store.ensure_schema()
        for repo in context.partition_keys:
            started = time.monotonic()
            stats = build_one(context, config, repo, store, conn)
            metadata[repo] = graph_metadata(stats, store.backend, time.monotonic() - started)
    return per_partition(context, metadata)


def embed_progress(context: dg.AssetExecutionContext, repo: str) -> Callable[[int, int], None]:
    say = Throttled(context.log.info)
    started = time.monotonic()

    def report(done: int, total: int) -> None:
        if done == 0:
            say(f"{repo}: {total} changed chunks to embed")
            return
        rate = done / max(time.monotonic() - started, 1e-6)
        say(f"{repo}: {done}/{total} changed chunks embedded ({rate:.1f}/s)", final=done == total)

    return report


@dg.asset(
    group_name="code",
    kinds={"postgres", "pgvector"},
    deps=[code_graph],
    pool="embeddings",
    partitions_def=REPOSITORIES,
)
def code_embeddings(
    context: dg.AssetExecutionContext, postgres: PostgresResource, embedder: EmbedderResource
) -> dg.MaterializeResult:
    """One chunk per function and class of the repository's head (file path, symbol, commit) embedded into
    code_embeddings, so "find similar code" works. Only chunks whose content changed are embedded; chunks of
    symbols the head no longer has are deleted. Partition: the repository's path, as code_graph."""
    model = embedder.for_model()
    metadata = {}
    with postgres.connection(autocommit=True) as conn:
        for repo in context.partition_keys:
            started = time.monotonic()
            stats = sync_code_embeddings(conn, repo, model, progress=embed_progress(context, repo))
            for key, reason in list(stats.failed.items())[:20]:
                context.log.warning(f"{repo}: {key} not embedded: {reason}")
            metadata[repo] = {
                "repository": repo,
                "model": model.model,
                "commit": stats.commit or "",
                "dagster/row_count": stats.chunks,
                "embedded": stats.embedded,
                "unchanged": stats.unchanged,
                "deleted": stats.deleted,
                "failed": len(stats.failed),
                "duration_s": round(time.monotonic() - started, 3),
            }
    return per_partition(context, metadata)


class ConceptLinksConfig(dg.Config):
    threshold: float = Field(
        default=DEFAULT_THRESHOLD, description="Cosine similarity at or above which code implements a concept."
    )


@dg.asset(
    group_name="code",
    kinds=GRAPH_KINDS,
    deps=[code_graph, code_embeddings],
    pool="neo4j",
    partitions_def=REPOSITORIES,
)
def concept_links(
    context: dg.AssetExecutionContext,
    config: ConceptLinksConfig,
    postgres: PostgresResource,
    graph: GraphResource,
    embedder: EmbedderResource,
) -> dg.MaterializeResult:
    """Concept nodes and RELATED_TO from the catalogue (table code_concepts); IMPLEMENTS from the repository's
    functions and classes by `Concepts: …` docstring tags and by embedding similarity above the threshold.
    Partition: the repository's path, as code_graph."""
    metadata = {}
    with graph.open() as store, postgres.connection(autocommit=True) as conn:
        for repo in context.partition_keys:
            stats = link_concepts(conn, store, [repo], embedder.for_model(), config.threshold)
            context.log.info(f"{repo}: {stats.tagged} links by tag, {stats.by_similarity} by similarity")
            metadata[repo] = {
                "repository": repo,
                "graph_backend": store.backend,
                "concepts": stats.concepts,
                "related_to": stats.related,
                "implements_by_tag": stats.tagged,
                "implements_by_similarity": stats.by_similarity,
                "per_concept": dg.MetadataValue.json(stats.per_concept),
                "threshold": config.threshold,
            }
    return per_partition(context, metadata)


def check_result(findings: dict[str, consistency.Finding], what: str) -> dg.AssetCheckResult:
    """Passed when no repository of the run has an offending row; else the count and a few of the rows."""
    total = sum(f.count for f in findings.values())
    counts: dict[str, int] = {}
    for finding in findings.values():
        for kind, n in finding.counts.items():
            counts[kind] = counts.get(kind, 0) + n
    sample = [{"repository": repo, **row} for repo, f in findings.items() for row in f.sample]
    return dg.AssetCheckResult(
        passed=total == 0,
        metadata={"offending_rows": total, **counts, "sample": dg.MetadataValue.json(sample)},
        description=None if total == 0 else f"{total} {what}",
    )


# Partitioned checks (a Dagster preview, which warns on load) for a status per repository: one repository's
# failure is not hidden by the next repository's pass.
@dg.asset_check(
    asset=code_graph,
    partitions_def=REPOSITORIES,
    pool="neo4j",
    description="Every Function and Class of the repository is contained in a CodeFile (a method through its class).",
)
def symbols_in_files(context: dg.AssetCheckExecutionContext, graph: GraphResource) -> dg.AssetCheckResult:
    with graph.open() as store:
        findings = {repo: consistency.uncontained_symbols(store, repo) for repo in context.partition_keys}
    return check_result(findings, "functions or classes in no CodeFile")


@dg.asset_check(
    asset=code_graph,
    partitions_def=REPOSITORIES,
    pool="neo4j",
    description="Every CALLS relationship of the repository joins two functions present at its head.",
)
def calls_have_both_ends(context: dg.AssetCheckExecutionContext, graph: GraphResource) -> dg.AssetCheckResult:
    with graph.open() as store:
        findings = {repo: consistency.dangling_calls(store, repo) for repo in context.partition_keys}
    return check_result(findings, "CALLS with an end not at the head")


@dg.asset_check(
    asset=code_embeddings,
    partitions_def=REPOSITORIES,
    pool="neo4j",
    description="code_embeddings has a vector of the configured model for every function and class at the "
    "repository's head in the graph, and none for a symbol the graph no longer has.",
)
def embeddings_follow_graph(
    context: dg.AssetCheckExecutionContext,
    postgres: PostgresResource,
    graph: GraphResource,
    embedder: EmbedderResource,
) -> dg.AssetCheckResult:
    model = embedder.default_model()  # the name only: the model is not loaded
    with graph.open() as store, postgres.connection(autocommit=True) as conn:
        findings = {
            repo: consistency.embeddings_out_of_step(store, conn, repo, model) for repo in context.partition_keys
        }
    return check_result(findings, "symbols out of step between the graph and code_embeddings")


code_graph_job = dg.define_asset_job(
    "code_graph_job",
    selection=[code_graph, code_embeddings, concept_links],
    executor_def=dg.in_process_executor,
    description="One repository's new commits to the graph, their code embeddings and concept links (with the "
    "checks), in one process.",
    owners=OWNERS,
    tags=TAGS,
)


def heads_now(repos: Sequence[str]) -> dict[str, str]:
    """Each repository's default-branch head (two cheap git calls each); unreadable ones are left out."""
    heads: dict[str, str] = {}
    for repo in repos:
        try:
            git = GitRepo(repo)
            heads[repo] = git.resolve(git.default_branch())
        except CogoError:
            continue
    return heads


def run_request(repo: str, sha: str) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=hashlib.sha256(f"{repo}\n{sha}".encode()).hexdigest()[:32],
        partition_key=repo,
        run_config={"ops": {"code_graph": {"config": {"heads": {repo: sha}}}}},
        tags={"cogo/repos": repo},
    )


def warn_unusable(context: dg.SensorEvaluationContext) -> None:
    for repo in configured_repos():
        if not valid_key(repo):
            context.log.warning(f"{repo!r} of COGO_REPOS cannot be a partition key ('...' or a control character)")


def read_cursor(raw: str | None) -> tuple[dict[str, str], bool]:
    """The heads seen, and whether their partitions were requested: a cursor written before the code assets were
    partitioned is the bare {repo: head}, and its repositories still need their partitions."""
    data = json.loads(raw) if raw else {}
    if "heads" in data:
        return data["heads"], True
    return data, False


def write_cursor(heads: dict[str, str]) -> str:
    return json.dumps({"heads": heads}, sort_keys=True)


@dg.sensor(
    job=code_graph_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts code_graph_job when a repository of COGO_REPOS has a new head on its default branch.",
    owners=OWNERS,
    tags=TAGS,
)
def git_commits_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    """One run per repository whose default branch moved, for its partition (added in the same tick when new),
    so repositories build in runs of their own. The run processes the commits itself: the sensor only reads each
    branch's head. A repository that leaves COGO_REPOS keeps its partition and its graph (deleting them is an
    operator's decision), said once in the sensor's log."""
    seen, registered = read_cursor(context.cursor)
    warn_unusable(context)
    repos = repository_keys()
    left = sorted(set(seen) - set(repos))
    for repo in left:
        context.log.info(f"{repo} left COGO_REPOS: its partition and its graph are kept")
    if not repos and not left:
        return dg.SkipReason("COGO_REPOS names no repository")
    moved = {repo: sha for repo, sha in heads_now(repos).items() if seen.get(repo) != sha}
    new_keys = sorted(set(moved) if registered else set(repos))
    cursor = write_cursor({**{r: s for r, s in seen.items() if r in repos}, **moved})
    if not moved and not new_keys and not left:
        return dg.SkipReason("no new commits")
    return dg.SensorResult(
        run_requests=[run_request(repo, sha) for repo, sha in sorted(moved.items())],
        dynamic_partitions_requests=[REPOSITORIES.build_add_request(new_keys)] if new_keys else [],
        skip_reason=None if moved else "no new commits",
        cursor=cursor,
    )


assets = [code_graph, code_embeddings, concept_links]
checks = [symbols_in_files, calls_have_both_ends, embeddings_follow_graph]
jobs = [code_graph_job]
sensors = [git_commits_sensor]
