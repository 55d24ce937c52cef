-- Clerk events once stored an updated_at far in the future (a signed 9e15 ms became year 287,168): such a row
-- could not be read back by Python and discarded every later update as stale. The receiver now refuses
-- timestamps more than a day ahead; a row that already has one forgets it, so the next webhook or the daily
-- reconciliation writes it again.
UPDATE users SET clerk_updated_at = NULL WHERE clerk_updated_at > now() + interval '1 day';
UPDATE organizations SET clerk_updated_at = NULL WHERE clerk_updated_at > now() + interval '1 day';
UPDATE organization_memberships SET clerk_updated_at = NULL WHERE clerk_updated_at > now() + interval '1 day';
UPDATE users SET clerk_created_at = NULL WHERE clerk_created_at > now() + interval '1 day';
UPDATE organizations SET clerk_created_at = NULL WHERE clerk_created_at > now() + interval '1 day';
UPDATE organization_memberships SET clerk_created_at = NULL WHERE clerk_created_at > now() + interval '1 day';
