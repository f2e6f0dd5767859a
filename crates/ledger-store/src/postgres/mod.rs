//! The production store on PostgreSQL.

mod counts;
mod group;
mod rebuild;

pub use rebuild::REBUILD_CREDITS_IN_MEMORY_MAX;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ledger_domain::{read_stored, Credit};
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, QueryBuilder, Row, Transaction};
use uuid::Uuid;

use crate::chain::GENESIS;
use crate::prepare::{check_distinct_streams, now_micros, prepare, LoadedStream, PreparedCredit, PreparedEvent};
use crate::query::{push_page_select, push_where, PROJECTION_COLUMNS, PROJECTION_SET_EXCLUDED};
use crate::*;

/// How long a request waits for a pooled connection before the store counts as unavailable.
pub const ACQUIRE_TIMEOUT_MS: u64 = 5_000;

const EVENT_COLUMNS: &str = "position, txid::text AS txid, event_id, site_id, billing_credit_id, version, \
     event_type, schema_version, payload::text AS payload, actor, command_id, correlation_id, causation_id, \
     occurred_at, recorded_at, hash";

#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Set once started: `execute` then goes through group commit.
    group: Option<std::sync::Arc<crate::group::GroupCommit>>,
}

impl PgStore {
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_millis(ACQUIRE_TIMEOUT_MS))
            .connect(url)
            .await
            .map_err(StoreError::from_sqlx)?;
        Ok(Self { pool, group: None })
    }

    /// Routes `execute` through group commit (see [`crate::group`]): concurrent commands share
    /// transactions. Needs a Tokio runtime, where the group writers run.
    pub fn with_group_commit(mut self) -> Self {
        self.group = Some(std::sync::Arc::new(crate::group::GroupCommit::start(self.clone(), group::GROUP_WRITERS)));
        self
    }

    /// One command in its own transaction.
    async fn execute_alone(&self, execution: Execution) -> Result<Committed, StoreError> {
        let mut tx = self.pool.begin().await.map_err(StoreError::from_sqlx)?;
        let committed = self.execute_in(&mut tx, execution).await?;
        if !committed.replayed {
            tx.commit().await.map_err(StoreError::from_sqlx)?;
        }
        Ok(committed)
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        crate::migrate::postgres()
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Database(sqlx::Error::Migrate(Box::new(e))))
    }

    async fn lock_streams(
        tx: &mut Transaction<'_, Postgres>,
        keys: &[(Uuid, Uuid)],
    ) -> Result<Vec<LoadedStream>, StoreError> {
        let (sites, ids): (Vec<Uuid>, Vec<Uuid>) = keys.iter().copied().unzip();
        // Advisory locks, not FOR UPDATE: a row lock gives the transaction its id at once,
        // and a transaction that then waits for another credit would commit that credit's
        // next version under an older id than its previous one, out of order in the feed
        // (which reads in txid order). Advisory locks assign no id: it comes with the
        // first insert, after every lock is held. Taken in one fixed order, so two
        // commands over the same credits cannot deadlock.
        sqlx::query(
            "SELECT pg_advisory_xact_lock(hashtextextended(k.s::text || '/' || k.c::text, 0)) \
             FROM (SELECT DISTINCT s, c FROM unnest($1::uuid[], $2::uuid[]) AS t(s, c) ORDER BY s, c) k",
        )
        .bind(&sites)
        .bind(&ids)
        .execute(&mut **tx)
        .await
        .map_err(StoreError::from_sqlx)?;
        // A new statement, so a new snapshot: it sees what the lock holders committed.
        let rows = sqlx::query(
            "SELECT site_id, billing_credit_id, state::text AS state, last_hash FROM billing_credits \
             WHERE (site_id, billing_credit_id) IN (SELECT * FROM unnest($1::uuid[], $2::uuid[]))",
        )
        .bind(&sites)
        .bind(&ids)
        .fetch_all(&mut **tx)
        .await
        .map_err(StoreError::from_sqlx)?;
        let mut found = Vec::with_capacity(rows.len());
        for row in rows {
            found.push((
                row.get::<Uuid, _>("site_id"),
                row.get::<Uuid, _>("billing_credit_id"),
                parse_state(&row)?,
                hash_of(&row, "last_hash")?,
            ));
        }
        Ok(keys
            .iter()
            .map(|&(site_id, billing_credit_id)| {
                match found.iter().find(|(s, c, _, _)| *s == site_id && *c == billing_credit_id) {
                    Some((_, _, state, last_hash)) => {
                        LoadedStream { site_id, billing_credit_id, state: Some(state.clone()), last_hash: *last_hash }
                    }
                    None => LoadedStream { site_id, billing_credit_id, state: None, last_hash: GENESIS },
                }
            })
            .collect())
    }

    /// Inserts the events and writes the projection rows (and their counts) they change.
    async fn write(
        tx: &mut Transaction<'_, Postgres>,
        loaded: &[LoadedStream],
        events: Vec<PreparedEvent>,
        credits: &[PreparedCredit],
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if events.is_empty() {
            return Ok(vec![]);
        }
        let recorded = group::insert_events(tx, events).await?;
        upsert_projections(tx, credits, false).await?;
        let mut deltas = counts::CountDeltas::default();
        for credit in credits {
            let before = loaded
                .iter()
                .find(|s| s.site_id == credit.credit.site_id && s.billing_credit_id == credit.credit.billing_credit_id)
                .and_then(|s| s.state.as_ref());
            deltas.record(before, &credit.credit);
        }
        deltas.apply(tx).await?;
        Ok(recorded)
    }

    /// The events already stored for these ids, when all of them are.
    async fn already_stored(&self, event_ids: &[Uuid]) -> Result<Option<Committed>, StoreError> {
        let rows =
            sqlx::query(&format!("SELECT {EVENT_COLUMNS} FROM events WHERE event_id = ANY($1) ORDER BY position"))
                .bind(event_ids)
                .fetch_all(&self.pool)
                .await
                .map_err(StoreError::from_sqlx)?;
        if rows.is_empty() {
            return Ok(None);
        }
        if rows.len() != event_ids.len() {
            return Err(StoreError::Rejected("some of these event ids are stored already, not all".into()));
        }
        crate::replayed(self, rows.iter().map(read_event).collect::<Result<_, _>>()?).await.map(Some)
    }

    /// Runs an execution inside `tx` without committing. A `replayed` result wrote nothing
    /// (and may have left `tx` unusable): the caller must not commit it.
    async fn execute_in(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        execution: Execution,
    ) -> Result<Committed, StoreError> {
        let Execution { site_id, billing_credit_ids: ids, meta, decide } = execution;
        let keys: Vec<_> = ids.iter().map(|id| (site_id, *id)).collect();
        let loaded = Self::lock_streams(tx, &keys).await?;
        // Checked under the credits' locks: a concurrent run of the same command has
        // committed by now, or has not started writing.
        if let Some(command_id) = meta.command_id {
            let events = events_of_command(&mut **tx, site_id, command_id).await?;
            if !events.is_empty() {
                return crate::replayed(self, events).await;
            }
        }
        let states: Vec<Option<Credit>> = loaded.iter().map(|s| s.state.clone()).collect();
        let decided = decide(&states)?;
        let appends = decision_to_appends(site_id, &states, &ids, decided, meta.command_id);
        let (events, credits) = prepare(&loaded, &appends, &meta, now_micros())?;
        let events = match Self::write(tx, &loaded, events, &credits).await {
            Ok(events) => events,
            // The same command ran concurrently and committed first: answer as it did.
            Err(StoreError::Rejected(reason)) if reason == DUPLICATE_EVENT => {
                return self.command_applied(site_id, meta.command_id).await?.ok_or(StoreError::Rejected(reason));
            }
            Err(e) => return Err(e),
        };
        let credits = if credits.is_empty() {
            states.into_iter().flatten().collect()
        } else {
            credits.into_iter().map(|c| c.credit).collect()
        };
        Ok(Committed { events, credits, replayed: false })
    }

    /// The events a command wrote, if it was already applied.
    async fn command_applied(&self, site_id: Uuid, command_id: Option<Uuid>) -> Result<Option<Committed>, StoreError> {
        let Some(command_id) = command_id else { return Ok(None) };
        let events = events_of_command(&self.pool, site_id, command_id).await?;
        if events.is_empty() {
            return Ok(None);
        }
        crate::replayed(self, events).await.map(Some)
    }
}

#[async_trait]
impl EventStore for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn append(&self, appends: Vec<StreamAppend>, meta: CommandMeta) -> Result<Committed, StoreError> {
        check_distinct_streams(&appends)?;
        let event_ids: Vec<Uuid> = appends.iter().flat_map(|a| a.events.iter().map(|e| e.event_id)).collect();
        if let Some(done) = self.already_stored(&event_ids).await? {
            return Ok(done);
        }
        let keys: Vec<_> = appends.iter().map(|a| (a.site_id, a.billing_credit_id)).collect();
        let mut tx = self.pool.begin().await.map_err(StoreError::from_sqlx)?;
        let loaded = Self::lock_streams(&mut tx, &keys).await?;
        let (events, credits) = prepare(&loaded, &appends, &meta, now_micros())?;
        match Self::write(&mut tx, &loaded, events, &credits).await {
            Ok(events) => {
                tx.commit().await.map_err(StoreError::from_sqlx)?;
                Ok(Committed { events, credits: credits.into_iter().map(|c| c.credit).collect(), replayed: false })
            }
            // A concurrent append of the same ids won the race: answer as it did.
            Err(StoreError::Rejected(reason)) if reason == DUPLICATE_EVENT => {
                drop(tx);
                self.already_stored(&event_ids).await?.ok_or(StoreError::Rejected(reason))
            }
            Err(e) => Err(e),
        }
    }

    async fn execute(&self, execution: Execution) -> Result<Committed, StoreError> {
        match &self.group {
            Some(group) => group.execute(execution).await,
            None => self.execute_alone(execution).await,
        }
    }

    async fn execute_idempotent(
        &self,
        execution: Execution,
        key: IdempotencyKey,
        respond: Responder,
    ) -> Result<StoredResponse, StoreError> {
        let site_id = execution.site_id;
        let mut tx = self.pool.begin().await.map_err(StoreError::from_sqlx)?;
        // Retries of one key queue here until the first attempt commits or rolls back.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(format!("idempotency/{site_id}/{}", key.key))
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from_sqlx)?;
        let existing = sqlx::query(
            "SELECT request_hash, status, body, headers FROM idempotency_keys WHERE site_id = $1 AND key = $2",
        )
        .bind(site_id)
        .bind(&key.key)
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::from_sqlx)?;
        if let Some(row) = existing {
            return crate::stored_response(
                row.get("request_hash"),
                row.get::<i16, _>("status") as u16,
                row.get("body"),
                row.get("headers"),
                &key,
            );
        }
        let outcome = self.execute_in(&mut tx, execution).await;
        let replayed = matches!(&outcome, Ok(c) if c.replayed);
        let Some(response) = respond(&outcome) else {
            return Err(outcome
                .err()
                .unwrap_or_else(|| StoreError::Rejected("a successful outcome must be kept".into())));
        };
        if !replayed {
            sqlx::query(
                "INSERT INTO idempotency_keys (site_id, key, request_hash, status, body, headers, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, now())",
            )
            .bind(site_id)
            .bind(&key.key)
            .bind(&key.request_hash)
            .bind(response.status as i16)
            .bind(&response.body)
            .bind(serde_json::to_string(&response.headers).expect("headers serialize"))
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from_sqlx)?;
            tx.commit().await.map_err(StoreError::from_sqlx)?;
        }
        Ok(response)
    }

    async fn due_for_expiry(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<(Uuid, Uuid)>, StoreError> {
        let rows = sqlx::query(
            "SELECT site_id, billing_credit_id FROM billing_credits \
             WHERE NOT deleted AND NOT expired AND remaining_amount > 0 AND end_date IS NOT NULL AND end_date <= $1 \
             ORDER BY end_date LIMIT $2",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn purge_idempotency_keys(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        Ok(done.rows_affected())
    }

    async fn load(&self, site_id: Uuid, billing_credit_id: Uuid) -> Result<Option<Credit>, StoreError> {
        let row = sqlx::query(
            "SELECT state::text AS state FROM billing_credits WHERE site_id = $1 AND billing_credit_id = $2",
        )
        .bind(site_id)
        .bind(billing_credit_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        row.as_ref().map(parse_state).transpose()
    }

    async fn read_stream(
        &self,
        site_id: Uuid,
        billing_credit_id: Uuid,
        after_version: u64,
        limit: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE site_id = $1 AND billing_credit_id = $2 AND version > $3 \
             ORDER BY version LIMIT $4"
        ))
        .bind(site_id)
        .bind(billing_credit_id)
        .bind(after_version as i64)
        .bind(i64::from(limit.min(READ_LIMIT_MAX)))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        rows.iter().map(read_event).collect()
    }

    async fn feed(&self, site_id: Option<Uuid>, after: FeedCursor, limit: u32) -> Result<FeedPage, StoreError> {
        // Only transactions older than the oldest still running are complete: reading
        // below that horizon never skips an event whose transaction commits late.
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM events \
             WHERE (txid, position) > ($1::text::xid8, $2) \
               AND txid < pg_snapshot_xmin(pg_current_snapshot()) \
               AND ($3::uuid IS NULL OR site_id = $3) \
             ORDER BY txid, position LIMIT $4"
        ))
        .bind(after.txid.to_string())
        .bind(after.position)
        .bind(site_id)
        .bind(i64::from(limit.min(READ_LIMIT_MAX)))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        let events: Vec<RecordedEvent> = rows.iter().map(read_event).collect::<Result<_, _>>()?;
        let next = events.last().map_or(after, |e| e.cursor);
        Ok(FeedPage { events, next })
    }

    async fn list(&self, site_id: Uuid, query: &ListQuery) -> Result<CreditPage, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(StoreError::from_sqlx)?;
        let total = match counts::total_from_counts(&mut conn, site_id, &query.filter).await? {
            Some(total) => total,
            None => {
                let mut count = QueryBuilder::<Postgres>::new("SELECT count(*) FROM billing_credits");
                push_where(&mut count, site_id, &query.filter);
                count.build().fetch_one(&mut *conn).await.map_err(StoreError::from_sqlx)?.get::<i64, _>(0) as u64
            }
        };
        drop(conn);
        let mut page = QueryBuilder::<Postgres>::default();
        push_page_select(&mut page, "state::text AS state", site_id, query);
        let rows = page.build().fetch_all(&self.pool).await.map_err(StoreError::from_sqlx)?;
        let credits = rows.iter().map(parse_state).collect::<Result<_, _>>()?;
        Ok(CreditPage { credits, total })
    }

    async fn membership_credit_ids(&self, site_id: Uuid, membership_id: Uuid) -> Result<Vec<Uuid>, StoreError> {
        let rows = sqlx::query(
            "SELECT billing_credit_id FROM billing_credits WHERE site_id = $1 AND wellness_plan_membership_id = $2 \
             AND NOT deleted ORDER BY created_at, billing_credit_id",
        )
        .bind(site_id)
        .bind(membership_id)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn scan_events(
        &self,
        site_id: Option<Uuid>,
        after: Option<StreamPosition>,
        limit: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut qb = QueryBuilder::<Postgres>::new(format!("SELECT {EVENT_COLUMNS} FROM events WHERE true"));
        if let Some(site) = site_id {
            qb.push(" AND site_id = ").push_bind(site);
        }
        if let Some((site, credit, version)) = after {
            qb.push(" AND (site_id, billing_credit_id, version) > (")
                .push_bind(site)
                .push(", ")
                .push_bind(credit)
                .push(", ")
                .push_bind(version as i64)
                .push(")");
        }
        qb.push(" ORDER BY site_id, billing_credit_id, version LIMIT ").push_bind(i64::from(limit.min(SCAN_LIMIT_MAX)));
        let rows = qb.build().fetch_all(&self.pool).await.map_err(StoreError::from_sqlx)?;
        rows.iter().map(read_event).collect()
    }

    async fn scan_projections(
        &self,
        site_id: Option<Uuid>,
        after: Option<(Uuid, Uuid)>,
        limit: u32,
    ) -> Result<Vec<(Credit, [u8; 32])>, StoreError> {
        let mut qb =
            QueryBuilder::<Postgres>::new("SELECT state::text AS state, last_hash FROM billing_credits WHERE true");
        if let Some(site) = site_id {
            qb.push(" AND site_id = ").push_bind(site);
        }
        if let Some((site, credit)) = after {
            qb.push(" AND (site_id, billing_credit_id) > (").push_bind(site).push(", ").push_bind(credit).push(")");
        }
        qb.push(" ORDER BY site_id, billing_credit_id LIMIT ").push_bind(i64::from(limit.min(SCAN_LIMIT_MAX)));
        let rows = qb.build().fetch_all(&self.pool).await.map_err(StoreError::from_sqlx)?;
        rows.iter().map(|row| Ok((parse_state(row)?, hash_of(row, "last_hash")?))).collect()
    }

    async fn put_projections(&self, rows: Vec<(Credit, [u8; 32])>) -> Result<(), StoreError> {
        let rows: Vec<PreparedCredit> =
            rows.into_iter().map(|(credit, last_hash)| PreparedCredit { credit, last_hash }).collect();
        let mut conn = self.pool.acquire().await.map_err(StoreError::from_sqlx)?;
        upsert_projections(&mut conn, &rows, true).await
    }

    async fn rebuild_projections(
        &self,
        limits: crate::audit::ReplayLimits,
        progress: crate::audit::Progress<'_>,
    ) -> Result<Option<crate::audit::ReplayReport>, StoreError> {
        self.rebuild_all(limits.credits_in_memory_max, progress).await.map(Some)
    }

    async fn recount(&self, site_id: Option<Uuid>) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(StoreError::from_sqlx)?;
        counts::recount(&mut tx, site_id).await?;
        tx.commit().await.map_err(StoreError::from_sqlx)
    }

    async fn count_mismatches(&self, site_id: Option<Uuid>) -> Result<Vec<String>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(StoreError::from_sqlx)?;
        counts::mismatches(&mut conn, site_id).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(StoreError::from_sqlx)?;
        Ok(())
    }
}

const DUPLICATE_EVENT: &str = "an event with this id is already stored";

fn map_write_error(err: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &err {
        match db.constraint() {
            Some("events_event_id_key") => return StoreError::Rejected(DUPLICATE_EVENT.into()),
            Some("events_site_id_billing_credit_id_version_key") => {
                // Someone created or extended the stream between our read and our write.
                return StoreError::ConcurrentWrite;
            }
            _ => {}
        }
    }
    StoreError::from_sqlx(err)
}

/// Projection rows per INSERT statement (22 bind parameters each, under 65,535).
const PROJECTION_ROWS_PER_INSERT_MAX: usize = 2_000;

/// Writes projection rows into `billing_credits`, in statements of at most
/// PROJECTION_ROWS_PER_INSERT_MAX rows. `only_forward`: never replace a row with an
/// older version (replay runs beside live writers and must not undo their work).
pub(crate) async fn upsert_projections(
    conn: &mut sqlx::PgConnection,
    rows: &[PreparedCredit],
    only_forward: bool,
) -> Result<(), StoreError> {
    for chunk in rows.chunks(PROJECTION_ROWS_PER_INSERT_MAX) {
        let states: Vec<String> =
            chunk.iter().map(|p| serde_json::to_string(&p.credit).expect("credits serialize")).collect();
        let mut qb = QueryBuilder::<Postgres>::new(format!("INSERT INTO billing_credits ({PROJECTION_COLUMNS}) "));
        qb.push_values(chunk.iter().zip(&states), |mut b, (p, state)| {
            let c = &p.credit;
            let d = &c.details;
            b.push_bind(c.site_id)
                .push_bind(c.billing_credit_id)
                .push_bind(c.version as i64)
                .push_bind(&p.last_hash[..])
                .push_bind(c.deleted)
                .push_bind(c.expired)
                .push_bind(d.credit_type.as_str())
                .push_bind(c.is_active)
                .push_bind(d.wellness_plan_id)
                .push_bind(d.wellness_plan_benefit_id)
                .push_bind(d.wellness_plan_membership_id)
                .push_bind(d.wellness_plan_membership_cycle_id)
                .push_bind(d.wellness_plan_membership_status_period_id)
                .push_bind(d.start_date)
                .push_bind(d.end_date)
                .push_bind(c.created_at)
                .push_bind(c.updated_at)
                .push_bind(c.total_amount)
                .push_bind(c.used_amount)
                .push_bind(c.wasted_amount)
                .push_bind(c.remaining_amount())
                .push_bind(state)
                .push_unseparated("::json");
        });
        qb.push(format!(" ON CONFLICT (site_id, billing_credit_id) DO UPDATE SET {PROJECTION_SET_EXCLUDED}"));
        if only_forward {
            qb.push(" WHERE billing_credits.version <= EXCLUDED.version");
        }
        qb.build().execute(&mut *conn).await.map_err(StoreError::from_sqlx)?;
    }
    Ok(())
}

/// The events a command wrote, oldest first (none if it never ran).
async fn events_of_command<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    site_id: Uuid,
    command_id: Uuid,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE site_id = $1 AND command_id = $2 ORDER BY position"
    ))
    .bind(site_id)
    .bind(command_id)
    .fetch_all(executor)
    .await
    .map_err(StoreError::from_sqlx)?;
    rows.iter().map(read_event).collect()
}

fn parse_state(row: &PgRow) -> Result<Credit, StoreError> {
    let text: &str = row.get("state");
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("projection state: {e}")))
}

fn hash_of(row: &PgRow, column: &str) -> Result<[u8; 32], StoreError> {
    let bytes: Vec<u8> = row.get(column);
    bytes.try_into().map_err(|_| StoreError::Corrupt(format!("{column} is not 32 bytes")))
}

fn parse_txid(row: &PgRow) -> Result<u64, StoreError> {
    let text: &str = row.get("txid");
    text.parse().map_err(|_| StoreError::Corrupt(format!("txid {text:?}")))
}

fn read_event(row: &PgRow) -> Result<RecordedEvent, StoreError> {
    let event_type: String = row.get("event_type");
    let schema_version: i16 = row.get("schema_version");
    let payload: &str = row.get("payload");
    let event =
        read_stored(&event_type, schema_version as u16, payload).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let position: i64 = row.get("position");
    Ok(RecordedEvent {
        position,
        event_id: row.get("event_id"),
        site_id: row.get("site_id"),
        billing_credit_id: row.get("billing_credit_id"),
        version: row.get::<i64, _>("version") as u64,
        event,
        schema_version: schema_version as u16,
        actor: row.get("actor"),
        command_id: row.get("command_id"),
        correlation_id: row.get("correlation_id"),
        causation_id: row.get("causation_id"),
        occurred_at: row.get::<DateTime<Utc>, _>("occurred_at"),
        recorded_at: row.get::<DateTime<Utc>, _>("recorded_at"),
        hash: hash_of(row, "hash")?,
        cursor: FeedCursor { txid: parse_txid(row)?, position },
    })
}
