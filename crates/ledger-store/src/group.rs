//! Group commit: commands that arrive together share one transaction.
//!
//! A commit costs a log flush and a round trip per statement. One command alone takes
//! four round trips on Postgres (begin, lock-and-load, write, commit); a group of 64
//! takes the same four, each carrying every command's rows. Every command is
//! still decided on its own against the credits as the commands before it in the group
//! left them, and keeps its own result: a refused command adds nothing and the others
//! commit.
//!
//! If the group's writes fail (a concurrent create of the same credit, a duplicate
//! command), the transaction is rolled back and each command runs alone, so one bad
//! command never fails its neighbours. Deciders are pure, so running one again is safe.
//!
//! A command that finds no other in progress does not wait for a writer: it runs alone
//! in its caller's task, which spares a client that sends one command at a time two
//! thread hops.
//!
//! This module holds what both backends share: the queue, the fallback, and the pure
//! planning of a group ([`plan`]). Each backend's `try_group` does the IO around it.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ledger_domain::Credit;
use tokio::sync::{mpsc, oneshot, Mutex};
use uuid::Uuid;

use crate::error::StoreError;
use crate::model::{Committed, RecordedEvent};
use crate::ports::Execution;
use crate::prepare::{decision_to_appends, prepare, LoadedStream, PreparedCredit, PreparedEvent};

/// The most commands one group transaction carries.
pub const GROUP_COMMANDS_MAX: usize = 64;
/// The most commands one transaction of [`execute_in_order`] carries.
pub const ORDERED_GROUP_COMMANDS_MAX: usize = 1_000;
/// Commands waiting for a writer before `execute` callers wait to enqueue.
pub const GROUP_QUEUE_CAPACITY: usize = 4_096;

type Reply = oneshot::Sender<Result<Committed, StoreError>>;

/// The IO a backend does for group commit.
#[async_trait]
pub(crate) trait GroupBackend: Send + Sync + 'static {
    /// One command in its own transaction: a group of one, and the fallback.
    async fn execute_alone(&self, execution: Execution) -> Result<Committed, StoreError>;
    /// Writes the whole group in one transaction and answers each command, or fails
    /// as a whole having written nothing.
    async fn try_group(&self, executions: &[Execution]) -> Result<Vec<Result<Committed, StoreError>>, StoreError>;
    /// The events a command already wrote, answered as a replay.
    async fn command_applied(&self, site_id: Uuid, command_id: Uuid) -> Result<Option<Committed>, StoreError>;

    /// Answers each command once the group has committed; `recorded` are the plan's
    /// events as stored.
    async fn answer(&self, outcomes: Vec<Outcome>, recorded: Vec<RecordedEvent>) -> Vec<Result<Committed, StoreError>> {
        let mut results = Vec::with_capacity(outcomes.len());
        for outcome in outcomes {
            results.push(match outcome {
                Outcome::Appended { range, credits } => {
                    Ok(Committed { events: recorded[range].to_vec(), credits, replayed: false })
                }
                Outcome::Done(result) => result,
                Outcome::AlreadyApplied(site_id, command_id) => self
                    .command_applied(site_id, command_id)
                    .await
                    .and_then(|c| c.ok_or(StoreError::Rejected("a repeated command has no events".into()))),
            });
        }
        results
    }
}

/// The queue in front of the group writers.
pub(crate) struct GroupCommit {
    queue: mpsc::Sender<(Execution, Reply)>,
    /// Runs a command that finds no other in progress, in its caller's task.
    alone: Arc<dyn GroupBackend>,
    /// `execute` calls in progress, queued or being written.
    in_progress: Arc<AtomicUsize>,
}

/// Counts an `execute` call as in progress until it ends, even if its caller drops it.
struct InProgress(Arc<AtomicUsize>);

impl InProgress {
    /// Counts one more call; true when it is the only one.
    fn enter(counter: &Arc<AtomicUsize>) -> (Self, bool) {
        let before = counter.fetch_add(1, Ordering::AcqRel);
        (Self(counter.clone()), before == 0)
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl GroupCommit {
    /// Starts `writers` tasks: with two, one fills its group while another commits.
    /// Needs a Tokio runtime.
    pub(crate) fn start<B: GroupBackend + Clone>(backend: B, writers: usize) -> Self {
        assert!(writers >= 1, "group commit needs a writer");
        let alone: Arc<dyn GroupBackend> = Arc::new(backend.clone());
        let (queue, receiver) = mpsc::channel(GROUP_QUEUE_CAPACITY);
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..writers {
            let (backend, receiver) = (backend.clone(), receiver.clone());
            tokio::spawn(async move {
                while let Some(group) = next_group(&receiver).await {
                    commit_group(&backend, group).await;
                }
            });
        }
        Self { queue, alone, in_progress: Arc::new(AtomicUsize::new(0)) }
    }

    pub(crate) async fn execute(&self, execution: Execution) -> Result<Committed, StoreError> {
        let (_in_progress, only) = InProgress::enter(&self.in_progress);
        if only {
            // Nothing to share a transaction with: handing the command to a writer task
            // would only add two thread hops.
            return self.alone.execute_alone(execution).await;
        }
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

async fn commit_group<B: GroupBackend>(backend: &B, group: Vec<(Execution, Reply)>) {
    let (executions, replies): (Vec<_>, Vec<_>) = group.into_iter().unzip();
    let results = run_group(backend, executions, &mut HashSet::new()).await;
    for (reply, result) in replies.into_iter().zip(results) {
        let _ = reply.send(result);
    }
}

/// Runs commands in the order given, in groups of up to ORDERED_GROUP_COMMANDS_MAX,
/// each command with its own outcome. Order per credit is kept even through faults:
/// once a command fails transiently, the later ones on any of its credits are not run
/// and fail the same way, so that a retry applies them in their order.
pub(crate) async fn execute_in_order<B: GroupBackend>(
    backend: &B,
    executions: Vec<Execution>,
) -> Vec<Result<Committed, StoreError>> {
    let mut results: Vec<Option<Result<Committed, StoreError>>> = executions.iter().map(|_| None).collect();
    let mut faulted: HashSet<(Uuid, Uuid)> = HashSet::new();
    let mut pending = executions.into_iter().enumerate().peekable();
    while pending.peek().is_some() {
        let (mut slots, mut group) = (vec![], vec![]);
        for (i, execution) in pending.by_ref().take(ORDERED_GROUP_COMMANDS_MAX) {
            if keys_of(&execution).any(|k| faulted.contains(&k)) {
                results[i] = Some(Err(after_fault()));
            } else {
                slots.push(i);
                group.push(execution);
            }
        }
        if group.is_empty() {
            continue;
        }
        for (i, result) in slots.into_iter().zip(run_group(backend, group, &mut faulted).await) {
            results[i] = Some(result);
        }
    }
    results.into_iter().map(|r| r.expect("every command is answered")).collect()
}

/// One group: a transaction for all, or each alone when it cannot be written as one.
/// Adds the credits of commands that failed transiently to `faulted`, and does not run
/// a command on such a credit.
async fn run_group<B: GroupBackend>(
    backend: &B,
    executions: Vec<Execution>,
    faulted: &mut HashSet<(Uuid, Uuid)>,
) -> Vec<Result<Committed, StoreError>> {
    if executions.len() == 1 {
        let execution = executions.into_iter().next().expect("one");
        return vec![run_alone(backend, execution, faulted).await];
    }
    match backend.try_group(&executions).await {
        Ok(results) => results,
        Err(StoreError::Unavailable(e)) => {
            let reason = e.to_string();
            faulted.extend(executions.iter().flat_map(keys_of));
            executions.iter().map(|_| Err(StoreError::Unavailable(sqlx::Error::Protocol(reason.clone())))).collect()
        }
        // The group could not be written as one: each command on its own, in order.
        Err(_) => {
            let mut results = Vec::with_capacity(executions.len());
            for execution in executions {
                results.push(run_alone(backend, execution, faulted).await);
            }
            results
        }
    }
}

async fn run_alone<B: GroupBackend>(
    backend: &B,
    execution: Execution,
    faulted: &mut HashSet<(Uuid, Uuid)>,
) -> Result<Committed, StoreError> {
    let keys: Vec<(Uuid, Uuid)> = keys_of(&execution).collect();
    if keys.iter().any(|k| faulted.contains(k)) {
        return Err(after_fault());
    }
    let result = backend.execute_alone(execution).await;
    if matches!(&result, Err(e) if e.is_transient()) {
        faulted.extend(keys);
    }
    result
}

pub(crate) fn keys_of(execution: &Execution) -> impl Iterator<Item = (Uuid, Uuid)> + '_ {
    execution.billing_credit_ids.iter().map(|id| (execution.site_id, *id))
}

/// The answer of a command held back behind an earlier one's transient fault.
fn after_fault() -> StoreError {
    StoreError::Unavailable(sqlx::Error::Protocol("an earlier command on the same credit failed; not run".into()))
}

/// What became of one command of the group before the commit.
pub(crate) enum Outcome {
    /// Its events are `events[range]`; `credits` as they stood after them.
    Appended { range: std::ops::Range<usize>, credits: Vec<Credit> },
    /// Refused, or nothing to write: answered as is.
    Done(Result<Committed, StoreError>),
    /// Its command id was applied before: answered from the stored events after commit.
    AlreadyApplied(Uuid, Uuid),
}

/// What a group writes, and how each command is answered once it has.
pub(crate) struct GroupPlan {
    pub events: Vec<PreparedEvent>,
    /// Every credit the group changed: as it stood before the group, and its new row.
    pub changed: Vec<(Option<Credit>, PreparedCredit)>,
    pub outcomes: Vec<Outcome>,
}

/// Every credit the group touches, each once, in the order locks are taken.
pub(crate) fn group_keys(executions: &[Execution]) -> Vec<(Uuid, Uuid)> {
    let keys: BTreeSet<(Uuid, Uuid)> =
        executions.iter().flat_map(|e| e.billing_credit_ids.iter().map(move |id| (e.site_id, *id))).collect();
    keys.into_iter().collect()
}

/// The (site, command id) pairs the group carries.
pub(crate) fn group_commands(executions: &[Execution]) -> Vec<(Uuid, Uuid)> {
    executions.iter().filter_map(|e| e.meta.command_id.map(|c| (e.site_id, c))).collect()
}

/// The (site, credit, event) of each reversal the group carries.
pub(crate) fn group_reversals(executions: &[Execution]) -> Vec<(Uuid, Uuid, Uuid)> {
    executions.iter().filter_map(reversal).collect()
}

/// The (site, credit, event) an execution reverses, if it is a reversal.
pub(crate) fn reversal(execution: &Execution) -> Option<(Uuid, Uuid, Uuid)> {
    let credit = execution.billing_credit_ids.first()?;
    execution.reverses.map(|event| (execution.site_id, *credit, event))
}

/// Decides every command of the group in arrival order, each against the credits as
/// the commands before it left them. Pure: no IO.
///
/// `streams` must hold every key of [`group_keys`], loaded under the group's locks;
/// `applied` the (site, command id) pairs already stored.
pub(crate) fn plan(
    executions: &[Execution],
    mut streams: HashMap<(Uuid, Uuid), LoadedStream>,
    applied: &HashSet<(Uuid, Uuid)>,
    recorded_at: DateTime<Utc>,
) -> GroupPlan {
    let initial: HashMap<(Uuid, Uuid), Option<Credit>> = streams.iter().map(|(k, s)| (*k, s.state.clone())).collect();
    let mut events: Vec<PreparedEvent> = Vec::new();
    let mut finals: HashMap<(Uuid, Uuid), PreparedCredit> = HashMap::new();
    let mut appended: HashSet<(Uuid, Uuid)> = HashSet::new();
    let mut outcomes = Vec::with_capacity(executions.len());
    for execution in executions {
        let site_id = execution.site_id;
        // A command id seen earlier in the group counts only if it wrote events there:
        // one that wrote none (refused, or nothing to do) is decided again, as it would
        // be on its own.
        let command = execution.meta.command_id.map(|command_id| (site_id, command_id));
        if let Some(command) = command.filter(|c| applied.contains(c) || appended.contains(c)) {
            outcomes.push(Outcome::AlreadyApplied(command.0, command.1));
            continue;
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
            let stream = streams.get_mut(&key).expect("every key of the group is loaded");
            stream.state = Some(credit.credit.clone());
            stream.last_hash = credit.last_hash;
            finals.insert(key, PreparedCredit { credit: credit.credit.clone(), last_hash: credit.last_hash });
        }
        appended.extend(command);
        let range = events.len()..events.len() + new_events.len();
        events.extend(new_events);
        outcomes.push(Outcome::Appended { range, credits: credits.into_iter().map(|c| c.credit).collect() });
    }
    let changed = finals.into_iter().map(|(key, credit)| (initial[&key].clone(), credit)).collect();
    GroupPlan { events, changed, outcomes }
}
