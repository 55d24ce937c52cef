"""One contract for both graph backends (LadybugDB and a real Neo4j): the same tests, unchanged."""

from __future__ import annotations

import datetime as dt

import pytest

from cogo.graph.base import GraphStore
from cogo.graph.schema import NODE_PROPERTIES, REL_TYPES

SEED_6_1 = """
MATCH (c:Concept {name: "Authentication"})<-[:IMPLEMENTS]-(f:Function)
RETURN f.name, f.signature, f.docstring
"""


def sample_nodes() -> dict[str, list[dict]]:
    """One or two nodes of every label, ids repository-qualified as the design says."""
    return {
        "CodeFile": [
            {
                "id": "demo:src/auth.py",
                "repo": "demo",
                "path": "src/auth.py",
                "language": "python",
                "summary": "Token handling.",
            }
        ],
        "Function": [
            {
                "id": "demo:src.auth.TokenService.refresh_token",
                "repo": "demo",
                "name": "refresh_token",
                "qualified_name": "src.auth.TokenService.refresh_token",
                "signature": "(self, token: str) -> str",
                "docstring": "Issue a new access token.",
                "code_hash": "h1",
                "start_line": 10,
                "end_line": 20,
                "is_method": True,
                "decorators": ["staticmethod"],
            },
            {
                "id": "demo:src.auth.login",
                "repo": "demo",
                "name": "login",
                "qualified_name": "src.auth.login",
                "signature": "(user, password)",
                "docstring": "Check a password.",
                "code_hash": "h2",
            },
        ],
        "Class": [
            {
                "id": "demo:src.auth.TokenService",
                "repo": "demo",
                "name": "TokenService",
                "qualified_name": "src.auth.TokenService",
                "docstring": "Tokens.",
                "code_hash": "h3",
            }
        ],
        "Library": [{"id": "pypi:pyjwt", "name": "pyjwt", "version": "2.15.1", "ecosystem": "pypi"}],
        "Concept": [
            {"id": "authentication", "name": "Authentication", "description": "Who is calling."},
            {"id": "security", "name": "Security", "description": "Keeping things safe."},
        ],
        "Task": [{"id": "abc-123", "task_id": "abc-123"}],
        "Commit": [
            {
                "id": "demo:0f1e2d",
                "repo": "demo",
                "hash": "0f1e2d",
                "message": "Refresh tokens",
                "author": "alice",
                "timestamp": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
            }
        ],
    }


def sample_relationships() -> list[tuple[str, str, str, dict]]:
    f_refresh, f_login = "demo:src.auth.TokenService.refresh_token", "demo:src.auth.login"
    cls, file = "demo:src.auth.TokenService", "demo:src/auth.py"
    return [
        ("CONTAINS", "CodeFile", "Function", {"src": file, "dst": f_login}),
        ("CONTAINS", "CodeFile", "Class", {"src": file, "dst": cls}),
        ("CONTAINS", "Class", "Function", {"src": cls, "dst": f_refresh}),
        ("CALLS", "Function", "Function", {"src": f_refresh, "dst": f_login, "resolution": "scope", "confidence": 0.9}),
        ("IMPORTS", "CodeFile", "Library", {"src": file, "dst": "pypi:pyjwt", "alias": "jwt"}),
        ("USES", "Function", "Library", {"src": f_refresh, "dst": "pypi:pyjwt"}),
        ("USES", "Class", "Library", {"src": cls, "dst": "pypi:pyjwt"}),
        (
            "IMPLEMENTS",
            "Function",
            "Concept",
            {"src": f_refresh, "dst": "authentication", "score": 0.8, "source": "embedding"},
        ),
        ("IMPLEMENTS", "Function", "Concept", {"src": f_login, "dst": "authentication", "score": 1.0, "source": "tag"}),
        ("IMPLEMENTS", "Class", "Concept", {"src": cls, "dst": "authentication", "score": 0.7, "source": "embedding"}),
        ("RELATED_TO", "Concept", "Concept", {"src": "authentication", "dst": "security"}),
        ("MODIFIED_IN", "CodeFile", "Commit", {"src": file, "dst": "demo:0f1e2d", "change": "modified"}),
        ("AFFECTS", "Commit", "Function", {"src": "demo:0f1e2d", "dst": f_refresh, "change": "added"}),
        ("AFFECTS", "Commit", "Class", {"src": "demo:0f1e2d", "dst": cls, "change": "modified"}),
        ("GENERATED_BY", "CodeFile", "Task", {"src": file, "dst": "abc-123"}),
        ("GENERATED_BY", "Function", "Task", {"src": f_refresh, "dst": "abc-123"}),
        ("GENERATED_BY", "Class", "Task", {"src": cls, "dst": "abc-123"}),
    ]


def load_sample(graph: GraphStore) -> None:
    for label, rows in sample_nodes().items():
        assert graph.upsert_nodes(label, rows) == len(rows)
    for rel_type, a, b, row in sample_relationships():
        assert graph.upsert_relationships(rel_type, a, b, [row]) == 1, (rel_type, a, b)


def counts(graph: GraphStore) -> tuple[int, int]:
    nodes = graph.query("MATCH (n) RETURN count(n) AS n")[0]["n"]
    rels = graph.query("MATCH ()-[r]->() RETURN count(r) AS n")[0]["n"]
    return nodes, rels


def test_the_sample_covers_every_label_and_relationship_pair() -> None:
    assert set(sample_nodes()) == set(NODE_PROPERTIES)
    pairs = {(t, a, b) for t, a, b, _ in sample_relationships()}
    assert pairs == {(r.name, a, b) for r in REL_TYPES.values() for a, b in r.pairs}


def test_batch_upserts_are_idempotent(graph: GraphStore) -> None:
    load_sample(graph)
    first = counts(graph)
    load_sample(graph)
    load_sample(graph)
    assert counts(graph) == first == (9, len(sample_relationships()))


def test_an_upsert_sets_only_the_properties_it_carries(graph: GraphStore) -> None:
    load_sample(graph)
    graph.upsert_nodes("Function", [{"id": "demo:src.auth.login", "docstring": "Verify a password."}])
    row = graph.query(
        "MATCH (f:Function {id: $id}) RETURN f.name AS name, f.docstring AS doc, f.signature AS sig",
        {"id": "demo:src.auth.login"},
    )
    assert row == [{"name": "login", "doc": "Verify a password.", "sig": "(user, password)"}]


@pytest.mark.parametrize("rel_type,from_label,to_label,row", sample_relationships())
def test_every_seed_relationship_round_trips(
    graph: GraphStore, rel_type: str, from_label: str, to_label: str, row: dict
) -> None:
    load_sample(graph)
    props = {k: v for k, v in row.items() if k not in {"src", "dst"}}
    got = graph.query(
        f"MATCH (a:{from_label} {{id: $src}})-[r:{rel_type}]->(b:{to_label} {{id: $dst}}) RETURN r",
        {"src": row["src"], "dst": row["dst"]},
    )
    assert got == [{"r": {"_type": rel_type, **props}}]


def test_a_relationship_to_a_missing_node_writes_nothing_and_says_so(graph: GraphStore) -> None:
    load_sample(graph)
    written = graph.upsert_relationships(
        "CALLS",
        "Function",
        "Function",
        [
            {"src": "demo:src.auth.login", "dst": "demo:nowhere", "resolution": "import", "confidence": 1.0},
            {
                "src": "demo:src.auth.login",
                "dst": "demo:src.auth.TokenService.refresh_token",
                "resolution": "import",
                "confidence": 1.0,
            },
        ],
    )
    assert written == 1


def test_nodes_round_trip_with_their_types(graph: GraphStore) -> None:
    load_sample(graph)
    commit = graph.query("MATCH (c:Commit) RETURN c")[0]["c"]
    assert commit == {"_labels": ["Commit"], **sample_nodes()["Commit"][0]}
    fn = graph.query("MATCH (f:Function {name: 'refresh_token'}) RETURN f")[0]["f"]
    assert fn["decorators"] == ["staticmethod"] and fn["start_line"] == 10 and fn["is_method"] is True


def test_seed_read_query_6_1_answers(graph: GraphStore) -> None:
    load_sample(graph)
    rows = sorted(graph.query(SEED_6_1), key=lambda r: r["f.name"])
    assert rows == [
        {"f.name": "login", "f.signature": "(user, password)", "f.docstring": "Check a password."},
        {
            "f.name": "refresh_token",
            "f.signature": "(self, token: str) -> str",
            "f.docstring": "Issue a new access token.",
        },
    ]


def test_both_backends_return_the_same_rows(ladybug_graph: GraphStore, neo4j_graph: GraphStore) -> None:
    queries = [
        SEED_6_1,
        "MATCH (f:Function)-[r:CALLS]->(g:Function) RETURN f.qualified_name AS caller, g.name AS callee, r",
        "MATCH (c:Commit)-[r:AFFECTS]->(x) RETURN c.hash AS hash, x.name AS name, r.change AS change",
        "MATCH (n) RETURN n ORDER BY n.id",
    ]
    for store in (ladybug_graph, neo4j_graph):
        load_sample(store)
    for query in queries:
        key = str
        assert sorted(ladybug_graph.query(query), key=key) == sorted(neo4j_graph.query(query), key=key), query


def test_ensure_schema_is_idempotent(graph: GraphStore) -> None:
    graph.ensure_schema()
    graph.ensure_schema()
    load_sample(graph)
    assert counts(graph)[0] == 9


def test_unknown_labels_and_properties_are_refused(graph: GraphStore) -> None:
    with pytest.raises(ValueError, match="unknown node label"):
        graph.upsert_nodes("Person", [{"id": "x"}])
    with pytest.raises(ValueError, match="has no properties"):
        graph.upsert_nodes("Concept", [{"id": "x", "colour": "red"}])
    with pytest.raises(ValueError, match="does not go from"):
        graph.upsert_relationships("CALLS", "Class", "Function", [{"src": "a", "dst": "b"}])
