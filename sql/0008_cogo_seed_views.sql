-- The COGO seed's table names as views over the unified schema, so its example SQL (section 7.2)
-- runs verbatim. security_invoker: row-level security of the caller applies through the views too.

CREATE VIEW "ConversationSessions" WITH (security_invoker = true) AS
SELECT id, user_id, title, created_at, updated_at, metadata
  FROM conversations;

CREATE VIEW "ConversationMessages" WITH (security_invoker = true) AS
SELECT id, conversation_id AS session_id, role, content, created_at, token_count, content_embedding
  FROM messages;

CREATE VIEW "AgentTasks" WITH (security_invoker = true) AS
SELECT id, conversation_id AS session_id, title, status, final_output, created_at, started_at, completed_at
  FROM agent_tasks;

CREATE VIEW "TaskSteps" WITH (security_invoker = true) AS
SELECT id, task_id, step_name, details, created_at
  FROM task_steps;

CREATE VIEW "CodeEmbeddings" WITH (security_invoker = true) AS
SELECT id, file_path, content, embedding, created_at
  FROM code_embeddings;
