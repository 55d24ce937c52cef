"""The sweep's row sets, as SQL over the parameters %(org)s, %(cutoff)s and %(now)s.

Steps run in this order, each on what the earlier ones left: deleted users' conversations, files and
agent states; then expired conversations, files and agent states; then applied inbox events. The sets are
written so that they are disjoint even when nothing has been deleted yet, which is what a dry run counts:
a row is counted once, under the step that would delete it.
"""

from __future__ import annotations

# A user deleted in Clerk by the sweep's clock.
DELETED_USER = "EXISTS (SELECT 1 FROM users du WHERE du.id = {col} AND du.deleted_at <= %(now)s)"

# An agent state updated inside the window keeps its conversation (deleting the conversation would
# cascade to the state).
ACTIVE_STATE = (
    "EXISTS (SELECT 1 FROM agent_states act WHERE act.conversation_id = {col} AND act.updated_at >= %(cutoff)s "
    "AND NOT " + DELETED_USER.format(col="act.user_id") + ")"
)


def conversation_goes(col: str) -> str:
    """True when the conversation `col` is deleted by this sweep (its owner's deletion or its expiry)."""
    return (
        f"EXISTS (SELECT 1 FROM conversations gc WHERE gc.id = {col} AND ("
        + DELETED_USER.format(col="gc.user_id")
        + " OR (gc.updated_at < %(cutoff)s AND NOT "
        + ACTIVE_STATE.format(col="gc.id")
        + ")))"
    )


USER_CONVERSATIONS = "SELECT c.id FROM conversations c WHERE c.organization_id = %(org)s AND " + DELETED_USER.format(
    col="c.user_id"
)

EXPIRED_CONVERSATIONS = (
    "SELECT c.id FROM conversations c WHERE c.organization_id = %(org)s AND c.updated_at < %(cutoff)s "
    "AND NOT " + DELETED_USER.format(col="c.user_id") + " AND NOT " + ACTIVE_STATE.format(col="c.id")
)

USER_FILES = (
    "SELECT f.id FROM files f WHERE f.organization_id = %(org)s AND "
    + DELETED_USER.format(col="f.user_id")
    + " AND NOT EXISTS (SELECT 1 FROM conversations uc WHERE uc.id = f.conversation_id AND "
    + DELETED_USER.format(col="uc.user_id")
    + ")"
)

# Files outside any conversation expire on their own last change; files inside one go with it.
EXPIRED_LOOSE_FILES = (
    "SELECT f.id FROM files f WHERE f.organization_id = %(org)s AND f.conversation_id IS NULL "
    "AND f.status = 'active' AND f.updated_at < %(cutoff)s AND NOT " + DELETED_USER.format(col="f.user_id")
)

# Rows of files already deleted on disk (status 'deleted'), kept for the window after their deletion.
EXPIRED_DELETED_FILES = (
    "SELECT f.id FROM files f WHERE f.organization_id = %(org)s AND f.status = 'deleted' "
    "AND f.deleted_at < %(cutoff)s AND NOT "
    + DELETED_USER.format(col="f.user_id")
    + " AND NOT "
    + conversation_goes("f.conversation_id")
)

USER_STATES = (
    "SELECT s.id FROM agent_states s WHERE s.organization_id = %(org)s AND "
    + DELETED_USER.format(col="s.user_id")
    + " AND NOT EXISTS (SELECT 1 FROM conversations uc WHERE uc.id = s.conversation_id AND "
    + DELETED_USER.format(col="uc.user_id")
    + ")"
)

EXPIRED_STATES = (
    "SELECT s.id FROM agent_states s WHERE s.organization_id = %(org)s AND s.updated_at < %(cutoff)s AND NOT "
    + DELETED_USER.format(col="s.user_id")
    + " AND NOT "
    + conversation_goes("s.conversation_id")
)

# Settled Clerk webhook events (clerk_webhook_inbox), kept for the default window so that Svix's retries of
# an event are still recognised as duplicates, then deleted.
APPLIED_INBOX_EVENTS = "SELECT i.svix_id FROM clerk_webhook_inbox i WHERE i.applied_at < %(cutoff)s"


def batch(select_sql: str, alias: str) -> str:
    """The set's next batch, locked; rows another transaction holds are left for later."""
    return f"{select_sql} LIMIT %(limit)s FOR UPDATE OF {alias} SKIP LOCKED"
