-- The helper table pgbench picks credits from: n = 1..count maps to one credit of the
-- ids file `ledger-loadgen seed` wrote, so pgbench and the service's `use` runs spend
-- the same credits.
-- Run with: psql -v site=<uuid> -v ids_file=<path> -f bench/credit_ids.sql
\set ON_ERROR_STOP on
DROP TABLE IF EXISTS bench_credit_ids;
CREATE TABLE bench_credit_ids (
    n                  int  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site_id            uuid NOT NULL DEFAULT :'site',
    billing_credit_id  uuid NOT NULL,
    membership_id      uuid NOT NULL
);
\set copy_ids '\\copy bench_credit_ids (billing_credit_id, membership_id) FROM ' :'ids_file' ' WITH (FORMAT text, DELIMITER '' '')'
:copy_ids
ANALYZE bench_credit_ids;
ANALYZE billing_credits;
ANALYZE events;
SELECT count(*) AS bench_credit_ids FROM bench_credit_ids;
