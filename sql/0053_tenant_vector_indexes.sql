-- One HNSW index per large organisation and model (issue 7). The per-model index holds every organisation's
-- vectors and a search keeps only the caller's: with one organisation in ten, the first pass of the graph walk
-- must be ten times larger for the same recall (recall@10 0.928 at ef_search 400 over 1,000,000 vectors). An
-- organisation with its own partial index (WHERE model = .. AND organization_id = ..) searches only its own
-- graph; an organisation too small for one is searched exactly (cogo/knowledge/search.py). A row here means the
-- index is complete and valid: it is inserted after CREATE INDEX CONCURRENTLY returns, and deleted before the
-- index is dropped.
CREATE TABLE tenant_vector_indexes (
    organization_id     text NOT NULL,
    model               text NOT NULL REFERENCES embedding_models (model) ON DELETE CASCADE,
    index_name          text NOT NULL UNIQUE,
    rows_at_build       bigint NOT NULL,
    build_seconds       double precision NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, model)
);

GRANT SELECT ON tenant_vector_indexes TO cogo_reader;
ALTER TABLE tenant_vector_indexes ENABLE ROW LEVEL SECURITY;
CREATE POLICY cogo_reader_tenant ON tenant_vector_indexes FOR SELECT TO cogo_reader
    USING (organization_id = cogo_current_organization());
