-- Agents in the AJ seed's four parts: persona, knowledge, tasks and visibility.
-- organization_id NULL means a platform agent (the shared catalogue); otherwise the owning organisation.
-- Which organisations may use an agent is decided by organization_agents.

CREATE TYPE agent_visibility AS ENUM ('public', 'private', 'hidden');

CREATE TABLE agents (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id     text REFERENCES organizations (id) ON DELETE CASCADE,
    slug                text NOT NULL,
    -- Persona
    name                text NOT NULL,
    description         text,
    instructions        text,
    avatar_url          text,
    model_provider      text NOT NULL DEFAULT 'openai',
    model_name          text NOT NULL DEFAULT 'gpt-4o-mini',
    model_config        jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- Knowledge (defaults; agent_knowledge_sources holds the sources themselves)
    embedding_model     text NOT NULL DEFAULT 'local:all-MiniLM-L6-v2',
    knowledge_config    jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- Tasks
    capabilities        text[] NOT NULL DEFAULT '{}',
    tools               jsonb NOT NULL DEFAULT '[]'::jsonb,
    schedule            jsonb,
    -- Visibility
    visibility          agent_visibility NOT NULL DEFAULT 'private',
    visibility_groups   text[] NOT NULL DEFAULT '{}',
    is_active           boolean NOT NULL DEFAULT true,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz
);
-- A slug is unique within its owner; platform agents share one namespace.
CREATE UNIQUE INDEX agents_owner_slug_key ON agents (coalesce(organization_id, ''), slug);
CREATE INDEX agents_organization_idx ON agents (organization_id);

CREATE TABLE agent_knowledge_sources (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id     text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    agent_id            uuid NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    name                text NOT NULL,
    -- workspace: files under the workspace root; file: one file; url, text: inline sources; repo: a git repo.
    kind                text NOT NULL CHECK (kind IN ('workspace', 'file', 'url', 'text', 'repo')),
    uri                 text,
    -- Which workspace files: kinds of file and an optional glob on the path below files/.
    file_kinds          text[] NOT NULL DEFAULT '{upload,generated,attachment}',
    path_glob           text,
    embedding_model     text NOT NULL DEFAULT 'local:all-MiniLM-L6-v2',
    chunk_size          integer NOT NULL DEFAULT 256 CHECK (chunk_size > 0),
    chunk_overlap       integer NOT NULL DEFAULT 32 CHECK (chunk_overlap >= 0),
    config              jsonb NOT NULL DEFAULT '{}'::jsonb,
    is_active           boolean NOT NULL DEFAULT true,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (chunk_overlap < chunk_size)
);
CREATE INDEX agent_knowledge_sources_agent_idx ON agent_knowledge_sources (agent_id);
CREATE INDEX agent_knowledge_sources_org_idx ON agent_knowledge_sources (organization_id);

CREATE TABLE agent_quick_tasks (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_id            uuid NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    -- NULL: offered wherever the agent is; otherwise an organisation's own quick task.
    organization_id     text REFERENCES organizations (id) ON DELETE CASCADE,
    title               text NOT NULL,
    description         text,
    prompt              text NOT NULL,
    icon                text,
    sort_order          integer NOT NULL DEFAULT 0,
    -- A cron expression when the task runs on a schedule.
    schedule_cron       text,
    is_active           boolean NOT NULL DEFAULT true,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agent_quick_tasks_agent_idx ON agent_quick_tasks (agent_id, sort_order);

CREATE TABLE organization_agents (
    organization_id     text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    agent_id            uuid NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    enabled             boolean NOT NULL DEFAULT true,
    -- Roles or groups of the organisation that see the agent; empty means everyone.
    visibility_groups   text[] NOT NULL DEFAULT '{}',
    config_overrides    jsonb NOT NULL DEFAULT '{}'::jsonb,
    granted_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, agent_id)
);
CREATE INDEX organization_agents_agent_idx ON organization_agents (agent_id);

CREATE TRIGGER agents_updated_at BEFORE UPDATE ON agents
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER agent_knowledge_sources_updated_at BEFORE UPDATE ON agent_knowledge_sources
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER agent_quick_tasks_updated_at BEFORE UPDATE ON agent_quick_tasks
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
