-- One call to put a later table behind the read service's second wall (sql/0040): grant the reader role
-- SELECT and enable row-level security with the tenant policy. Tables created after 0040 are invisible to
-- cogo_reader until this is called for them (fail closed), e.g. in the migration that creates them:
--     SELECT cogo_protect_tenant_table('file_chunks');
-- shared_rows: rows with a NULL organization_id are visible to every organisation (platform-shared data).
CREATE FUNCTION cogo_protect_tenant_table(target regclass, shared_rows boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('GRANT SELECT ON %s TO cogo_reader', target);
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', target);
    EXECUTE format('DROP POLICY IF EXISTS cogo_reader_tenant ON %s', target);
    EXECUTE format(
        'CREATE POLICY cogo_reader_tenant ON %s FOR SELECT TO cogo_reader USING (%s organization_id = cogo_current_organization())',
        target, CASE WHEN shared_rows THEN 'organization_id IS NULL OR' ELSE '' END);
END;
$$;
