-- The read service's revocation check (cogo/service/auth.py): is a session's user, organisation or membership
-- known to be deleted? The service asks as cogo_reader (sql/0040), under whose row-level security a deleted user
-- is invisible (users show through a live membership only), so "deleted" could not be told from "not synced yet".
-- This function answers with the owner's view, and only with one word: nothing of the rows themselves.
--   'user_deleted', 'organization_deleted', 'membership_ended' (rows of this pair exist, none of them live),
--   or NULL: nothing known against the caller (live rows, or no rows at all: webhooks lag a new sign-up).
-- Three probes: the users and organizations primary keys, organization_memberships_user_idx.
CREATE FUNCTION cogo_session_revocation(caller_user_id text, caller_organization_id text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN (SELECT u.deleted_at FROM public.users u WHERE u.id = caller_user_id) IS NOT NULL
            THEN 'user_deleted'
        WHEN (SELECT o.deleted_at FROM public.organizations o WHERE o.id = caller_organization_id) IS NOT NULL
            THEN 'organization_deleted'
        WHEN NOT (SELECT bool_or(m.deleted_at IS NULL) FROM public.organization_memberships m
                  WHERE m.user_id = caller_user_id AND m.organization_id = caller_organization_id)
            THEN 'membership_ended'
    END
$$;

REVOKE ALL ON FUNCTION cogo_session_revocation(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cogo_session_revocation(text, text) TO cogo_reader;
