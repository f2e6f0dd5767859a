-- no-transaction
-- Replaced by billing_credits_member (0007).
DROP INDEX CONCURRENTLY IF EXISTS billing_credits_membership;
