-- no-transaction
-- A member's statement reads their deleted credits too (their history stays on it), which
-- the partial membership index (NOT deleted) cannot serve: one index for both, built
-- without blocking writers. 0008 drops the partial one.
CREATE INDEX CONCURRENTLY IF NOT EXISTS billing_credits_member ON billing_credits (site_id, wellness_plan_membership_id);
