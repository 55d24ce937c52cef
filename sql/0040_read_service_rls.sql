-- The read service's database role and row-level security: the second wall of tenant isolation.
-- The service connects as the owner (or any role that is a member of cogo_reader) and, in every
-- transaction, does SET LOCAL ROLE cogo_reader and sets cogo.organization_id to the caller's organisation.
-- Under that role a query that forgets its organisation filter still sees only the caller's rows.
-- The owner and other roles are unaffected (RLS is not forced): Dagster assets and migrations keep
-- working as before.

DO $$
BEGIN
    -- Roles are cluster-wide: another database on the same server may have created it already.
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cogo_reader') THEN
        CREATE ROLE cogo_reader NOLOGIN;
    END IF;
    -- The connecting role must be allowed to SET ROLE to it (superusers may anyway).
    BEGIN
        EXECUTE format('GRANT cogo_reader TO %I', current_user);
    EXCEPTION WHEN insufficient_privilege OR invalid_grant_operation THEN
        RAISE NOTICE 'could not grant cogo_reader to %: grant it by hand if this role is not a superuser', current_user;
    END;
END;
$$;

-- The caller's organisation for this transaction; NULL (no row visible) when unset.
CREATE FUNCTION cogo_current_organization() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT nullif(current_setting('cogo.organization_id', true), '')
$$;

GRANT USAGE ON SCHEMA public TO cogo_reader;
GRANT EXECUTE ON FUNCTION cogo_current_organization() TO cogo_reader;
GRANT SELECT ON organizations, users, organization_memberships, agents, organization_agents,
    conversations, messages, files, message_files, embeddings, agent_tasks, task_steps, code_embeddings
    TO cogo_reader;
GRANT SELECT ON "ConversationSessions", "ConversationMessages", "AgentTasks", "TaskSteps", "CodeEmbeddings"
    TO cogo_reader;

-- Tenant-owned tables: the row's organisation is the caller's.
ALTER TABLE organizations ENABLE ROW LEVEL SECURITY;
CREATE POLICY cogo_reader_tenant ON organizations FOR SELECT TO cogo_reader
    USING (id = cogo_current_organization());

ALTER TABLE organization_memberships ENABLE ROW LEVEL SECURITY;
CREATE POLICY cogo_reader_tenant ON organization_memberships FOR SELECT TO cogo_reader
    USING (organization_id = cogo_current_organization());

-- Users belong to no organisation themselves: visible when they are a member of the caller's.
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
CREATE POLICY cogo_reader_tenant ON users FOR SELECT TO cogo_reader
    USING (EXISTS (SELECT 1 FROM organization_memberships m
                    WHERE m.user_id = users.id AND m.organization_id = cogo_current_organization()
                      AND m.deleted_at IS NULL));

ALTER TABLE organization_agents ENABLE ROW LEVEL SECURITY;
CREATE POLICY cogo_reader_tenant ON organization_agents FOR SELECT TO cogo_reader
    USING (organization_id = cogo_current_organization());

-- Agents and code: NULL organisation is the platform's shared catalogue / shared repositories.
ALTER TABLE agents ENABLE ROW LEVEL SECURITY;
CREATE POLICY cogo_reader_tenant ON agents FOR SELECT TO cogo_reader
    USING (organization_id IS NULL OR organization_id = cogo_current_organization());

ALTER TABLE code_embeddings ENABLE ROW LEVEL SECURITY;
CREATE POLICY cogo_reader_tenant ON code_embeddings FOR SELECT TO cogo_reader
    USING (organization_id IS NULL OR organization_id = cogo_current_organization());

ALTER TABLE conversations ENABLE ROW LEVEL SECURITY;
CREATE POLICY cogo_reader_tenant ON conversations FOR SELECT TO cogo_reader
    USING (organization_id = cogo_current_organization());

ALTER TABLE messages ENABLE ROW LEVEL SECURITY;
CREATE POLICY cogo_reader_tenant ON messages FOR SELECT TO cogo_reader
    USING (organization_id = cogo_current_organization());

ALTER TABLE files ENABLE ROW LEVEL SECURITY;
CREATE POLICY cogo_reader_tenant ON files FOR SELECT TO cogo_reader
    USING (organization_id = cogo_current_organization());

ALTER TABLE message_files ENABLE ROW LEVEL SECURITY;
CREATE POLICY cogo_reader_tenant ON message_files FOR SELECT TO cogo_reader
    USING (organization_id = cogo_current_organization());

ALTER TABLE embeddings ENABLE ROW LEVEL SECURITY;
CREATE POLICY cogo_reader_tenant ON embeddings FOR SELECT TO cogo_reader
    USING (organization_id = cogo_current_organization());

ALTER TABLE agent_tasks ENABLE ROW LEVEL SECURITY;
CREATE POLICY cogo_reader_tenant ON agent_tasks FOR SELECT TO cogo_reader
    USING (organization_id = cogo_current_organization());

ALTER TABLE task_steps ENABLE ROW LEVEL SECURITY;
CREATE POLICY cogo_reader_tenant ON task_steps FOR SELECT TO cogo_reader
    USING (organization_id = cogo_current_organization());
