//! A command in four round trips: BEGIN with the credits' locks ([`begin_locking`]),
//! [`load`], [`write`], COMMIT.
//!
//! The locks are advisory, not FOR UPDATE: a row lock gives the transaction its id at
//! once, and a transaction that then waits for another credit would commit that credit's
//! next version under an older id than its previous one, out of order in the feed (which
//! reads in txid order). Advisory locks assign no id: it comes with the first insert,
//! after every lock is held. They are taken in one fixed order (keys sorted), so two
//! commands over the same credits cannot deadlock, on the key
//! `hashtextextended('<site>/<credit>', 0)` that every version of the ledger uses, so
//! replicas of two versions still exclude each other during a rolling upgrade.
//!
//! The locks ride with BEGIN in one simple-query message (the keys are ids written as
//! literals, nothing a caller types), and the load is a statement of its own: in READ
//! COMMITTED each statement reads on a snapshot taken when it starts, so the load sees
//! whatever the previous holders of the locks committed. (Migration 0006's
//! `ledger_lock_and_load` did both in one plpgsql call, which cost more than the trip
//! it saved.)
//!
//! Each statement's text is fixed whatever the size of the group, with its rows bound
//! as arrays and unnested in SQL, so every connection prepares it once and keeps it.

use ledger_domain::Credit;
use sqlx::postgres::PgConnection;
use sqlx::Row;
use uuid::Uuid;

use super::counts::CountDeltas;
use super::PgDialect;
use crate::error::StoreError;
use crate::model::{FeedCursor, RecordedEvent};
use crate::prepare::{PreparedCredit, PreparedEvent};
use crate::sql::{rows, Dialect, Locked, WriteError};

/// The lock keys' texts, `<site>/<credit>`, sorted (uuids order as their bytes do, in
/// Rust and in Postgres alike) and without repeats.
fn lock_texts(keys: &[(Uuid, Uuid)]) -> Vec<String> {
    let mut keys = keys.to_vec();
    keys.sort_unstable();
    keys.dedup();
    keys.iter().map(|(site, credit)| format!("{site}/{credit}")).collect()
}

/// BEGIN and the credits' locks, as one simple query.
pub(super) fn begin_locking(keys: &[(Uuid, Uuid)]) -> String {
    if keys.is_empty() {
        return PgDialect::BEGIN_WRITE.to_string();
    }
    // An array literal of ids and slashes: nothing in it needs quoting.
    format!(
        "{}; SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest('{{{}}}'::text[]) AS k",
        PgDialect::BEGIN_WRITE,
        lock_texts(keys).join(",")
    )
}

/// The credits' locks, inside a transaction already begun.
pub(super) async fn lock(conn: &mut PgConnection, keys: &[(Uuid, Uuid)]) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest($1::text[]) AS k")
        .bind(lock_texts(keys))
        .execute(conn)
        .await
        .map_err(StoreError::from_sqlx)?;
    Ok(())
}

/// The credits' rows, then the command ids already applied (command_id set).
const LOAD: &str = "\
SELECT b.site_id, b.billing_credit_id, b.state::text AS state, b.last_hash, NULL::uuid AS command_id
  FROM billing_credits b
 WHERE (b.site_id, b.billing_credit_id) IN (SELECT * FROM unnest($1::uuid[], $2::uuid[]))
UNION ALL
SELECT DISTINCT e.site_id, NULL::uuid, NULL::text, NULL::bytea, e.command_id
  FROM events e
 WHERE (e.site_id, e.command_id) IN (SELECT * FROM unnest($3::uuid[], $4::uuid[]))";

/// Reads the locked credits and which of `commands` are applied already.
pub(super) async fn load(
    conn: &mut PgConnection,
    keys: &[(Uuid, Uuid)],
    commands: &[(Uuid, Uuid)],
) -> Result<Locked, StoreError> {
    let (sites, ids): (Vec<Uuid>, Vec<Uuid>) = keys.iter().copied().unzip();
    let (command_sites, command_ids): (Vec<Uuid>, Vec<Uuid>) = commands.iter().copied().unzip();
    let found = sqlx::query(LOAD)
        .bind(&sites)
        .bind(&ids)
        .bind(&command_sites)
        .bind(&command_ids)
        .fetch_all(conn)
        .await
        .map_err(StoreError::from_sqlx)?;
    let mut locked = Locked::default();
    for row in &found {
        let site_id: Uuid = row.try_get("site_id").map_err(StoreError::from_sqlx)?;
        match row.try_get::<Option<Uuid>, _>("command_id").map_err(StoreError::from_sqlx)? {
            Some(command_id) => {
                locked.applied.insert((site_id, command_id));
            }
            None => {
                let state = rows::state::<PgDialect>(row)?;
                let last_hash = rows::hash::<PgDialect>(row, "last_hash")?;
                locked.rows.insert((site_id, state.billing_credit_id), (state, last_hash));
            }
        }
    }
    Ok(locked)
}

/// Inserts the events, inserts or updates the projection rows and moves the list
/// counters: one statement. Existing rows are updated in place rather than upserted,
/// which skips the speculative insert into the primary key.
const WRITE: &str = "\
WITH new_events AS (
    INSERT INTO events (event_id, site_id, billing_credit_id, version, event_type, schema_version, payload,
                        actor, command_id, correlation_id, causation_id, occurred_at, recorded_at, hash)
    SELECT e.event_id, e.site_id, e.billing_credit_id, e.version, e.event_type, e.schema_version, e.payload::json,
           e.actor, e.command_id, e.correlation_id, e.causation_id, e.occurred_at, e.recorded_at, e.hash
      FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::int8[], $5::text[], $6::int2[], $7::text[], $8::text[],
                  $9::uuid[], $10::uuid[], $11::uuid[], $12::timestamptz[], $13::timestamptz[], $14::bytea[])
           WITH ORDINALITY AS e(event_id, site_id, billing_credit_id, version, event_type, schema_version, payload,
                                actor, command_id, correlation_id, causation_id, occurred_at, recorded_at, hash, n)
     ORDER BY e.n
    RETURNING event_id, position, txid::text AS txid
), changed AS (
    SELECT * FROM unnest($15::bool[], $16::uuid[], $17::uuid[], $18::int8[], $19::bytea[], $20::bool[], $21::bool[],
                         $22::text[], $23::bool[], $24::uuid[], $25::uuid[], $26::uuid[], $27::uuid[], $28::uuid[],
                         $29::timestamptz[], $30::timestamptz[], $31::timestamptz[], $32::timestamptz[],
                         $33::numeric[], $34::numeric[], $35::numeric[], $36::numeric[], $37::text[])
           AS p(is_new, site_id, billing_credit_id, version, last_hash, deleted, expired, credit_type, is_active,
                wellness_plan_id, wellness_plan_benefit_id, wellness_plan_membership_id,
                wellness_plan_membership_cycle_id, wellness_plan_membership_status_period_id, start_date, end_date,
                created_at, updated_at, total_amount, used_amount, wasted_amount, remaining_amount, state)
), created AS (
    -- A row that appeared since the load is another writer's: its events' versions
    -- collide with ours and fail the statement, so nothing is lost by not writing it.
    INSERT INTO billing_credits (site_id, billing_credit_id, version, last_hash, deleted, expired, credit_type,
                                 is_active, wellness_plan_id, wellness_plan_benefit_id, wellness_plan_membership_id,
                                 wellness_plan_membership_cycle_id, wellness_plan_membership_status_period_id,
                                 start_date, end_date, created_at, updated_at, total_amount, used_amount,
                                 wasted_amount, remaining_amount, state)
    SELECT site_id, billing_credit_id, version, last_hash, deleted, expired, credit_type, is_active,
           wellness_plan_id, wellness_plan_benefit_id, wellness_plan_membership_id, wellness_plan_membership_cycle_id,
           wellness_plan_membership_status_period_id, start_date, end_date, created_at, updated_at, total_amount,
           used_amount, wasted_amount, remaining_amount, state::json
      FROM changed WHERE is_new
    ON CONFLICT (site_id, billing_credit_id) DO NOTHING
), updated AS (
    UPDATE billing_credits b
       SET version = p.version, last_hash = p.last_hash, deleted = p.deleted, expired = p.expired,
           credit_type = p.credit_type, is_active = p.is_active, wellness_plan_id = p.wellness_plan_id,
           wellness_plan_benefit_id = p.wellness_plan_benefit_id,
           wellness_plan_membership_id = p.wellness_plan_membership_id,
           wellness_plan_membership_cycle_id = p.wellness_plan_membership_cycle_id,
           wellness_plan_membership_status_period_id = p.wellness_plan_membership_status_period_id,
           start_date = p.start_date, end_date = p.end_date, created_at = p.created_at, updated_at = p.updated_at,
           total_amount = p.total_amount, used_amount = p.used_amount, wasted_amount = p.wasted_amount,
           remaining_amount = p.remaining_amount, state = p.state::json
      FROM changed p
     WHERE NOT p.is_new AND b.site_id = p.site_id AND b.billing_credit_id = p.billing_credit_id
), counted AS (
    INSERT INTO credit_counts (site_id, credit_type, is_active, live)
    SELECT * FROM unnest($38::uuid[], $39::text[], $40::bool[], $41::int8[])
    ON CONFLICT (site_id, credit_type, is_active) DO UPDATE SET live = credit_counts.live + EXCLUDED.live
)
SELECT event_id, position, txid FROM new_events";

/// Writes the events, the projection rows and the counters in one round trip.
pub(super) async fn write(
    conn: &mut PgConnection,
    events: Vec<PreparedEvent>,
    changed: &[(Option<&Credit>, &PreparedCredit)],
) -> Result<Vec<RecordedEvent>, WriteError> {
    if events.is_empty() {
        return Ok(vec![]);
    }
    let e = EventColumns::of(&events);
    let p = ProjectionColumns::of(changed);
    let mut deltas = CountDeltas::default();
    for (before, after) in changed {
        deltas.record(*before, &after.credit);
    }
    let counts = deltas.columns();
    let [plan, benefit, membership, cycle, status_period] = p.plan_ids;
    let [total, used, wasted, remaining] = p.amounts;
    let returned = sqlx::query(WRITE)
        .bind(e.event_id)
        .bind(e.site_id)
        .bind(e.billing_credit_id)
        .bind(e.version)
        .bind(e.event_type)
        .bind(e.schema_version)
        .bind(e.payload)
        .bind(e.actor)
        .bind(e.command_id)
        .bind(e.correlation_id)
        .bind(e.causation_id)
        .bind(e.occurred_at)
        .bind(e.recorded_at)
        .bind(e.hash)
        .bind(p.is_new)
        .bind(p.site_id)
        .bind(p.billing_credit_id)
        .bind(p.version)
        .bind(p.last_hash)
        .bind(p.deleted)
        .bind(p.expired)
        .bind(p.credit_type)
        .bind(p.is_active)
        .bind(plan)
        .bind(benefit)
        .bind(membership)
        .bind(cycle)
        .bind(status_period)
        .bind(p.start_date)
        .bind(p.end_date)
        .bind(p.created_at)
        .bind(p.updated_at)
        .bind(total)
        .bind(used)
        .bind(wasted)
        .bind(remaining)
        .bind(p.state)
        .bind(counts.0)
        .bind(counts.1)
        .bind(counts.2)
        .bind(counts.3)
        .fetch_all(conn)
        .await
        .map_err(PgDialect::write_error)?;
    let mut cursors = std::collections::HashMap::with_capacity(returned.len());
    for row in &returned {
        let event_id: Uuid = row.try_get("event_id").map_err(|e| WriteError::Other(StoreError::from_sqlx(e)))?;
        cursors.insert(event_id, PgDialect::cursor(row).map_err(WriteError::Other)?);
    }
    events
        .into_iter()
        .map(|e| {
            let cursor: FeedCursor = *cursors.get(&e.record.event_id).ok_or_else(|| {
                WriteError::Other(StoreError::Corrupt("the database did not return an inserted event".into()))
            })?;
            Ok(RecordedEvent { position: cursor.position, cursor, ..e.record })
        })
        .collect()
}

/// The events, column by column.
#[derive(Default)]
struct EventColumns {
    event_id: Vec<Uuid>,
    site_id: Vec<Uuid>,
    billing_credit_id: Vec<Uuid>,
    version: Vec<i64>,
    event_type: Vec<&'static str>,
    schema_version: Vec<i16>,
    payload: Vec<String>,
    actor: Vec<String>,
    command_id: Vec<Option<Uuid>>,
    correlation_id: Vec<Option<Uuid>>,
    causation_id: Vec<Option<Uuid>>,
    occurred_at: Vec<chrono::DateTime<chrono::Utc>>,
    recorded_at: Vec<chrono::DateTime<chrono::Utc>>,
    hash: Vec<Vec<u8>>,
}

impl EventColumns {
    fn of(events: &[PreparedEvent]) -> Self {
        let mut c = Self::default();
        for e in events {
            let r = &e.record;
            c.event_id.push(r.event_id);
            c.site_id.push(r.site_id);
            c.billing_credit_id.push(r.billing_credit_id);
            c.version.push(r.version as i64);
            c.event_type.push(r.event.event_type());
            c.schema_version.push(r.schema_version as i16);
            c.payload.push(e.payload.clone());
            c.actor.push(r.actor.clone());
            c.command_id.push(r.command_id);
            c.correlation_id.push(r.correlation_id);
            c.causation_id.push(r.causation_id);
            c.occurred_at.push(r.occurred_at);
            c.recorded_at.push(r.recorded_at);
            c.hash.push(r.hash.to_vec());
        }
        c
    }
}

/// The projection rows, column by column; amounts as decimal text (cast in SQL).
#[derive(Default)]
struct ProjectionColumns {
    is_new: Vec<bool>,
    site_id: Vec<Uuid>,
    billing_credit_id: Vec<Uuid>,
    version: Vec<i64>,
    last_hash: Vec<Vec<u8>>,
    deleted: Vec<bool>,
    expired: Vec<bool>,
    credit_type: Vec<&'static str>,
    is_active: Vec<bool>,
    /// Plan, benefit, membership, cycle, status period.
    plan_ids: [Vec<Option<Uuid>>; 5],
    start_date: Vec<chrono::DateTime<chrono::Utc>>,
    end_date: Vec<Option<chrono::DateTime<chrono::Utc>>>,
    created_at: Vec<chrono::DateTime<chrono::Utc>>,
    updated_at: Vec<chrono::DateTime<chrono::Utc>>,
    /// Total, used, wasted, remaining.
    amounts: [Vec<String>; 4],
    state: Vec<String>,
}

impl ProjectionColumns {
    fn of(changed: &[(Option<&Credit>, &PreparedCredit)]) -> Self {
        let mut c = Self::default();
        for (before, after) in changed {
            let (credit, d) = (&after.credit, &after.credit.details);
            c.is_new.push(before.is_none());
            c.site_id.push(credit.site_id);
            c.billing_credit_id.push(credit.billing_credit_id);
            c.version.push(credit.version as i64);
            c.last_hash.push(after.last_hash.to_vec());
            c.deleted.push(credit.deleted);
            c.expired.push(credit.expired);
            c.credit_type.push(d.credit_type.as_str());
            c.is_active.push(credit.is_active);
            let ids = [
                d.wellness_plan_id,
                d.wellness_plan_benefit_id,
                d.wellness_plan_membership_id,
                d.wellness_plan_membership_cycle_id,
                d.wellness_plan_membership_status_period_id,
            ];
            for (column, id) in c.plan_ids.iter_mut().zip(ids) {
                column.push(id);
            }
            c.start_date.push(d.start_date);
            c.end_date.push(d.end_date);
            c.created_at.push(credit.created_at);
            c.updated_at.push(credit.updated_at);
            let amounts = [credit.total_amount, credit.used_amount, credit.wasted_amount, credit.remaining_amount()];
            for (column, amount) in c.amounts.iter_mut().zip(amounts) {
                column.push(amount.to_string());
            }
            c.state.push(serde_json::to_string(credit).expect("credits serialize"));
        }
        c
    }
}
