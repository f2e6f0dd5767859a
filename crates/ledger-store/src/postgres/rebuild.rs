//! Full replay on Postgres: rebuild `billing_credits` beside the live table and swap it in.
//!
//! The paged replay (`audit::replay`, kept for one site and for SQLite) reads events in
//! stream order over the unique index, one random heap read per event, and upserts into
//! a table with ten indexes, one index insertion per row and index. Here the events are
//! read in physical order by one streaming scan, folded in memory, copied (COPY FREEZE)
//! into a fresh table without indexes, indexed once (a sorted bulk build per index, two
//! at a time), and swapped in under a short exclusive lock that first takes over the
//! live rows written meanwhile.
//!
//! Memory is bounded: a pass over the events folds at most `credits_in_memory_max`
//! credits (about 2.3 KiB each, measured). The passes are planned from the number of
//! credits the live projection holds; a pass that would fold more anyway is abandoned
//! and its range of credit ids split into as many parts as the share of events it read
//! suggests, each read by a pass of its own. (Copying one pass while folding the next
//! was tried: on two cores it gained nothing, for twice the memory.)
//!
//! Readers and writers go on during the rebuild and wait only for the swap, whose work
//! is the credits written during the rebuild and a recount of the list counters. The new table belongs to the role that runs the
//! replay: run it as the owner of the schema (the role that runs `migrate`).

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use chrono::{DateTime, SecondsFormat, Utc};
use futures::TryStreamExt;
use ledger_domain::{evolve, read_stored, Credit, Event, EventPosition};
use sqlx::{Connection, PgConnection, Row};
use uuid::Uuid;

use super::counts;
use crate::audit::misplaced;
use crate::error::StoreError;
use crate::model::{Progress, ReplayReport};
use crate::prepare::PreparedCredit;
use crate::sql::{PROJECTION_COLUMNS, PROJECTION_SET_EXCLUDED};
/// Events between two progress reports.
const PROGRESS_EVERY_EVENTS: u64 = 10_000;
/// COPY data sent per message.
const COPY_BUFFER_BYTES: usize = 1 << 20;
/// Connections building indexes at once.
const INDEX_BUILDERS: usize = 2;

const LIVE: &str = "billing_credits";
const REBUILD: &str = "billing_credits_rebuild";
/// Held for the whole rebuild, so two replays never share the rebuild table.
const REBUILD_LOCK_KEY: i64 = 0x6c65_6467_6572_0001;

/// One credit's fold. Physical order is almost always version order; an event that
/// arrives early waits in `ahead` for the ones before it.
#[derive(Default)]
struct Fold {
    credit: Option<Credit>,
    last_hash: [u8; 32],
    ahead: BTreeMap<u64, (Event, EventPosition, [u8; 32])>,
}

impl Fold {
    fn next_version(&self) -> u64 {
        self.credit.as_ref().map_or(1, |c| c.version + 1)
    }

    fn apply(&mut self, event: Event, position: EventPosition, hash: [u8; 32]) -> Result<(), StoreError> {
        if position.version != self.next_version() {
            self.ahead.insert(position.version, (event, position, hash));
            return Ok(());
        }
        self.evolve(event, position, hash)?;
        while let Some((event, position, hash)) = self.ahead.remove(&self.next_version()) {
            self.evolve(event, position, hash)?;
        }
        Ok(())
    }

    fn evolve(&mut self, event: Event, position: EventPosition, hash: [u8; 32]) -> Result<(), StoreError> {
        if let Some(problem) = misplaced(self.credit.as_ref(), &event, &position) {
            return Err(StoreError::Corrupt(problem));
        }
        self.credit = Some(evolve(self.credit.take(), &event, &position));
        self.last_hash = hash;
        Ok(())
    }

    fn finish(self, key: (Uuid, Uuid)) -> Result<PreparedCredit, StoreError> {
        match (self.credit, self.ahead.keys().next()) {
            (Some(credit), None) => Ok(PreparedCredit { credit, last_hash: self.last_hash }),
            (credit, Some(version)) => Err(StoreError::Corrupt(format!(
                "credit {} of site {}: version {version} is stored but version {} is missing",
                key.1,
                key.0,
                credit.map_or(1, |c| c.version + 1)
            ))),
            (None, None) => unreachable!("a fold exists only once an event arrived"),
        }
    }
}

/// A range of credit ids, both ends included, read by one pass.
type IdRange = (u128, u128);

enum Pass {
    Folded {
        folds: HashMap<(Uuid, Uuid), Fold>,
        events: u64,
    },
    /// Abandoned after reading this many events.
    TooManyCredits {
        events_read: u64,
    },
}

/// Splits `range` into at most `parts` contiguous ranges of about equal width, in
/// ascending order.
fn split(range: IdRange, parts: u128) -> Vec<IdRange> {
    let span = range.1 - range.0;
    // At most `span` parts, so each boundary step (`span / parts`) is at least one.
    let parts = parts.clamp(1, span.max(1));
    let (step, rest) = (span / parts, span % parts);
    let start = |i: u128| range.0 + i * step + i * rest / parts;
    (0..parts).map(|i| (start(i), if i + 1 == parts { range.1 } else { start(i + 1) - 1 })).collect()
}

/// A rebuild of the projection on one database.
pub(super) struct Rebuild {
    pub pool: sqlx::PgPool,
}

impl Rebuild {
    /// Rebuilds every projection row from the events; see the module's doc.
    pub(crate) async fn rebuild_all(
        &self,
        credits_in_memory_max: usize,
        progress: Progress<'_>,
    ) -> Result<ReplayReport, StoreError> {
        assert!(credits_in_memory_max > 0, "a pass must fold at least one credit");
        let started = Instant::now();
        let mut lock = self.pool.acquire().await.map_err(StoreError::from_sqlx)?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(REBUILD_LOCK_KEY)
            .fetch_one(&mut *lock)
            .await
            .map_err(StoreError::from_sqlx)?;
        if !locked {
            return Err(StoreError::Rejected("another replay is rebuilding the projections".into()));
        }
        let rebuilt = self.rebuild_under_lock(credits_in_memory_max, progress).await;
        // Dropped with the session otherwise; a pooled session lives on, so unlock.
        let _ = sqlx::query("SELECT pg_advisory_unlock($1)").bind(REBUILD_LOCK_KEY).execute(&mut *lock).await;
        let (events, credits, passes) = rebuilt?;
        Ok(ReplayReport { events, credits, passes, elapsed: started.elapsed() })
    }

    /// Returns the events and credits rebuilt, and the passes it took.
    async fn rebuild_under_lock(
        &self,
        credits_in_memory_max: usize,
        progress: Progress<'_>,
    ) -> Result<(u64, u64, u32), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(StoreError::from_sqlx)?;
        // Created and filled in one transaction, so COPY can write the rows frozen and
        // all-visible: no VACUUM needed before counts can be read from an index alone.
        let mut load = conn.begin().await.map_err(StoreError::from_sqlx)?;
        // Every transaction before this one is visible to every pass; a later one may not
        // be, and its credits are looked at again at the swap.
        let unseen_from: String = sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
            .fetch_one(&mut *load)
            .await
            .map_err(StoreError::from_sqlx)?;
        let statements = [
            format!("DROP TABLE IF EXISTS {REBUILD}"),
            format!("CREATE TABLE {REBUILD} (LIKE {LIVE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"),
        ];
        for sql in &statements {
            sqlx::query(sql).execute(&mut *load).await.map_err(StoreError::from_sqlx)?;
        }
        let (mut events, mut credits, mut passes) = (0u64, 0u64, 0u32);
        let planned = planned_parts(&mut load, credits_in_memory_max).await?;
        tracing::info!(passes = planned, credits_in_memory_max, "rebuild: passes planned from the credits counted");
        // Popped from the end: the lowest range first.
        let mut ranges: Vec<IdRange> = split((0, u128::MAX), planned).into_iter().rev().collect();
        while let Some(range) = ranges.pop() {
            let pass_started = Instant::now();
            passes += 1;
            match self.fold_range(range, credits_in_memory_max, events, progress).await? {
                Pass::Folded { folds, events: read } => {
                    let folded_ms = pass_started.elapsed().as_millis();
                    events += read;
                    credits += folds.len() as u64;
                    let count = folds.len();
                    copy_rebuilt(&mut load, folds).await?;
                    tracing::info!(
                        events = read,
                        credits = count,
                        folded_ms,
                        copied_ms = pass_started.elapsed().as_millis() - folded_ms,
                        "rebuild: pass done"
                    );
                }
                Pass::TooManyCredits { .. } if range.0 == range.1 => {
                    return Err(StoreError::Rejected(format!(
                        "credit id {} alone has more than {credits_in_memory_max} credits: raise the bound",
                        Uuid::from_u128(range.0)
                    )));
                }
                Pass::TooManyCredits { events_read } => {
                    let parts = parts_for(&mut load, range, events_read).await?;
                    tracing::info!(
                        credits_in_memory_max,
                        parts,
                        "rebuild: a pass holds too many credits, splitting it"
                    );
                    // Popped from the end: the lowest range first.
                    ranges.extend(split(range, parts).into_iter().rev());
                }
            }
        }
        load.commit().await.map_err(StoreError::from_sqlx)?;

        let step = Instant::now();
        let indexes = index_definitions(&mut conn).await?;
        self.build_indexes(&indexes).await?;
        // A new table has no statistics: without them the planner guesses.
        sqlx::query(&format!("ANALYZE {REBUILD}")).execute(&mut *conn).await.map_err(StoreError::from_sqlx)?;
        tracing::info!(indexes = indexes.len(), took_ms = step.elapsed().as_millis(), "rebuild: indexed and analyzed");
        let step = Instant::now();
        swap_in(&mut conn, &indexes, &unseen_from).await?;
        tracing::info!(took_ms = step.elapsed().as_millis(), "rebuild: swapped in");
        Ok((events, credits, passes))
    }

    /// Builds the indexes on INDEX_BUILDERS connections at once.
    async fn build_indexes(&self, indexes: &[(String, String)]) -> Result<(), StoreError> {
        let builders = (0..INDEX_BUILDERS).map(|builder| async move {
            let mut conn = self.pool.acquire().await.map_err(StoreError::from_sqlx)?;
            for (_, definition) in indexes.iter().skip(builder).step_by(INDEX_BUILDERS) {
                sqlx::query(definition).execute(&mut *conn).await.map_err(StoreError::from_sqlx)?;
            }
            Ok::<_, StoreError>(())
        });
        futures::future::try_join_all(builders).await.map(|_| ())
    }

    /// Folds the events of the credits whose ids fall in `range`, reading in physical order.
    async fn fold_range(
        &self,
        range: IdRange,
        credits_max: usize,
        events_before: u64,
        progress: Progress<'_>,
    ) -> Result<Pass, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(StoreError::from_sqlx)?;
        let mut rows = sqlx::query(
            "SELECT site_id, billing_credit_id, event_id, version, event_type, schema_version, payload::text AS payload, \
             recorded_at, hash FROM events WHERE billing_credit_id BETWEEN $1 AND $2",
        )
        .bind(Uuid::from_u128(range.0))
        .bind(Uuid::from_u128(range.1))
        .fetch(&mut *conn);
        let mut folds: HashMap<(Uuid, Uuid), Fold> = HashMap::new();
        let mut events = 0u64;
        while let Some(row) = rows.try_next().await.map_err(StoreError::from_sqlx)? {
            let position = EventPosition {
                site_id: row.get("site_id"),
                billing_credit_id: row.get("billing_credit_id"),
                event_id: row.get("event_id"),
                version: row.get::<i64, _>("version") as u64,
                recorded_at: row.get::<DateTime<Utc>, _>("recorded_at"),
            };
            let event_type: &str = row.get("event_type");
            let schema_version: i16 = row.get("schema_version");
            let event = read_stored(event_type, schema_version as u16, row.get("payload")).map_err(|e| {
                StoreError::Corrupt(format!(
                    "event {} ({event_type} version {} of credit {}, site {}) cannot be read: {e}",
                    position.event_id, position.version, position.billing_credit_id, position.site_id
                ))
            })?;
            let key = (position.site_id, position.billing_credit_id);
            if !folds.contains_key(&key) && folds.len() == credits_max {
                progress(events_before);
                return Ok(Pass::TooManyCredits { events_read: events });
            }
            folds.entry(key).or_default().apply(event, position, hash_of(&row)?)?;
            events += 1;
            if events.is_multiple_of(PROGRESS_EVERY_EVENTS) {
                progress(events_before + events);
            }
        }
        progress(events_before + events);
        Ok(Pass::Folded { folds, events })
    }
}

/// How many passes the credits need, planned up front from the credits the live
/// projection holds (the planner's estimate, with a fifth to spare): a pass that fills
/// memory anyway is split then ([`parts_for`]).
async fn planned_parts(conn: &mut PgConnection, credits_in_memory_max: usize) -> Result<u128, StoreError> {
    let estimated_credits: f64 = sqlx::query_scalar(
        "SELECT greatest(reltuples, 0)::float8 FROM pg_class WHERE oid = 'billing_credits'::regclass",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(StoreError::from_sqlx)?;
    let parts = (estimated_credits * 1.2 / credits_in_memory_max as f64).ceil();
    Ok((parts as u128).clamp(1, 1 << 16))
}

/// How many parts to split `range` into, after a pass over it filled memory having read
/// `events_read` events: the range's share of the table's estimated events, over what
/// fitted, with a quarter to spare; two at least.
async fn parts_for(conn: &mut PgConnection, range: IdRange, events_read: u64) -> Result<u128, StoreError> {
    let estimated_events: f64 =
        sqlx::query_scalar("SELECT greatest(reltuples, 0)::float8 FROM pg_class WHERE oid = 'events'::regclass")
            .fetch_one(&mut *conn)
            .await
            .map_err(StoreError::from_sqlx)?;
    let share = (range.1 - range.0) as f64 / u128::MAX as f64;
    let parts = (estimated_events * share * 1.25 / events_read.max(1) as f64).ceil();
    Ok((parts as u128).clamp(2, 1 << 16))
}

/// Writes the folded credits into the rebuild table with COPY, in buffers of about
/// COPY_BUFFER_BYTES.
async fn copy_rebuilt(conn: &mut PgConnection, folds: HashMap<(Uuid, Uuid), Fold>) -> Result<(), StoreError> {
    let mut copy = conn
        .copy_in_raw(&format!("COPY {REBUILD} ({PROJECTION_COLUMNS}) FROM STDIN WITH (FREEZE)"))
        .await
        .map_err(StoreError::from_sqlx)?;
    let mut buffer = String::with_capacity(COPY_BUFFER_BYTES + 4_096);
    for (key, fold) in folds {
        copy_text_row(&mut buffer, &fold.finish(key)?);
        if buffer.len() >= COPY_BUFFER_BYTES {
            copy.send(std::mem::take(&mut buffer).into_bytes()).await.map_err(StoreError::from_sqlx)?;
            buffer.reserve(COPY_BUFFER_BYTES + 4_096);
        }
    }
    if !buffer.is_empty() {
        copy.send(buffer.into_bytes()).await.map_err(StoreError::from_sqlx)?;
    }
    copy.finish().await.map_err(StoreError::from_sqlx)?;
    Ok(())
}

fn hash_of(row: &sqlx::postgres::PgRow) -> Result<[u8; 32], StoreError> {
    let bytes: Vec<u8> = row.get("hash");
    bytes.try_into().map_err(|_| StoreError::Corrupt("hash is not 32 bytes".into()))
}

/// One row of COPY's text format, in PROJECTION_COLUMNS order: tab-separated, `\N` for
/// null, backslashes doubled (no value here holds a raw tab or line break: JSON escapes
/// them, and the rest are ids, numbers and instants).
fn copy_text_row(out: &mut String, row: &PreparedCredit) {
    use std::fmt::Write;
    let c = &row.credit;
    let d = &c.details;
    let id = |id: Option<Uuid>| id.map_or_else(|| "\\N".to_string(), |id| id.to_string());
    let instant = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Micros, true);
    let flag = |b: bool| if b { "t" } else { "f" };
    let state = serde_json::to_string(c).expect("credits serialize").replace('\\', "\\\\");
    debug_assert!(!state.contains(['\t', '\n', '\r']), "serde_json escapes control characters");
    let _ = writeln!(
        out,
        "{}\t{}\t{}\t\\\\x{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
        c.site_id,
        c.billing_credit_id,
        c.version,
        hex::encode(row.last_hash),
        flag(c.deleted),
        flag(c.expired),
        d.credit_type.as_str(),
        flag(c.is_active),
        id(d.wellness_plan_id),
        id(d.wellness_plan_benefit_id),
        id(d.wellness_plan_membership_id),
        id(d.wellness_plan_membership_cycle_id),
        id(d.wellness_plan_membership_status_period_id),
        instant(d.start_date),
        d.end_date.map_or_else(|| "\\N".to_string(), instant),
        instant(c.created_at),
        instant(c.updated_at),
        c.total_amount,
        c.used_amount,
        c.wasted_amount,
        c.remaining_amount(),
        state,
    );
}

/// The live table's indexes, as (live name, statement creating its twin on the rebuild
/// table under the name `<live name>_rebuild`).
async fn index_definitions(conn: &mut PgConnection) -> Result<Vec<(String, String)>, StoreError> {
    let rows = sqlx::query(
        "SELECT i.relname AS name, pg_get_indexdef(i.oid) AS definition FROM pg_index x \
         JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = to_regclass($1) ORDER BY i.relname",
    )
    .bind(LIVE)
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::from_sqlx)?;
    rows.iter()
        .map(|row| {
            let (name, definition): (String, String) = (row.get("name"), row.get("definition"));
            // "CREATE [UNIQUE] INDEX <name> ON <schema>.billing_credits USING ..."
            let (head, tail) = definition
                .split_once(&format!(" {name} ON "))
                .ok_or_else(|| StoreError::Corrupt(format!("unexpected index definition: {definition}")))?;
            let (table, rest) = tail
                .split_once(" USING ")
                .ok_or_else(|| StoreError::Corrupt(format!("unexpected index definition: {definition}")))?;
            let table = table
                .strip_suffix(LIVE)
                .ok_or_else(|| StoreError::Corrupt(format!("unexpected index definition: {definition}")))?;
            Ok((name.clone(), format!("{head} {name}_rebuild ON {table}{REBUILD} USING {rest}")))
        })
        .collect()
}

/// How long the swap waits for the live table before giving up (the rebuild is then
/// dropped and the replay fails; run it again).
const SWAP_LOCK_TIMEOUT_MS: u64 = 10_000;

/// Puts the rebuild in the live table's place, in one transaction under an exclusive
/// lock: first the live rows newer than their rebuild are taken over (only credits with
/// events from transactions the passes may not have seen, those at or after
/// `unseen_from`), then the tables and indexes trade names, then the counters are
/// recounted. Readers and writers wait for it.
///
/// The lock is taken at once in ACCESS EXCLUSIVE mode: taking a weaker one first and
/// upgrading would deadlock with a writer that read the table and waits to write it.
async fn swap_in(conn: &mut PgConnection, indexes: &[(String, String)], unseen_from: &str) -> Result<(), StoreError> {
    let mut tx = conn.begin().await.map_err(StoreError::from_sqlx)?;
    let setup = [
        format!("SET LOCAL lock_timeout = {SWAP_LOCK_TIMEOUT_MS}"),
        format!("LOCK TABLE {LIVE} IN ACCESS EXCLUSIVE MODE"),
    ];
    for sql in &setup {
        sqlx::query(sql).execute(&mut *tx).await.map_err(StoreError::from_sqlx)?;
    }
    sqlx::query(&format!(
        "INSERT INTO {REBUILD} AS r SELECT * FROM {LIVE} \
         WHERE (site_id, billing_credit_id) IN (SELECT site_id, billing_credit_id FROM events WHERE txid >= $1::text::xid8) \
         ON CONFLICT (site_id, billing_credit_id) DO UPDATE SET {PROJECTION_SET_EXCLUDED} WHERE r.version < EXCLUDED.version"
    ))
    .bind(unseen_from)
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from_sqlx)?;
    let mut renames = vec![format!("DROP TABLE {LIVE}"), format!("ALTER TABLE {REBUILD} RENAME TO {LIVE}")];
    for (name, _) in indexes {
        renames.push(format!("ALTER INDEX {name}_rebuild RENAME TO {name}"));
    }
    renames.push(format!("ALTER TABLE {LIVE} ADD CONSTRAINT {LIVE}_pkey PRIMARY KEY USING INDEX {LIVE}_pkey"));
    for sql in &renames {
        sqlx::query(sql).execute(&mut *tx).await.map_err(StoreError::from_sqlx)?;
    }
    counts::recount(&mut tx, None).await?;
    tx.commit().await.map_err(StoreError::from_sqlx)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use ledger_domain::{decide, Command, CreditDetails, CreditDraft, CreditType};
    use rust_decimal::Decimal;

    use super::*;

    /// A credit's first `uses + 1` events (issued, then used 1 each time), with positions.
    fn stream(uses: usize) -> Vec<(Event, EventPosition)> {
        let at = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        let (site_id, billing_credit_id) = (Uuid::new_v4(), Uuid::new_v4());
        let draft = CreditDraft {
            details: CreditDetails::new(CreditType::Quantity, at),
            is_active: true,
            total_amount: Decimal::from(10),
            used_amount: Decimal::ZERO,
            wasted_amount: Decimal::ZERO,
            remaining_amount: None,
        };
        let mut commands = vec![Command::Issue(draft)];
        commands.extend((0..uses).map(|_| Command::Use { amount: Decimal::ONE, reference: None, note: None }));
        let mut credit: Option<Credit> = None;
        let mut events = Vec::new();
        for command in commands {
            for event in decide(credit.as_ref(), &command, at).unwrap() {
                let version = events.len() as u64 + 1;
                let position =
                    EventPosition { site_id, billing_credit_id, event_id: Uuid::new_v4(), version, recorded_at: at };
                credit = Some(evolve(credit, &event, &position));
                events.push((event, position));
            }
        }
        events
    }

    #[test]
    fn events_read_out_of_version_order_fold_as_in_order() {
        let events = stream(3);
        let fold_in = |order: &[usize]| {
            let mut fold = Fold::default();
            for &i in order {
                let (event, position) = events[i].clone();
                fold.apply(event, position, [i as u8; 32]).unwrap();
            }
            fold.finish((Uuid::nil(), Uuid::nil())).unwrap()
        };
        let in_order = fold_in(&[0, 1, 2, 3]);
        assert_eq!(in_order.credit.used_amount, Decimal::from(3));
        for order in [[1, 0, 2, 3], [3, 2, 1, 0], [0, 3, 1, 2]] {
            let shuffled = fold_in(&order);
            assert_eq!(
                (shuffled.credit, shuffled.last_hash),
                (in_order.credit.clone(), in_order.last_hash),
                "{order:?}"
            );
        }
    }

    #[test]
    fn a_missing_version_is_named() {
        let events = stream(2);
        let mut fold = Fold::default();
        for i in [0, 2] {
            let (event, position) = events[i].clone();
            fold.apply(event, position, [0; 32]).unwrap();
        }
        let err = fold.finish((Uuid::nil(), Uuid::nil())).err().unwrap().to_string();
        assert!(err.contains("version 3 is stored but version 2 is missing"), "{err}");
    }

    #[test]
    fn split_covers_the_range_without_overlap() {
        for (range, parts) in [((0, u128::MAX), 2), ((0, u128::MAX), 7), ((10, 20), 3), ((10, 12), 5), ((5, 5), 4)] {
            let pieces = split(range, parts);
            assert!(!pieces.is_empty() && pieces.len() as u128 <= parts);
            assert_eq!(pieces.first().unwrap().0, range.0);
            assert_eq!(pieces.last().unwrap().1, range.1);
            for pair in pieces.windows(2) {
                assert_eq!(pair[0].1 + 1, pair[1].0, "{range:?} in {parts}: {pieces:?}");
            }
            assert!(pieces.iter().all(|(lo, hi)| lo <= hi));
        }
    }
}
