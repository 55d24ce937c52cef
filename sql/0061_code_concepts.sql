-- The concept catalogue of the code graph (issue 8): Concept nodes and their RELATED_TO edges come from
-- here; functions and classes are linked to a concept (IMPLEMENTS) by a `Concepts: A, B` line in their
-- docstring or by the similarity of their code to the concept's description. Operators edit this table.

CREATE TABLE code_concepts (
    name                text PRIMARY KEY,
    description         text NOT NULL,
    related             text[] NOT NULL DEFAULT '{}',
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER code_concepts_updated_at BEFORE UPDATE ON code_concepts
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

INSERT INTO code_concepts (name, description, related) VALUES
    ('Authentication', 'Verifying who a user or client is: login, passwords, session tokens, JWT verification, API keys, signing in and out.', '{Authorization,Security}'),
    ('Authorization', 'Deciding what an authenticated caller may do: roles, permissions, access control, organisation membership, row-level security.', '{Authentication,Security,Multi-tenancy}'),
    ('Security', 'Protecting data and systems: secrets handling, signatures, webhook verification, encryption, input validation.', '{Authentication,Authorization}'),
    ('Multi-tenancy', 'Keeping organisations separate: scoping every query and row by organization id, tenant isolation.', '{Authorization}'),
    ('Data serialization', 'Converting objects to and from JSON, bytes or other wire formats: encoding, decoding, parsing payloads.', '{}'),
    ('Database access', 'Reading and writing a relational database: SQL queries, connections, transactions, migrations, upserts.', '{Data serialization}'),
    ('Graph database', 'Storing and querying a graph: nodes, relationships, Cypher queries, Neo4j, batched graph upserts.', '{Database access}'),
    ('Embeddings', 'Turning text into vectors with an embedding model and searching them by similarity.', '{Semantic search}'),
    ('Semantic search', 'Finding documents or code by meaning: vector similarity, nearest neighbours, ranking results.', '{Embeddings}'),
    ('Code parsing', 'Reading source code into syntax trees: parsers, tree-sitter, symbols, imports and calls.', '{}'),
    ('Version control', 'Working with git history: commits, branches, diffs, blobs, trees.', '{}'),
    ('Scheduling and orchestration', 'Running work on a schedule or in reaction to events: pipelines, assets, sensors, jobs, retries.', '{}'),
    ('Data retention', 'Deleting data after its retention period: sweeps, expiry, audit of what was deleted.', '{Database access}'),
    ('HTTP API', 'Serving or calling HTTP endpoints: routes, requests, responses, status codes, webhooks.', '{Authentication}'),
    ('Error handling', 'Detecting, reporting and recovering from failures: exceptions, retries, error messages.', '{}'),
    ('Configuration', 'Reading settings from the environment or files: defaults, validation of configuration.', '{}'),
    ('Testing', 'Automated tests: fixtures, assertions, test data, fakes of external services.', '{}'),
    ('Caching', 'Keeping computed results to reuse them: memoization, caches, invalidation.', '{}'),
    ('Logging and metrics', 'Recording what happened: logs, metrics, timings, audit trails.', '{}')
ON CONFLICT (name) DO NOTHING;
