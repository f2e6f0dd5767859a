//! Group commit: commands that arrive together share one transaction.
//!
//! A commit costs a WAL flush and a round trip per statement. One command alone takes
//! five statements (lock, command-id check, insert, upsert, commit); a group of 64 takes
//! the same five, each carrying every command's rows. Every command is still decided
//! on its own against the credits as the commands before it in the group left them,
//! and keeps its own result: a refused command adds nothing and the others commit.
//!
//! If the group's writes fail (a concurrent create of the same credit, a duplicate
//! command), the transaction is rolled back and each command runs alone, so one bad
//! command never fails its neighbours. Deciders are pure, so running one again is safe.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use ledger_domain::Credit;
use sqlx::{Postgres, QueryBuilder, Row, Transaction};
use tokio::sync::{mpsc, oneshot, Mutex};
use uuid::Uuid;

use super::counts::CountDeltas;
use super::{parse_txid, upsert_projections, PgStore};
use crate::prepare::{now_micros, prepare, LoadedStream, PreparedCredit, PreparedEvent};
use crate::{decision_to_appends, Committed, Execution, FeedCursor, RecordedEvent, StoreError};

/// The most commands one group transaction carries.
pub const GROUP_COMMANDS_MAX: usize = 64;
/// Group writers working at once: one fills its group while another commits.
pub const GROUP_WRITERS: usize = 2;
/// Commands waiting for a writer before `execute` callers wait to enqueue.
pub const GROUP_QUEUE_CAPACITY: usize = 4_096;
/// Events per INSERT statement (15 bind parameters each, under Postgres's 65,535).
const INSERT_EVENTS_MAX: usize = 2_000;

type Reply = oneshot::Sender<Result<Committed, StoreError>>;

/// The queue in front of the group writers.
pub(crate) struct GroupCommit {
    queue: mpsc::Sender<(Execution, Reply)>,
}

impl GroupCommit {
    pub(crate) fn start(store: PgStore) -> Self {
        let (queue, receiver) = mpsc::channel(GROUP_QUEUE_CAPACITY);
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..GROUP_WRITERS {
            let (store, receiver) = (store.clone(), receiver.clone());
            tokio::spawn(async move {
                while let Some(group) = next_group(&receiver).await {
                    store.commit_group(group).await;
                }
            });
        }
        Self { queue }
    }

    pub(crate) async fn execute(&self, execution: Execution) -> Result<Committed, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((execution, reply))
            .await
            .map_err(|_| StoreError::Rejected("the store is shutting down".into()))?;
        answer.await.map_err(|_| StoreError::Rejected("the group writer stopped".into()))?
    }
}

/// Waits for one command, then takes whatever else is already queued, up to the max.
async fn next_group(receiver: &Mutex<mpsc::Receiver<(Execution, Reply)>>) -> Option<Vec<(Execution, Reply)>> {
    let mut receiver = receiver.lock().await;
    let first = receiver.recv().await?;
    let mut group = vec![first];
    while group.len() < GROUP_COMMANDS_MAX {
        match receiver.try_recv() {
            Ok(job) => group.push(job),
            Err(_) => break,
        }
    }
    Some(group)
}

/// What became of one command of the group before the commit.
enum Outcome {
    /// Its events are `events[range]`; `credits` as they stood after them.
    Appended { range: std::ops::Range<usize>, credits: Vec<Credit> },
    /// Refused, or nothing to write: answered as is.
    Done(Result<Committed, StoreError>),
    /// Its command id was applied before: answered from the stored events after commit.
    AlreadyApplied(Uuid, Uuid),
}

impl PgStore {
    async fn commit_group(&self, group: Vec<(Execution, Reply)>) {
        if group.len() == 1 {
            let (execution, reply) = group.into_iter().next().expect("one");
            let _ = reply.send(self.execute_alone(execution).await);
            return;
        }
        let (executions, replies): (Vec<_>, Vec<_>) = group.into_iter().unzip();
        match self.try_group(&executions).await {
            Ok(results) => {
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(StoreError::Unavailable(e)) => {
                let reason = e.to_string();
                for reply in replies {
                    let _ = reply.send(Err(StoreError::Unavailable(sqlx::Error::Protocol(reason.clone()))));
                }
            }
            // The group could not be written as one: each command on its own.
            Err(_) => {
                for (execution, reply) in executions.into_iter().zip(replies) {
                    let _ = reply.send(self.execute_alone(execution).await);
                }
            }
        }
    }

    async fn try_group(&self, executions: &[Execution]) -> Result<Vec<Result<Committed, StoreError>>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(StoreError::from_sqlx)?;
        let keys: BTreeSet<(Uuid, Uuid)> =
            executions.iter().flat_map(|e| e.billing_credit_ids.iter().map(move |id| (e.site_id, *id))).collect();
        let keys: Vec<_> = keys.into_iter().collect();
        let mut streams: HashMap<(Uuid, Uuid), LoadedStream> =
            Self::lock_streams(&mut tx, &keys).await?.into_iter().map(|s| ((s.site_id, s.billing_credit_id), s)).collect();
        let applied = applied_commands(&mut tx, executions).await?;
        let initial: HashMap<(Uuid, Uuid), Option<Credit>> = streams.iter().map(|(k, s)| (*k, s.state.clone())).collect();

        let recorded_at = now_micros();
        let mut events: Vec<PreparedEvent> = Vec::new();
        let mut finals: HashMap<(Uuid, Uuid), PreparedCredit> = HashMap::new();
        let mut seen_commands: HashSet<Uuid> = HashSet::new();
        let mut outcomes = Vec::with_capacity(executions.len());
        for execution in executions {
            let site_id = execution.site_id;
            if let Some(command_id) = execution.meta.command_id {
                if applied.contains(&(site_id, command_id)) || !seen_commands.insert(command_id) {
                    outcomes.push(Outcome::AlreadyApplied(site_id, command_id));
                    continue;
                }
            }
            let ids = &execution.billing_credit_ids;
            let loaded: Vec<LoadedStream> = ids.iter().map(|id| streams[&(site_id, *id)].clone()).collect();
            let states: Vec<Option<Credit>> = loaded.iter().map(|s| s.state.clone()).collect();
            let decided = match (execution.decide)(&states) {
                Ok(decided) => decided,
                Err(refused) => {
                    outcomes.push(Outcome::Done(Err(refused)));
                    continue;
                }
            };
            let appends = decision_to_appends(site_id, &states, ids, decided, execution.meta.command_id);
            let (new_events, credits) = match prepare(&loaded, &appends, &execution.meta, recorded_at) {
                Ok(prepared) => prepared,
                Err(refused) => {
                    outcomes.push(Outcome::Done(Err(refused)));
                    continue;
                }
            };
            if new_events.is_empty() {
                let unchanged = states.into_iter().flatten().collect();
                outcomes.push(Outcome::Done(Ok(Committed { events: vec![], credits: unchanged, replayed: false })));
                continue;
            }
            for credit in &credits {
                let key = (credit.credit.site_id, credit.credit.billing_credit_id);
                let stream = streams.get_mut(&key).expect("locked above");
                stream.state = Some(credit.credit.clone());
                stream.last_hash = credit.last_hash;
                finals.insert(key, PreparedCredit { credit: credit.credit.clone(), last_hash: credit.last_hash });
            }
            let range = events.len()..events.len() + new_events.len();
            events.extend(new_events);
            outcomes.push(Outcome::Appended { range, credits: credits.into_iter().map(|c| c.credit).collect() });
        }

        let recorded = insert_events(&mut tx, events).await?;
        let finals: Vec<PreparedCredit> = finals.into_values().collect();
        upsert_projections(&mut tx, &finals, false).await?;
        let mut deltas = CountDeltas::default();
        for credit in &finals {
            let key = (credit.credit.site_id, credit.credit.billing_credit_id);
            deltas.record(initial[&key].as_ref(), &credit.credit);
        }
        deltas.apply(&mut tx).await?;
        tx.commit().await.map_err(StoreError::from_sqlx)?;

        let mut results = Vec::with_capacity(outcomes.len());
        for outcome in outcomes {
            results.push(match outcome {
                Outcome::Appended { range, credits } => {
                    Ok(Committed { events: recorded[range].to_vec(), credits, replayed: false })
                }
                Outcome::Done(result) => result,
                Outcome::AlreadyApplied(site_id, command_id) => self
                    .command_applied(site_id, Some(command_id))
                    .await
                    .and_then(|c| c.ok_or(StoreError::Rejected("a repeated command has no events".into()))),
            });
        }
        Ok(results)
    }
}

/// The (site, command id) pairs of this group that are already in the store.
async fn applied_commands(
    tx: &mut Transaction<'_, Postgres>,
    executions: &[Execution],
) -> Result<HashSet<(Uuid, Uuid)>, StoreError> {
    let (sites, commands): (Vec<Uuid>, Vec<Uuid>) =
        executions.iter().filter_map(|e| e.meta.command_id.map(|c| (e.site_id, c))).unzip();
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
pub(super) async fn insert_events(tx: &mut Transaction<'_, Postgres>, events: Vec<PreparedEvent>) -> Result<Vec<RecordedEvent>, StoreError> {
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
