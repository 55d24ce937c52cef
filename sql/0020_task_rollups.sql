-- Task-log rollups (issue 4): a price table per model and the daily rollup of agent_tasks/task_steps.

-- What a model costs, in USD per million tokens. A price holds from effective_from (a UTC day) until the
-- model's next row, so a backfill prices each message at the price of its own day. Operators edit this
-- table; the rows below are list prices to start from, not a promise.
CREATE TABLE model_prices (
    model               text NOT NULL,
    effective_from      date NOT NULL DEFAULT '1970-01-01',
    input_usd_per_mtok  numeric(12, 4) NOT NULL CHECK (input_usd_per_mtok >= 0),
    output_usd_per_mtok numeric(12, 4) NOT NULL CHECK (output_usd_per_mtok >= 0),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model, effective_from)
);
INSERT INTO model_prices (model, input_usd_per_mtok, output_usd_per_mtok) VALUES
    ('gpt-4o-mini', 0.15, 0.60),
    ('gpt-4o', 2.50, 10.00),
    ('gpt-4.1', 2.00, 8.00),
    ('gpt-4.1-mini', 0.40, 1.60),
    ('o3-mini', 1.10, 4.40);
CREATE TRIGGER model_prices_updated_at BEFORE UPDATE ON model_prices
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- One row per UTC day (of the task's created_at) x organisation x agent x status. Rebuilt per day by
-- cogo.tasks.rollup (delete the days, insert them again, in one transaction), so no foreign keys: a
-- rollup is history and outlives the agent it counts.
CREATE TABLE task_rollups (
    day                 date NOT NULL,
    organization_id     text NOT NULL,
    agent_id            uuid,                       -- NULL: tasks without an agent (or whose agent was deleted)
    status              task_status NOT NULL,
    task_count          integer NOT NULL,
    started_count       integer NOT NULL,           -- tasks with a started_at
    -- COMPLETED / (COMPLETED + FAILED) of the day x organisation x agent (the same on each status row);
    -- NULL while none of them has finished either way. Cancellations are the user's choice, not counted.
    success_rate        double precision,
    queue_wait_p50_s    double precision,           -- created_at -> started_at, seconds
    queue_wait_p95_s    double precision,
    queue_wait_max_s    double precision,
    run_time_p50_s      double precision,           -- started_at -> completed_at, seconds
    run_time_p95_s      double precision,
    run_time_max_s      double precision,
    step_count          integer NOT NULL,
    steps_per_task      double precision NOT NULL,
    failed_step_count   integer NOT NULL,           -- steps with status 'error'
    top_failing_step    text,                       -- the most frequent step_name among them (ties: first by name)
    input_tokens        bigint NOT NULL,            -- user/system/tool messages attributed to the tasks
    output_tokens       bigint NOT NULL,            -- assistant messages attributed to the tasks
    estimated_cost_usd  numeric(16, 6) NOT NULL,
    unpriced_tokens     bigint NOT NULL,            -- tokens of models missing from model_prices (cost 0)
    computed_at         timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX task_rollups_key ON task_rollups (day, organization_id, agent_id, status) NULLS NOT DISTINCT;

-- Token attribution looks up "the next task of the same conversation" for every task of a day.
CREATE INDEX agent_tasks_conversation_created_idx ON agent_tasks (conversation_id, created_at, id);
