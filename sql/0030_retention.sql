-- Retention sweep (issue 5): its audit trail, and the indexes its deletes need.

-- One row per sweep. as_of is the sweep's clock (its "now"); windows are measured back from it.
-- status stays 'running' when a sweep dies without reaching its end; the next sweep finishes the job.
CREATE TABLE retention_runs (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    as_of               timestamptz NOT NULL,
    default_days        integer NOT NULL CHECK (default_days > 0),
    dry_run             boolean NOT NULL DEFAULT false,
    status              text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'succeeded', 'failed')),
    started_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at         timestamptz,
    error               text,
    -- Findings that are not deletions: refused paths, invalid overrides, skipped steps.
    notes               jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX retention_runs_started_idx ON retention_runs (started_at DESC);

-- What a sweep deleted (or, dry run, would delete), per table, organisation and reason. Written in the
-- same transaction as the batch it counts, so a sweep that dies halfway still accounts for every row it
-- removed, and the counts of all runs add up to what was removed.
-- table_name 'workspace_files' counts files removed from disk (or found already gone);
-- 'agent_tasks' counts tasks unlinked from their conversation (the task itself is kept).
CREATE TABLE retention_run_items (
    run_id              bigint NOT NULL REFERENCES retention_runs (id) ON DELETE CASCADE,
    table_name          text NOT NULL,
    organization_id     text NOT NULL,             -- '' for rows of no organisation (the webhook inbox)
    reason              text NOT NULL,             -- expired | user_deleted | applied | disk
    rows_deleted        bigint NOT NULL DEFAULT 0,
    rows_refused        bigint NOT NULL DEFAULT 0, -- disk: paths outside the workspace root, or in use
    PRIMARY KEY (run_id, table_name, organization_id, reason)
);

-- The deletes look rows up by these columns (foreign-key cascades and the deleted-user purge).
CREATE INDEX IF NOT EXISTS embeddings_message_idx ON embeddings (message_id) WHERE message_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS agent_states_conversation_idx ON agent_states (conversation_id)
    WHERE conversation_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS agent_states_org_updated_idx ON agent_states (organization_id, updated_at);
CREATE INDEX IF NOT EXISTS agent_states_user_idx ON agent_states (user_id);
CREATE INDEX IF NOT EXISTS files_user_idx ON files (user_id);
-- Files outside any conversation expire on their own clock; deleted-file rows after their deletion.
CREATE INDEX IF NOT EXISTS files_org_loose_updated_idx ON files (organization_id, updated_at)
    WHERE conversation_id IS NULL;
CREATE INDEX IF NOT EXISTS files_org_deleted_idx ON files (organization_id, deleted_at) WHERE status = 'deleted';
CREATE INDEX IF NOT EXISTS pending_file_deletions_file_idx ON pending_file_deletions (file_id);
