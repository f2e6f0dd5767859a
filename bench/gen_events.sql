-- Generates :credits credits of site :'site' straight into the events table: each one a
-- CreditIssued and a CreditUsed, so 2 × :credits events. Payloads are canonical (keys
-- sorted, optional fields null: what the service writes) and every hash chain is valid,
-- so `billing-credit-ledger verify` accepts the data. No projection rows are written:
-- `billing-credit-ledger replay` builds them.
--
-- Run on a freshly migrated database:
--   psql -v site=<uuid> -v credits=<count> -f bench/gen_events.sql
--
-- The attributes repeat in fixed cycles, so list filters find known fractions:
--   wellnessPlanId            00000000-0000-4000-8000-<n % 100, 12 hex digits>   1%
--   wellnessPlanMembershipId  00000000-0000-4000-9000-<n / 4, 12 hex digits>     4 credits
--   creditType monetary (currency USD) when n % 5 = 0, else quantity (unit visit)
--   isActive false when n % 10 = 0
\set ON_ERROR_STOP on
SET timezone = 'UTC';

-- chain::hash of crates/ledger-store/src/chain.rs: SHA-256 over the previous hash, the
-- ids, the version, the length-prefixed type, payload and actor, the schema version and
-- both instants in microseconds, every integer big-endian.
CREATE FUNCTION pg_temp.event_hash(previous bytea, event_id uuid, site_id uuid, credit_id uuid, version bigint,
                                   event_type text, payload text, actor text, at timestamptz)
RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
    SELECT sha256(previous || uuid_send(event_id) || uuid_send(site_id) || uuid_send(credit_id) || int8send(version)
                  || int8send(octet_length(event_type)::bigint) || convert_to(event_type, 'UTF8')
                  || int8send(octet_length(payload)::bigint) || convert_to(payload, 'UTF8')
                  || int8send(octet_length(actor)::bigint) || convert_to(actor, 'UTF8')
                  || int2send(1::smallint)
                  || int8send((extract(epoch FROM at) * 1000000)::bigint)
                  || int8send((extract(epoch FROM at) * 1000000)::bigint))
$$;

-- One row per credit: its ids, both events' payloads and instants, the issue's hash.
CREATE TEMP TABLE gen AS
WITH base AS (
    SELECT n,
           gen_random_uuid() AS credit_id,
           gen_random_uuid() AS issued_id,
           gen_random_uuid() AS used_id,
           n % 5 = 0 AS monetary,
           -- One credit issued every 10 ms from 2025-01-01, each used a day later.
           timestamptz '2025-01-01 00:00:00+00' + n * interval '10 milliseconds' AS issued_at,
           timestamptz '2025-01-02 00:00:00+00' + n * interval '10 milliseconds' AS used_at,
           '00000000-0000-4000-8000-' || lpad(to_hex(n % 100), 12, '0') AS plan_id,
           '00000000-0000-4000-9000-' || lpad(to_hex(n / 4), 12, '0') AS membership_id,
           to_char(date '2026-01-01' + (n % 730), 'YYYY-MM-DD') || 'T00:00:00Z' AS end_date,
           (n % 50 + 2)::text AS total_amount,
           n % 10 <> 0 AS is_active
    FROM generate_series(1, :credits) AS n
), payloads AS (
    SELECT base.*,
           '{"details":{"amountType":null,"appliedTo":null,"availableTo":null,"creditCategory":null,'
           || '"creditType":"' || CASE WHEN monetary THEN 'monetary' ELSE 'quantity' END || '",'
           || '"currency":' || CASE WHEN monetary THEN '{"code":"USD","display":"US dollar","system":"urn:iso:std:iso:4217"}' ELSE 'null' END || ','
           || '"endDate":"' || end_date || '","expiry":null,"extensions":null,'
           || '"measurementUnit":' || CASE WHEN monetary THEN 'null' ELSE '{"code":"visit","display":"Visit","system":"urn:heydonto:units"}' END || ','
           || '"startDate":"2025-01-01T00:00:00Z","wellnessPlanBenefitId":null,'
           || '"wellnessPlanId":"' || plan_id || '","wellnessPlanMembershipCycleId":null,'
           || '"wellnessPlanMembershipId":"' || membership_id || '","wellnessPlanMembershipStatusPeriodId":null},'
           || '"isActive":' || is_active || ',"totalAmount":"' || total_amount || '","usedAmount":"0","wastedAmount":"0"}'
               AS issued_payload,
           '{"amount":"1","note":null,"reference":"gen-' || n || '"}' AS used_payload
    FROM base
)
SELECT payloads.*,
       pg_temp.event_hash('\x0000000000000000000000000000000000000000000000000000000000000000'::bytea,
                          issued_id, :'site', credit_id, 1, 'CreditIssued', issued_payload, 'bench-gen', issued_at) AS issued_hash
FROM payloads;

INSERT INTO events (event_id, site_id, billing_credit_id, version, event_type, schema_version,
                    payload, actor, occurred_at, recorded_at, hash)
SELECT issued_id, :'site', credit_id, 1, 'CreditIssued', 1, issued_payload::json, 'bench-gen', issued_at, issued_at, issued_hash
FROM gen ORDER BY n;

INSERT INTO events (event_id, site_id, billing_credit_id, version, event_type, schema_version,
                    payload, actor, occurred_at, recorded_at, hash)
SELECT used_id, :'site', credit_id, 2, 'CreditUsed', 1, used_payload::json, 'bench-gen', used_at, used_at,
       pg_temp.event_hash(issued_hash, used_id, :'site', credit_id, 2, 'CreditUsed', used_payload, 'bench-gen', used_at)
FROM gen ORDER BY n;

DROP TABLE gen;
ANALYZE events;
SELECT count(*) AS generated_events FROM events WHERE site_id = :'site';
