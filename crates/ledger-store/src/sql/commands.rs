//! Commands: lock the credits, decide, append the events and write the projection, in
//! one transaction; alone, or as a group that shares one (see [`crate::group`]).

use std::collections::HashMap;

use async_trait::async_trait;
use ledger_domain::Credit;
use uuid::Uuid;

use super::build::Sql;
use super::db::SqlDb;
use super::dialect::{Conn, Dialect, Locked, WriteError, DUPLICATE_EVENT};
use super::list::{PROJECTION_COLUMNS, PROJECTION_SET_EXCLUDED};
use super::rows;
use super::store::{rows_per_statement, SqlStore};
use crate::error::StoreError;
use crate::group::{
    execute_in_order, group_commands, group_keys, group_reversals, keys_of, plan, reversal, GroupBackend,
};
use crate::model::*;
use crate::ports::{Commands, Execution, IdempotencyKey, Keyed};
use crate::prepare::{
    check_distinct_streams, decision_to_appends, now_micros, prepare, LoadedStream, PreparedCredit, PreparedEvent,
};

/// Columns of an event row as inserted.
const EVENT_INSERT_COLUMNS: usize = 14;
/// Columns of a projection row as upserted.
const PROJECTION_COLUMN_COUNT: usize = 22;
/// Keys (two bind parameters each) matched per statement.
const KEYS_PER_STATEMENT_MAX: usize = 500;

impl<D: Dialect> SqlStore<D> {
    /// Reads the credits' rows and which `commands` are stored already, a statement
    /// per chunk: a dialect's [`Dialect::load`] once its locks are held.
    pub(crate) async fn load_locked(
        conn: &mut Conn<D>,
        keys: &[(Uuid, Uuid)],
        commands: &[(Uuid, Uuid)],
    ) -> Result<Locked, StoreError> {
        let mut locked = Locked::default();
        for chunk in keys.chunks(KEYS_PER_STATEMENT_MAX) {
            let mut q = Sql::<D>::new(format!(
                "SELECT site_id, billing_credit_id, {}, last_hash FROM billing_credits WHERE ",
                D::STATE_COLUMN
            ));
            q.pairs(("site_id", "billing_credit_id"), chunk);
            for row in q.fetch_all(conn).await.map_err(StoreError::from_sqlx)? {
                let state = rows::state::<D>(&row)?;
                let last_hash = rows::hash::<D>(&row, "last_hash")?;
                locked.rows.insert((state.site_id, state.billing_credit_id), (state, last_hash));
            }
        }
        for chunk in commands.chunks(KEYS_PER_STATEMENT_MAX) {
            let mut q = Sql::<D>::new("SELECT DISTINCT site_id, command_id FROM events WHERE ");
            q.pairs(("site_id", "command_id"), chunk);
            for row in q.fetch_all(conn).await.map_err(StoreError::from_sqlx)? {
                locked.applied.insert((D::Db::uuid(&row, "site_id")?, D::Db::uuid(&row, "command_id")?));
            }
        }
        Ok(locked)
    }

    /// Restores on each locked credit what is left to reverse of the event a command
    /// reverses ([`Credit::restore_reversible`]), from the event and the stream's
    /// reversals: a primary-key prefix scan of the one stream, run only for reversals.
    async fn restore_reversible(
        conn: &mut Conn<D>,
        locked: &mut Locked,
        reversals: &[(Uuid, Uuid, Uuid)],
    ) -> Result<(), StoreError> {
        for &(site_id, billing_credit_id, event_id) in reversals {
            let Some((credit, _)) = locked.rows.get_mut(&(site_id, billing_credit_id)) else { continue };
            let mut q = Sql::<D>::new(format!("SELECT {} FROM events WHERE site_id = ", D::EVENT_COLUMNS));
            q.uuid(site_id).push(" AND billing_credit_id = ").uuid(billing_credit_id).push(" AND (event_id = ");
            q.uuid(event_id).push(" OR event_type IN ('CreditUseReversed', 'CreditWasteReversed')) ORDER BY version");
            let history = rows::events::<D>(&q.fetch_all(conn).await.map_err(StoreError::from_sqlx)?)?;
            credit.restore_reversible(event_id, history.iter().map(|e| (e.event_id, &e.event)));
        }
        Ok(())
    }

    /// Inserts events, in chunks, and returns them with their feed cursors.
    async fn insert_events(conn: &mut Conn<D>, events: Vec<PreparedEvent>) -> Result<Vec<RecordedEvent>, WriteError> {
        let mut cursors: HashMap<Uuid, FeedCursor> = HashMap::with_capacity(events.len());
        for chunk in events.chunks(rows_per_statement::<D>(EVENT_INSERT_COLUMNS)) {
            let mut q = Sql::<D>::new(
                "INSERT INTO events (event_id, site_id, billing_credit_id, version, event_type, schema_version, \
                 payload, actor, command_id, correlation_id, causation_id, occurred_at, recorded_at, hash)",
            );
            q.values(chunk, |v, e| {
                let r = &e.record;
                v.uuid(r.event_id)
                    .uuid(r.site_id)
                    .uuid(r.billing_credit_id)
                    .i64(r.version as i64)
                    .text(r.event.event_type())
                    .i16(r.schema_version as i16)
                    .json(e.payload.clone())
                    .text(r.actor.clone())
                    .opt_uuid(r.command_id)
                    .opt_uuid(r.correlation_id)
                    .opt_uuid(r.causation_id)
                    .time(r.occurred_at)
                    .time(r.recorded_at)
                    .bytes(&r.hash);
            });
            // RETURNING promises no row order: cursors are matched by event id.
            q.push(" RETURNING ").push(D::RETURNING_CURSOR);
            for row in q.fetch_all(conn).await.map_err(D::write_error)? {
                let event_id = D::Db::uuid(&row, "event_id").map_err(WriteError::Other)?;
                cursors.insert(event_id, D::cursor(&row).map_err(WriteError::Other)?);
            }
        }
        Ok(events
            .into_iter()
            .map(|e| {
                let cursor = cursors[&e.record.event_id];
                RecordedEvent { position: cursor.position, cursor, ..e.record }
            })
            .collect())
    }

    /// Writes projection rows. `only_forward`: never replace a row with an older version
    /// (replay runs beside live writers and must not undo their work).
    pub(crate) async fn upsert_projections(
        conn: &mut Conn<D>,
        credits: &[&PreparedCredit],
        only_forward: bool,
    ) -> Result<(), StoreError> {
        for chunk in credits.chunks(rows_per_statement::<D>(PROJECTION_COLUMN_COUNT)) {
            let mut q = Sql::<D>::new(format!("INSERT INTO billing_credits ({PROJECTION_COLUMNS})"));
            q.values(chunk, |v, p| {
                let (c, d) = (&p.credit, &p.credit.details);
                v.uuid(c.site_id)
                    .uuid(c.billing_credit_id)
                    .i64(c.version as i64)
                    .bytes(&p.last_hash)
                    .bool(c.deleted)
                    .bool(c.expired)
                    .text(d.credit_type.as_str())
                    .bool(c.is_active)
                    .opt_uuid(d.wellness_plan_id)
                    .opt_uuid(d.wellness_plan_benefit_id)
                    .opt_uuid(d.wellness_plan_membership_id)
                    .opt_uuid(d.wellness_plan_membership_cycle_id)
                    .opt_uuid(d.wellness_plan_membership_status_period_id)
                    .time(d.start_date)
                    .opt_time(d.end_date)
                    .time(c.created_at)
                    .time(c.updated_at)
                    .amount(c.total_amount)
                    .amount(c.used_amount)
                    .amount(c.wasted_amount)
                    .amount(c.remaining_amount())
                    .json(serde_json::to_string(c).expect("credits serialize"));
            });
            q.push(format_args!(" ON CONFLICT (site_id, billing_credit_id) DO UPDATE SET {PROJECTION_SET_EXCLUDED}"));
            if only_forward {
                q.push(" WHERE billing_credits.version <= EXCLUDED.version");
            }
            q.execute(conn).await.map_err(StoreError::from_sqlx)?;
        }
        Ok(())
    }

    /// Inserts the events and upserts the projection rows they change, a statement per
    /// chunk: a dialect's [`Dialect::write`] where round trips cost nothing.
    pub(crate) async fn write_each(
        conn: &mut Conn<D>,
        events: Vec<PreparedEvent>,
        changed: &[(Option<&Credit>, &PreparedCredit)],
    ) -> Result<Vec<RecordedEvent>, WriteError> {
        if events.is_empty() {
            return Ok(vec![]);
        }
        let recorded = Self::insert_events(conn, events).await?;
        let rows: Vec<&PreparedCredit> = changed.iter().map(|(_, after)| *after).collect();
        Self::upsert_projections(conn, &rows, false).await.map_err(WriteError::Other)?;
        Ok(recorded)
    }

    /// The events a command wrote, oldest first (none if it never ran).
    pub(super) async fn events_of_command(
        conn: &mut Conn<D>,
        site_id: Uuid,
        command_id: Uuid,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut q = Sql::<D>::new(format!("SELECT {} FROM events WHERE site_id = ", D::EVENT_COLUMNS));
        q.uuid(site_id).push(" AND command_id = ").uuid(command_id).push(" ORDER BY position");
        rows::events::<D>(&q.fetch_all(conn).await.map_err(StoreError::from_sqlx)?)
    }

    /// A command already applied: its events, and the credits they touched as they stand now.
    pub(super) async fn replayed(&self, events: Vec<RecordedEvent>) -> Result<Committed, StoreError> {
        let mut credits: Vec<Credit> = Vec::new();
        for e in &events {
            if !credits.iter().any(|c| c.billing_credit_id == e.billing_credit_id && c.site_id == e.site_id) {
                credits.extend(crate::ports::Reads::load(self, e.site_id, e.billing_credit_id).await?);
            }
        }
        Ok(Committed { events, credits, replayed: true })
    }

    /// The events already stored for these ids, when all of them are.
    async fn already_stored(&self, event_ids: &[Uuid]) -> Result<Option<Committed>, StoreError> {
        let mut q = Sql::<D>::new(format!("SELECT {} FROM events WHERE event_id IN ", D::EVENT_COLUMNS));
        q.uuid_list(event_ids).push(" ORDER BY position");
        let rows = q.fetch_all(&mut *self.read_conn().await?).await.map_err(StoreError::from_sqlx)?;
        if rows.is_empty() {
            return Ok(None);
        }
        if rows.len() != event_ids.len() {
            return Err(StoreError::Rejected("some of these event ids are stored already, not all".into()));
        }
        self.replayed(rows::events::<D>(&rows)?).await.map(Some)
    }

    /// Runs an execution inside `conn`'s transaction without committing; `locks` says
    /// whether the transaction holds the credits' locks already. A `replayed` result
    /// wrote nothing: the caller must not commit it.
    pub(super) async fn execute_in(
        &self,
        conn: &mut Conn<D>,
        execution: Execution,
        locks: Locks,
    ) -> Result<Committed, StoreError> {
        let reversals: Vec<_> = reversal(&execution).into_iter().collect();
        let keys: Vec<_> = keys_of(&execution).collect();
        let Execution { site_id, billing_credit_ids: ids, meta, decide, .. } = execution;
        let command: Vec<_> = meta.command_id.map(|c| (site_id, c)).into_iter().collect();
        if locks == Locks::ToTake {
            D::lock(conn, &keys).await?;
        }
        let mut locked = D::load(conn, &keys, &command).await?;
        Self::restore_reversible(conn, &mut locked, &reversals).await?;
        // Checked under the credits' locks: a concurrent run of the same command has
        // committed by now, or has not started writing.
        if let Some(&(_, command_id)) = command.iter().find(|c| locked.applied.contains(c)) {
            let events = Self::events_of_command(conn, site_id, command_id).await?;
            return self.replayed(events).await;
        }
        let loaded = locked.streams(&keys);
        let states: Vec<Option<Credit>> = loaded.iter().map(|s| s.state.clone()).collect();
        let decided = decide(&states)?;
        let appends = decision_to_appends(site_id, &states, &ids, decided, meta.command_id);
        let (events, credits) = prepare(&loaded, &appends, &meta, now_micros())?;
        let changed = before_and_after(&loaded, &credits);
        let events = match D::write(conn, events, &changed).await {
            Ok(events) => events,
            // The same command ran concurrently and committed first: answer as it did.
            Err(WriteError::DuplicateEvent) => {
                let Some(command_id) = meta.command_id else { return Err(WriteError::DuplicateEvent.into()) };
                return self.command_applied(site_id, command_id).await?.ok_or(WriteError::DuplicateEvent.into());
            }
            Err(e) => return Err(e.into()),
        };
        let credits = if credits.is_empty() {
            states.into_iter().flatten().collect()
        } else {
            credits.into_iter().map(|c| c.credit).collect()
        };
        Ok(Committed { events, credits, replayed: false })
    }

    /// One command in its own transaction.
    pub(super) async fn execute_alone(&self, execution: Execution) -> Result<Committed, StoreError> {
        let mut tx = self.begin_locked(&keys_of(&execution).collect::<Vec<_>>()).await?;
        let committed = self.execute_in(&mut tx, execution, Locks::Held).await?;
        if !committed.replayed {
            tx.commit().await.map_err(StoreError::from_sqlx)?;
        }
        Ok(committed)
    }

    /// The events a command wrote, if it was already applied.
    async fn command_applied(&self, site_id: Uuid, command_id: Uuid) -> Result<Option<Committed>, StoreError> {
        let events = Self::events_of_command(&mut *self.read_conn().await?, site_id, command_id).await?;
        if events.is_empty() {
            return Ok(None);
        }
        self.replayed(events).await.map(Some)
    }
}

/// Whether a transaction holds the locks of an execution's credits when it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Locks {
    /// Taken with BEGIN ([`SqlStore::begin_locked`]).
    Held,
    /// Not yet: the transaction began for something else first (an idempotency key).
    ToTake,
}

/// Each new projection row with the credit as it was loaded.
fn before_and_after<'a>(
    loaded: &'a [LoadedStream],
    credits: &'a [PreparedCredit],
) -> Vec<(Option<&'a Credit>, &'a PreparedCredit)> {
    credits
        .iter()
        .map(|after| {
            let before = loaded
                .iter()
                .find(|s| s.site_id == after.credit.site_id && s.billing_credit_id == after.credit.billing_credit_id)
                .and_then(|s| s.state.as_ref());
            (before, after)
        })
        .collect()
}

#[async_trait]
impl<D: Dialect> GroupBackend for SqlStore<D> {
    async fn execute_alone(&self, execution: Execution) -> Result<Committed, StoreError> {
        SqlStore::execute_alone(self, execution).await.map_err(|e| self.fault(e))
    }

    async fn command_applied(&self, site_id: Uuid, command_id: Uuid) -> Result<Option<Committed>, StoreError> {
        SqlStore::command_applied(self, site_id, command_id).await
    }

    async fn try_group(&self, executions: &[Execution]) -> Result<Vec<Result<Committed, StoreError>>, StoreError> {
        self.write_group(executions).await.map_err(|e| self.fault(e))
    }
}

impl<D: Dialect> SqlStore<D> {
    async fn write_group(&self, executions: &[Execution]) -> Result<Vec<Result<Committed, StoreError>>, StoreError> {
        let keys = group_keys(executions);
        let mut tx = self.begin_locked(&keys).await?;
        let mut locked = D::load(&mut tx, &keys, &group_commands(executions)).await?;
        Self::restore_reversible(&mut tx, &mut locked, &group_reversals(executions)).await?;
        let streams = locked.streams(&keys).into_iter().map(|s| ((s.site_id, s.billing_credit_id), s)).collect();
        let planned = plan(executions, streams, &locked.applied, now_micros());
        let changed: Vec<(Option<&Credit>, &PreparedCredit)> =
            planned.changed.iter().map(|(before, after)| (before.as_ref(), after)).collect();
        let recorded = D::write(&mut tx, planned.events, &changed).await.map_err(StoreError::from)?;
        tx.commit().await.map_err(StoreError::from_sqlx)?;
        Ok(self.answer(planned.outcomes, recorded).await)
    }
}

#[async_trait]
impl<D: Dialect> Commands for SqlStore<D> {
    async fn execute(&self, execution: Execution) -> Result<Committed, StoreError> {
        match &self.group {
            Some(group) => group.execute(execution).await,
            None => self.execute_alone(execution).await,
        }
    }

    async fn execute_all(&self, executions: Vec<Execution>) -> Vec<Result<Committed, StoreError>> {
        execute_in_order(self, executions).await
    }

    async fn execute_once(&self, execution: Execution, key: IdempotencyKey) -> Result<Keyed, StoreError> {
        self.execute_keyed(execution, key).await.map_err(|e| self.fault(e))
    }

    async fn append(&self, appends: Vec<StreamAppend>, meta: CommandMeta) -> Result<Committed, StoreError> {
        check_distinct_streams(&appends)?;
        let event_ids: Vec<Uuid> = appends.iter().flat_map(|a| a.events.iter().map(|e| e.event_id)).collect();
        if event_ids.is_empty() {
            return Ok(Committed { events: vec![], credits: vec![], replayed: false });
        }
        if let Some(done) = self.already_stored(&event_ids).await? {
            return Ok(done);
        }
        let keys: Vec<_> = appends.iter().map(|a| (a.site_id, a.billing_credit_id)).collect();
        let mut tx = self.begin_locked(&keys).await?;
        let loaded = D::load(&mut tx, &keys, &[]).await?.streams(&keys);
        let (events, credits) = prepare(&loaded, &appends, &meta, now_micros())?;
        let changed = before_and_after(&loaded, &credits);
        match D::write(&mut tx, events, &changed).await {
            Ok(events) => {
                tx.commit().await.map_err(StoreError::from_sqlx)?;
                Ok(Committed { events, credits: credits.into_iter().map(|c| c.credit).collect(), replayed: false })
            }
            // A concurrent append of the same ids won the race: answer as it did.
            Err(WriteError::DuplicateEvent) => {
                drop(tx);
                self.already_stored(&event_ids).await?.ok_or(StoreError::Rejected(DUPLICATE_EVENT.into()))
            }
            Err(e) => Err(e.into()),
        }
    }
}
