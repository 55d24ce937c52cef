-- Which agent tasks a member of the task's organisation may see, as one function for every read that shows a
-- task (code search shows the task that generated a symbol), so the rule has one place to change: the caller
-- started it, or it has no conversation, or its conversation is visible to the caller (shared, or theirs).
-- The organisation itself is not decided here: callers filter on it, and row-level security repeats that.
-- SECURITY INVOKER (the default), so under cogo_reader the conversations it reads are row-level secured too.
CREATE FUNCTION cogo_task_visible(t agent_tasks, me text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(t.user_id = me, false) OR t.conversation_id IS NULL OR EXISTS (
        SELECT 1 FROM conversations c
         WHERE c.id = t.conversation_id AND c.organization_id = t.organization_id
           AND (c.visibility = 'shared' OR c.user_id = me))
$$;
GRANT EXECUTE ON FUNCTION cogo_task_visible(agent_tasks, text) TO cogo_reader;
