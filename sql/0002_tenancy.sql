-- Organisations, users and memberships, mirrored from Clerk. Clerk ids are the primary keys.
-- clerk_updated_at holds Clerk's own updated_at (milliseconds, converted at the edge) so that a stale
-- webhook or pull can be recognised; deleted_at marks a soft delete, which is final.

CREATE TABLE organizations (
    id                  text PRIMARY KEY CHECK (id LIKE 'org\_%'),
    name                text NOT NULL,
    slug                text,
    image_url           text,
    -- settings holds per-organisation policy, e.g. {"retention_days": 60}.
    settings            jsonb NOT NULL DEFAULT '{}'::jsonb,
    public_metadata     jsonb NOT NULL DEFAULT '{}'::jsonb,
    max_allowed_memberships integer,
    clerk_created_at    timestamptz,
    clerk_updated_at    timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz
);
CREATE UNIQUE INDEX organizations_slug_key ON organizations (slug) WHERE deleted_at IS NULL;

CREATE TABLE users (
    id                  text PRIMARY KEY CHECK (id LIKE 'user\_%'),
    email               text,
    first_name          text,
    last_name           text,
    username            text,
    image_url           text,
    public_metadata     jsonb NOT NULL DEFAULT '{}'::jsonb,
    last_sign_in_at     timestamptz,
    clerk_created_at    timestamptz,
    clerk_updated_at    timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz
);
CREATE INDEX users_email_idx ON users (lower(email)) WHERE deleted_at IS NULL;

-- No foreign keys here on purpose: Clerk may deliver a membership before its user or organisation,
-- and it must be kept (not rejected) until they arrive. Reads join on the ids.
CREATE TABLE organization_memberships (
    id                  text PRIMARY KEY,
    organization_id     text NOT NULL,
    user_id             text NOT NULL,
    -- One form for roles: Clerk's "org:admin" and a token's "admin" are both stored as "admin".
    role                text NOT NULL DEFAULT 'member',
    permissions         text[] NOT NULL DEFAULT '{}',
    clerk_created_at    timestamptz,
    clerk_updated_at    timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz
);
CREATE UNIQUE INDEX organization_memberships_org_user_key
    ON organization_memberships (organization_id, user_id) WHERE deleted_at IS NULL;
CREATE INDEX organization_memberships_user_idx ON organization_memberships (user_id);

CREATE TRIGGER organizations_updated_at BEFORE UPDATE ON organizations
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER users_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER organization_memberships_updated_at BEFORE UPDATE ON organization_memberships
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
