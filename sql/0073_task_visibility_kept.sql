-- A task outlives its conversation (ON DELETE SET NULL), but not with wider visibility: when it is unlinked
-- it keeps the conversation's visibility and owner, so a private conversation's task stays visible only to
-- that conversation's owner and the task's own user. NULL: never linked, visible to its organisation.
ALTER TABLE agent_tasks
    ADD COLUMN kept_visibility text CHECK (kept_visibility IN ('private', 'shared')),
    ADD COLUMN kept_owner text;

-- Tasks already without a conversation cannot say whether they never had one or lost it to an earlier sweep
-- (which then showed a private conversation's task to everyone): they fail closed, visible to their own user.
UPDATE agent_tasks SET kept_visibility = 'private' WHERE conversation_id IS NULL;

CREATE FUNCTION agent_tasks_keep_visibility() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    SELECT c.visibility, c.user_id INTO NEW.kept_visibility, NEW.kept_owner
      FROM conversations c WHERE c.id = OLD.conversation_id;
    IF NOT FOUND THEN
        -- The conversation is already gone: fail closed.
        NEW.kept_visibility := 'private';
        NEW.kept_owner := NULL;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER agent_tasks_keep_visibility BEFORE UPDATE OF conversation_id ON agent_tasks
    FOR EACH ROW WHEN (OLD.conversation_id IS NOT NULL AND NEW.conversation_id IS NULL)
    EXECUTE FUNCTION agent_tasks_keep_visibility();

-- Whatever deletes a conversation, its tasks are unlinked while it still exists, so the trigger above finds
-- its visibility (the foreign key's own SET NULL runs after the row is gone).
CREATE FUNCTION conversations_unlink_tasks() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE agent_tasks SET conversation_id = NULL
     WHERE conversation_id = OLD.id AND organization_id = OLD.organization_id;
    RETURN OLD;
END;
$$;
CREATE TRIGGER conversations_unlink_tasks BEFORE DELETE ON conversations
    FOR EACH ROW EXECUTE FUNCTION conversations_unlink_tasks();

-- The rule of sql/0072 with the kept visibility: once unlinked, shared tasks and never-linked ones are the
-- organisation's, a private conversation's task stays its owner's.
CREATE OR REPLACE FUNCTION cogo_task_visible(t agent_tasks, me text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(t.user_id = me, false) OR CASE
        WHEN t.conversation_id IS NULL THEN
            coalesce(t.kept_visibility, 'shared') = 'shared' OR coalesce(t.kept_owner = me, false)
        ELSE EXISTS (
            SELECT 1 FROM conversations c
             WHERE c.id = t.conversation_id AND c.organization_id = t.organization_id
               AND (c.visibility = 'shared' OR c.user_id = me))
    END
$$;
