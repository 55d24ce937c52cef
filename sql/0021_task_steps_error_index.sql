-- The failing steps of a day's tasks, for task_rollups' most frequent failing step: a small partial index
-- read on its own (index-only), instead of every step of every task.
CREATE INDEX task_steps_error_task_idx ON task_steps (task_id) INCLUDE (organization_id, step_name)
    WHERE status = 'error';
