//! Postgres's side of group commit (see [`crate::group`]): the group's credits are
//! locked and loaded in one statement, its command ids checked in one, its events
//! inserted in one per chunk, its projection rows and counters written in one each.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use sqlx::{Postgres, QueryBuilder, Row, Transaction};
use uuid::Uuid;

use super::counts::CountDeltas;
use super::{parse_txid, upsert_projections, PgStore};
use crate::group::{group_command_ids, group_keys, plan, GroupBackend};
use crate::prepare::{now_micros, PreparedCredit, PreparedEvent};
use crate::{Committed, Execution, FeedCursor, RecordedEvent, StoreError};

/// Group writers working at once: one fills its group while another commits.
pub const GROUP_WRITERS: usize = 2;
/// Events per INSERT statement (15 bind parameters each, under Postgres's 65,535).
const INSERT_EVENTS_MAX: usize = 2_000;

#[async_trait]
impl GroupBackend for PgStore {
    async fn execute_alone(&self, execution: Execution) -> Result<Committed, StoreError> {
        PgStore::execute_alone(self, execution).await
    }

    async fn command_applied(&self, site_id: Uuid, command_id: Uuid) -> Result<Option<Committed>, StoreError> {
        PgStore::command_applied(self, site_id, Some(command_id)).await
    }

    async fn try_group(&self, executions: &[Execution]) -> Result<Vec<Result<Committed, StoreError>>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(StoreError::from_sqlx)?;
        let streams = Self::lock_streams(&mut tx, &group_keys(executions)).await?;
        let streams = streams.into_iter().map(|s| ((s.site_id, s.billing_credit_id), s)).collect();
        let applied = applied_commands(&mut tx, executions).await?;
        let planned = plan(executions, streams, &applied, now_micros());

        let recorded = insert_events(&mut tx, planned.events).await?;
        let mut deltas = CountDeltas::default();
        for (before, after) in &planned.changed {
            deltas.record(before.as_ref(), &after.credit);
        }
        let finals: Vec<PreparedCredit> = planned.changed.into_iter().map(|(_, after)| after).collect();
        upsert_projections(&mut tx, &finals, false).await?;
        deltas.apply(&mut tx).await?;
        tx.commit().await.map_err(StoreError::from_sqlx)?;
        Ok(self.answer(planned.outcomes, recorded).await)
    }
}

/// The (site, command id) pairs of this group that are already in the store.
async fn applied_commands(
    tx: &mut Transaction<'_, Postgres>,
    executions: &[Execution],
) -> Result<HashSet<(Uuid, Uuid)>, StoreError> {
    let (sites, commands) = group_command_ids(executions);
    if commands.is_empty() {
        return Ok(HashSet::new());
    }
    let rows = sqlx::query(
        "SELECT DISTINCT site_id, command_id FROM events \
         WHERE (site_id, command_id) IN (SELECT * FROM unnest($1::uuid[], $2::uuid[]))",
    )
    .bind(&sites)
    .bind(&commands)
    .fetch_all(&mut **tx)
    .await
    .map_err(StoreError::from_sqlx)?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Inserts the group's events, in chunks, and returns them with their positions.
pub(super) async fn insert_events(
    tx: &mut Transaction<'_, Postgres>,
    events: Vec<PreparedEvent>,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut positions: HashMap<Uuid, FeedCursor> = HashMap::with_capacity(events.len());
    for chunk in events.chunks(INSERT_EVENTS_MAX) {
        let mut qb = QueryBuilder::<Postgres>::new(
            "INSERT INTO events (event_id, site_id, billing_credit_id, version, event_type, schema_version, \
             payload, actor, command_id, correlation_id, causation_id, occurred_at, recorded_at, hash) ",
        );
        qb.push_values(chunk, |mut b, e| {
            let r = &e.record;
            b.push_bind(r.event_id)
                .push_bind(r.site_id)
                .push_bind(r.billing_credit_id)
                .push_bind(r.version as i64)
                .push_bind(r.event.event_type())
                .push_bind(r.schema_version as i16)
                .push_bind(&e.payload)
                .push_unseparated("::json")
                .push_bind(&r.actor)
                .push_bind(r.command_id)
                .push_bind(r.correlation_id)
                .push_bind(r.causation_id)
                .push_bind(r.occurred_at)
                .push_bind(r.recorded_at)
                .push_bind(&r.hash[..]);
        });
        qb.push(" RETURNING event_id, position, txid::text AS txid");
        let rows = qb.build().fetch_all(&mut **tx).await.map_err(super::map_write_error)?;
        for row in rows {
            let position: i64 = row.get("position");
            positions.insert(row.get("event_id"), FeedCursor { txid: parse_txid(&row)?, position });
        }
    }
    Ok(events
        .into_iter()
        .map(|e| {
            let cursor = positions[&e.record.event_id];
            RecordedEvent { position: cursor.position, cursor, ..e.record }
        })
        .collect())
}
