-- Workspace files to searchable knowledge (issue 7): refused paths, extractions, chunks, embedding
-- failures, the per-model vector index registry and the knowledge indexes that decide what answers searches.

-- Paths under the workspace root that were not registered, and why. 'refused': the path itself is wrong
-- (layout, symlink, outside the root) and stays refused until it changes; 'pending': the path is fine but
-- names an organisation, user or conversation the database does not have (yet) - retried on every run.
CREATE TABLE workspace_refusals (
    storage_path        text PRIMARY KEY,
    organization_id     text,
    status              text NOT NULL CHECK (status IN ('refused', 'pending')),
    reason              text NOT NULL,
    first_seen_at       timestamptz NOT NULL DEFAULT now(),
    last_seen_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX workspace_refusals_status_idx ON workspace_refusals (status);

-- What extraction made of a file's current content (sha256) with the current chunker. A row whose sha256
-- or chunker_version differ from the file's is stale and the file is extracted again.
CREATE TABLE file_extractions (
    file_id             uuid PRIMARY KEY,
    organization_id     text NOT NULL,
    sha256              text NOT NULL,
    chunker_version     text NOT NULL,
    status              text NOT NULL CHECK (status IN ('ok', 'no_text', 'too_large', 'failed')),
    extractor           text,
    reason              text,
    segments            integer NOT NULL DEFAULT 0,
    characters          bigint NOT NULL DEFAULT 0,
    extracted_at        timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (file_id, organization_id) REFERENCES files (id, organization_id) ON DELETE CASCADE
);
CREATE INDEX file_extractions_status_idx ON file_extractions (status) WHERE status <> 'ok';

-- Chunks of a file under one chunk profile ('<chunker_version>/<chunk_size>/<chunk_overlap>'): agents may
-- chunk the same file differently. chunk_id = hash of the chunker version and the content (deterministic).
CREATE TABLE file_chunks (
    file_id             uuid NOT NULL,
    organization_id     text NOT NULL,
    chunk_profile       text NOT NULL,
    chunk_index         integer NOT NULL,
    chunk_id            text NOT NULL,
    content             text NOT NULL,
    content_sha256      text NOT NULL,
    position            jsonb NOT NULL DEFAULT '{}'::jsonb,
    token_count         integer NOT NULL,
    chunker_version     text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (file_id, chunk_profile, chunk_index),
    FOREIGN KEY (file_id, organization_id) REFERENCES files (id, organization_id) ON DELETE CASCADE
);
CREATE INDEX file_chunks_org_idx ON file_chunks (organization_id);

-- embeddings rows for file chunks: one per (file, model, chunk profile, chunk). A vector is computed once
-- per (model, content_sha256) and copied to every other row with the same content.
ALTER TABLE embeddings ADD COLUMN chunk_profile text;
CREATE UNIQUE INDEX embeddings_file_chunk_key
    ON embeddings (file_id, model, chunk_profile, chunk_index, chunk_id) WHERE file_id IS NOT NULL;
CREATE INDEX embeddings_model_content_idx ON embeddings (model, content_sha256);
CREATE INDEX embeddings_org_model_profile_idx ON embeddings (organization_id, model, chunk_profile);

-- A chunk the embedder could not embed after its retries: recorded, retried by later runs up to a limit.
CREATE TABLE embedding_failures (
    file_id             uuid NOT NULL,
    organization_id     text NOT NULL,
    model               text NOT NULL,
    chunk_profile       text NOT NULL,
    chunk_index         integer NOT NULL,
    chunk_id            text NOT NULL,
    reason              text NOT NULL,
    attempts            integer NOT NULL DEFAULT 1,
    failed_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (file_id, model, chunk_profile, chunk_index),
    FOREIGN KEY (file_id, organization_id) REFERENCES files (id, organization_id) ON DELETE CASCADE
);

-- One partial HNSW index per model over a cast to its dimension; created on the model's first use.
-- Models over 2,000 dimensions are indexed as halfvec (HNSW's limit for vector is 2,000).
CREATE TABLE embedding_models (
    model               text PRIMARY KEY,
    dims                integer NOT NULL CHECK (dims > 0),
    vector_type         text NOT NULL CHECK (vector_type IN ('vector', 'halfvec')),
    index_name          text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now()
);
INSERT INTO embedding_models (model, dims, vector_type, index_name)
VALUES ('local:all-MiniLM-L6-v2', 384, 'vector', 'embeddings_hnsw_local_all_minilm_l6_v2');

-- What answers an organisation's searches: its default index (source_id NULL, the configured embedder) and
-- one per agent knowledge source, each a (model, chunk profile). A changed model or chunker makes a new
-- index 'building'; the old one stays 'ready' and answers until the new one is complete, then is 'retired'
-- and its vectors removed.
CREATE TABLE knowledge_indexes (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id     text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    source_id           uuid REFERENCES agent_knowledge_sources (id) ON DELETE CASCADE,
    model               text NOT NULL,
    chunk_profile       text NOT NULL,
    state               text NOT NULL CHECK (state IN ('building', 'ready', 'retired')),
    created_at          timestamptz NOT NULL DEFAULT now(),
    ready_at            timestamptz,
    retired_at          timestamptz
);
CREATE UNIQUE INDEX knowledge_indexes_key
    ON knowledge_indexes (organization_id, source_id, model, chunk_profile) NULLS NOT DISTINCT;

-- The read service (sql/0040) searches as cogo_reader under row-level security.
GRANT SELECT ON agent_knowledge_sources, knowledge_indexes, embedding_models, file_chunks TO cogo_reader;
ALTER TABLE agent_knowledge_sources ENABLE ROW LEVEL SECURITY;
CREATE POLICY cogo_reader_tenant ON agent_knowledge_sources FOR SELECT TO cogo_reader
    USING (organization_id = cogo_current_organization());
ALTER TABLE knowledge_indexes ENABLE ROW LEVEL SECURITY;
CREATE POLICY cogo_reader_tenant ON knowledge_indexes FOR SELECT TO cogo_reader
    USING (organization_id = cogo_current_organization());
ALTER TABLE file_chunks ENABLE ROW LEVEL SECURITY;
CREATE POLICY cogo_reader_tenant ON file_chunks FOR SELECT TO cogo_reader
    USING (organization_id = cogo_current_organization());
