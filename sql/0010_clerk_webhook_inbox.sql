-- Verified Clerk webhooks, stored as received and applied later by the clerk_directory asset.
-- svix_id is the primary key, so a resend (Svix retries with the same id) is stored once.
-- event_time orders application: the object's own updated_at (Clerk milliseconds), else the envelope's
-- timestamp (deletes carry no updated_at), else the svix-timestamp header.
-- applied_at is set once an event is settled (applied, stale or ignored); the retention sweep deletes
-- those rows. Failed events keep applied_at NULL and are retried on the next run.
CREATE TABLE clerk_webhook_inbox (
    svix_id             text PRIMARY KEY,
    event_type          text NOT NULL,
    payload             jsonb NOT NULL,
    event_time          timestamptz NOT NULL,
    svix_timestamp      timestamptz NOT NULL,
    received_at         timestamptz NOT NULL DEFAULT now(),
    applied_at          timestamptz,
    status              text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'applied', 'stale', 'ignored', 'failed')),
    attempts            integer NOT NULL DEFAULT 0,
    last_attempt_at     timestamptz,
    last_error          text
);
CREATE INDEX clerk_webhook_inbox_unapplied_idx
    ON clerk_webhook_inbox (event_time, svix_id) WHERE applied_at IS NULL;
CREATE INDEX clerk_webhook_inbox_applied_at_idx
    ON clerk_webhook_inbox (applied_at) WHERE applied_at IS NOT NULL;

-- Clerk's millisecond epochs as timestamptz, exactly (no float rounding), so equal stamps compare equal.
CREATE OR REPLACE FUNCTION clerk_ms(ms bigint) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT 'epoch'::timestamptz + ms * interval '1 millisecond'
$$;
