-- Conversation messages in `embeddings` (issue 7): one row per (message, model, chunk of the message), with
-- the conversation's agent in agent_id so an agent's search stays inside the index scan. A message is
-- embedded with the organisation's default model and with its conversation agent's embedding_model.
CREATE UNIQUE INDEX embeddings_message_chunk_key
    ON embeddings (message_id, model, chunk_index) WHERE message_id IS NOT NULL;
CREATE INDEX embeddings_message_org_model_idx
    ON embeddings (organization_id, model, agent_id) WHERE message_id IS NOT NULL;

-- A message the embedder could not embed after its retries: recorded, retried by later runs up to a limit.
CREATE TABLE message_embedding_failures (
    message_id          bigint NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    organization_id     text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    model               text NOT NULL,
    reason              text NOT NULL,
    attempts            integer NOT NULL DEFAULT 1,
    failed_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, model)
);
