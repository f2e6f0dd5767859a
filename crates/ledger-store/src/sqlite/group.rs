//! SQLite's side of group commit (see [`crate::group`]): one `BEGIN IMMEDIATE` per
//! group instead of per command, the group's credits loaded in one statement, its
//! command ids checked in one, its events inserted in one per chunk, its projection
//! rows written in one. There is one write connection, so one group writer.

use std::collections::HashSet;

use async_trait::async_trait;
use sqlx::{QueryBuilder, Row, Sqlite, Transaction};
use uuid::Uuid;

use super::{map_write_error, SqliteStore};
use crate::group::{group_command_ids, group_keys, plan, GroupBackend};
use crate::prepare::{now_micros, PreparedCredit, PreparedEvent};
use crate::{Committed, Execution, FeedCursor, RecordedEvent, StoreError};

/// Events per INSERT statement (14 bind parameters each, under SQLite's 32,766).
const INSERT_EVENTS_MAX: usize = 1_000;
/// Command ids checked per statement (two bind parameters each).
const CHECK_COMMANDS_MAX: usize = 500;

#[async_trait]
impl GroupBackend for SqliteStore {
    async fn execute_alone(&self, execution: Execution) -> Result<Committed, StoreError> {
        SqliteStore::execute_alone(self, execution).await
    }

    async fn command_applied(&self, site_id: Uuid, command_id: Uuid) -> Result<Option<Committed>, StoreError> {
        SqliteStore::command_applied(self, site_id, command_id).await
    }

    async fn try_group(&self, executions: &[Execution]) -> Result<Vec<Result<Committed, StoreError>>, StoreError> {
        let mut tx = self.begin().await?;
        let streams = Self::load_streams(&mut tx, &group_keys(executions)).await?;
        let streams = streams.into_iter().map(|s| ((s.site_id, s.billing_credit_id), s)).collect();
        let applied = applied_commands(&mut tx, executions).await?;
        let planned = plan(executions, streams, &applied, now_micros());
        let finals: Vec<PreparedCredit> = planned.changed.into_iter().map(|(_, after)| after).collect();
        let recorded = Self::write(&mut tx, planned.events, &finals).await?;
        tx.commit().await.map_err(StoreError::from_sqlx)?;
        Ok(self.answer(planned.outcomes, recorded).await)
    }
}

/// The (site, command id) pairs of this group that are already in the store.
async fn applied_commands(
    tx: &mut Transaction<'_, Sqlite>,
    executions: &[Execution],
) -> Result<HashSet<(Uuid, Uuid)>, StoreError> {
    let (sites, commands) = group_command_ids(executions);
    let pairs: Vec<(Uuid, Uuid)> = sites.into_iter().zip(commands).collect();
    let mut applied = HashSet::new();
    for chunk in pairs.chunks(CHECK_COMMANDS_MAX) {
        // An OR of equalities (see `load_streams`): SQLite searches events_command for each.
        let mut qb = QueryBuilder::<Sqlite>::new("SELECT DISTINCT site_id, command_id FROM events WHERE ");
        for (i, &(site_id, command_id)) in chunk.iter().enumerate() {
            qb.push(if i == 0 { "(site_id = " } else { " OR (site_id = " })
                .push_bind(site_id)
                .push(" AND command_id = ")
                .push_bind(command_id)
                .push(")");
        }
        let rows = qb.build().fetch_all(&mut **tx).await.map_err(StoreError::from_sqlx)?;
        applied.extend(rows.iter().map(|r| (r.get(0), r.get(1))));
    }
    Ok(applied)
}

/// Inserts events, in chunks, and returns them with their positions.
pub(super) async fn insert_events(
    tx: &mut Transaction<'_, Sqlite>,
    events: Vec<PreparedEvent>,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut positions: std::collections::HashMap<Uuid, i64> = std::collections::HashMap::with_capacity(events.len());
    for chunk in events.chunks(INSERT_EVENTS_MAX) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO events (event_id, site_id, billing_credit_id, version, event_type, schema_version, payload, \
             actor, command_id, correlation_id, causation_id, occurred_at, recorded_at, hash) ",
        );
        qb.push_values(chunk, |mut b, e| {
            let r = &e.record;
            b.push_bind(r.event_id)
                .push_bind(r.site_id)
                .push_bind(r.billing_credit_id)
                .push_bind(r.version as i64)
                .push_bind(r.event.event_type())
                .push_bind(i64::from(r.schema_version))
                .push_bind(&e.payload)
                .push_bind(&r.actor)
                .push_bind(r.command_id)
                .push_bind(r.correlation_id)
                .push_bind(r.causation_id)
                .push_bind(r.occurred_at.timestamp_micros())
                .push_bind(r.recorded_at.timestamp_micros())
                .push_bind(&r.hash[..]);
        });
        // RETURNING promises no row order: positions are matched by event id.
        qb.push(" RETURNING event_id, position");
        for row in qb.build().fetch_all(&mut **tx).await.map_err(map_write_error)? {
            positions.insert(row.get("event_id"), row.get("position"));
        }
    }
    Ok(events
        .into_iter()
        .map(|e| {
            let position = positions[&e.record.event_id];
            RecordedEvent { position, cursor: FeedCursor { txid: 0, position }, ..e.record }
        })
        .collect())
}
