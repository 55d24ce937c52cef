"""The COGO seed's section 6 Cypher against the real Neo4j 5.26."""

from __future__ import annotations

import neo4j
import pytest
from neo4j import GraphDatabase

from cogo.graph.base import GraphStore
from tests.neo4j_server import Neo4jServer

SEED_6_2_VERBATIM = """// 1. Create Task node if it doesn't exist
MERGE (t:Task {task_id: 'abc-123'})
  ON CREATE SET t.prompt = '...'

// 2. Create new Function node
CREATE (f:Function {name: 'refresh_token', signature: '...', docstring: '...'})

// 3. Connect relationships
MATCH (file:CodeFile {path: '/src/auth.py'})
MATCH (concept:Concept {name: "Authentication"})
MERGE (file)-[:CONTAINS]->(f)
MERGE (f)-[:IMPLEMENTS]->(concept)
MERGE (t)<-[:GENERATED_BY]-(f) // Connect to which task generated it"""

# The one change Cypher requires: a WITH between the CREATE and the MATCH.
SEED_6_2_WITH = SEED_6_2_VERBATIM.replace("\n// 3. Connect", "\nWITH t, f\n// 3. Connect")


def test_seed_6_2_write_query_on_neo4j(neo4j_server: Neo4jServer, neo4j_graph: GraphStore) -> None:
    neo4j_graph.upsert_nodes("CodeFile", [{"id": "demo:/src/auth.py", "path": "/src/auth.py", "repo": "demo"}])
    neo4j_graph.upsert_nodes("Concept", [{"id": "authentication", "name": "Authentication"}])
    with GraphDatabase.driver(neo4j_server.url, auth=("neo4j", neo4j_server.password)) as driver:
        # As printed in the seed, Neo4j 5 rejects it: Cypher needs WITH between CREATE and MATCH.
        with pytest.raises(neo4j.exceptions.CypherSyntaxError, match="WITH is required between CREATE and MATCH"):
            driver.execute_query(SEED_6_2_VERBATIM)
        driver.execute_query(SEED_6_2_WITH)
    rows = neo4j_graph.query(
        "MATCH (file:CodeFile {path: '/src/auth.py'})-[:CONTAINS]->(f:Function)-[:IMPLEMENTS]->(c:Concept), "
        "(f)-[:GENERATED_BY]->(t:Task) RETURN f.name AS f, c.name AS c, t.task_id AS t, t.prompt AS prompt"
    )
    assert rows == [{"f": "refresh_token", "c": "Authentication", "t": "abc-123", "prompt": "..."}]
    # The seed's 6.1 read query finds the function the write created.
    found = neo4j_graph.query(
        'MATCH (c:Concept {name: "Authentication"})<-[:IMPLEMENTS]-(f:Function) RETURN f.name, f.signature, f.docstring'
    )
    assert found == [{"f.name": "refresh_token", "f.signature": "...", "f.docstring": "..."}]
