-- Settling an event (setting applied_at) also had to insert into this index: a third of the cost of the
-- settle step at 5,000 events a batch. The daily retention sweep over settled rows reads the (small,
-- 30-day) inbox sequentially instead.
DROP INDEX IF EXISTS clerk_webhook_inbox_applied_at_idx;
