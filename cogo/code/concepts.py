"""Concepts: the catalogue (table code_concepts) as Concept nodes with RELATED_TO, and IMPLEMENTS from the
live functions and classes of each repository — by an explicit `Concepts: A, B` line in the docstring
(source "tag", score 1) and, when an embedder is given, by the cosine similarity between the symbol's
code embedding and the concept's description at or above a threshold (source "embedding")."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import psycopg
from pgvector.psycopg import register_vector

from cogo.code import store
from cogo.embed import Embedder
from cogo.graph.base import GraphStore

TAG_LINE = re.compile(r"^\s*Concepts?\s*:\s*(.+?)\s*$", re.MULTILINE | re.IGNORECASE)
# Cosine similarity (all-MiniLM-L6-v2) between a concept's description and a symbol's chunk at or above
# which the symbol counts as implementing the concept; see bench/RESULTS.md (issue 8) for the calibration.
DEFAULT_THRESHOLD = 0.45
MAX_PER_CONCEPT = 50


@dataclass(frozen=True)
class Concept:
    name: str
    description: str | None
    related: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return "concept:" + re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")


@dataclass
class ConceptStats:
    concepts: int = 0
    related: int = 0
    tagged: int = 0
    by_similarity: int = 0
    per_concept: dict[str, int] = field(default_factory=dict)


def load_catalogue(conn: psycopg.Connection) -> list[Concept]:
    rows = conn.execute("SELECT name, description, related FROM code_concepts ORDER BY name").fetchall()
    return [Concept(name, description, tuple(related)) for name, description, related in rows]


def docstring_tags(docstring: str | None) -> list[str]:
    if not docstring:
        return []
    names: list[str] = []
    for line in TAG_LINE.findall(docstring):
        names.extend(n.strip().rstrip(".") for n in line.split(",") if n.strip())
    return names


def link_concepts(
    conn: psycopg.Connection,
    graph: GraphStore,
    repos: list[str],
    embedder: Embedder | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> ConceptStats:
    stats = ConceptStats()
    catalogue = {c.name.lower(): c for c in load_catalogue(conn)}
    implements: dict[tuple[str, str, str], tuple[float, str]] = {}  # (label, symbol id, concept id) -> score

    for repo in repos:
        for facts in store.load_facts(conn, repo):
            for symbol in facts.symbols:
                for name in docstring_tags(symbol.docstring):
                    concept = catalogue.setdefault(name.lower(), Concept(name, None))
                    label = "Function" if symbol.kind == "function" else "Class"
                    implements[(label, f"{repo}:{symbol.qualified_name}", concept.id)] = (1.0, "tag")
    stats.tagged = len(implements)

    if embedder is not None:
        register_vector(conn)
        concepts = [c for c in catalogue.values() if c.description]
        vectors = embedder.embed([f"{c.name}: {c.description}" for c in concepts]) if concepts else []
        for concept, vector in zip(concepts, vectors, strict=True):
            rows = conn.execute(
                """SELECT repo, symbol, symbol_kind, 1 - (embedding <=> %s) AS similarity FROM code_embeddings
                    WHERE repo = ANY(%s) AND model = %s AND embedding IS NOT NULL AND symbol IS NOT NULL
                      AND 1 - (embedding <=> %s) >= %s
                    ORDER BY embedding <=> %s LIMIT %s""",
                (vector, repos, embedder.model, vector, threshold, vector, MAX_PER_CONCEPT),
            ).fetchall()
            for repo, symbol, kind, similarity in rows:
                key = ("Function" if kind == "function" else "Class", f"{repo}:{symbol}", concept.id)
                if key not in implements:
                    implements[key] = (round(float(similarity), 4), "embedding")
                    stats.by_similarity += 1

    graph.upsert_nodes(
        "Concept", [{"id": c.id, "name": c.name, "description": c.description} for c in catalogue.values()]
    )
    stats.concepts = len(catalogue)
    by_name = {c.name.lower(): c for c in catalogue.values()}
    related = [
        {"src": c.id, "dst": by_name[r.lower()].id}
        for c in catalogue.values()
        for r in c.related
        if r.lower() in by_name
    ]
    stats.related = graph.upsert_relationships("RELATED_TO", "Concept", "Concept", related)
    for label in ("Function", "Class"):
        graph.write(f"MATCH (s:{label})-[r:IMPLEMENTS]->(:Concept) WHERE s.repo IN $repos DELETE r", {"repos": repos})
        rows = [
            {"src": sid, "dst": cid, "score": score, "source": source}
            for (lab, sid, cid), (score, source) in implements.items()
            if lab == label
        ]
        graph.upsert_relationships("IMPLEMENTS", label, "Concept", rows)
    for (_, _, cid), _ in implements.items():
        stats.per_concept[cid] = stats.per_concept.get(cid, 0) + 1
    return stats
