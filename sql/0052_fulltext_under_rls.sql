-- Full-text search under row-level security. The read service queries as cogo_reader, whose tenant policy
-- (sql/0040) Postgres must apply before any qual built from a function not marked LEAKPROOF; tsvector @@ tsquery
-- (ts_match_vq) is not marked, so under the policy the GIN index on embeddings.content_tsv could not be used and a
-- search read every chunk of the organisation (about 300 ms at 100,000 chunks, 1.4 ms with the index).
-- ts_match_vq only compares two already-parsed values and raises no data-dependent error, so it leaks nothing.
-- Marking it needs a superuser: elsewhere the migration says so and search stays correct, only slower.
DO $$
BEGIN
    ALTER FUNCTION pg_catalog.ts_match_vq(tsvector, tsquery) LEAKPROOF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'not a superuser: full-text search under row-level security will not use its GIN index';
END
$$;
