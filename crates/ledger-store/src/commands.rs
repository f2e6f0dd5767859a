//! Running domain commands against the store: the one path every intake (REST, NATS,
//! the expiry sweep) takes, so each applies the same rules the same way.

use chrono::{DateTime, Utc};
use ledger_domain::{decide, decide_consume, Allocation, Command, ConsumeRequest, Credit};
use uuid::Uuid;

use crate::error::StoreError;
use crate::model::{CommandMeta, Committed, Tombstones};
use crate::ports::{Commands, Execution, Reads};

/// One command on one credit, judged at `meta.occurred_at`. With `expected_version`
/// (If-Match), a credit that has moved on is refused with
/// [`StoreError::VersionConflict`] before anything is decided.
pub fn command_execution(
    site_id: Uuid,
    billing_credit_id: Uuid,
    command: Command,
    meta: CommandMeta,
    expected_version: Option<u64>,
) -> Execution {
    let now = meta.occurred_at;
    let reverses = match &command {
        Command::Reverse { event_id, .. } => Some(*event_id),
        _ => None,
    };
    Execution {
        site_id,
        billing_credit_ids: vec![billing_credit_id],
        meta,
        reverses,
        decide: Box::new(move |states| {
            let credit = states[0].as_ref();
            if let (Some(expected), Some(credit)) = (expected_version, credit.filter(|c| !c.deleted)) {
                if credit.version != expected {
                    return Err(StoreError::VersionConflict { billing_credit_id, expected, actual: credit.version });
                }
            }
            Ok(vec![(billing_credit_id, decide(credit, &command, now)?)])
        }),
    }
}

/// Runs [`command_execution`].
pub async fn run_command(
    store: &(impl Commands + ?Sized),
    site_id: Uuid,
    billing_credit_id: Uuid,
    command: Command,
    meta: CommandMeta,
    expected_version: Option<u64>,
) -> Result<Committed, StoreError> {
    store.execute(command_execution(site_id, billing_credit_id, command, meta, expected_version)).await
}

/// A consume's result: how much each credit paid, and what was written.
#[derive(Debug, Clone)]
pub struct Consumed {
    pub allocations: Vec<Allocation>,
    pub committed: Committed,
}

/// A consume over the credits `ids` (a member's, oldest first, at most
/// CONSUME_CREDITS_MAX), in one transaction over all of them.
pub fn consume_execution(site_id: Uuid, ids: Vec<Uuid>, request: ConsumeRequest, meta: CommandMeta) -> Execution {
    let now: DateTime<Utc> = meta.occurred_at;
    Execution {
        site_id,
        billing_credit_ids: ids,
        meta,
        reverses: None,
        decide: Box::new(move |states| {
            let credits: Vec<Credit> = states.iter().flatten().cloned().collect();
            let (_, decided) = decide_consume(&credits, &request, now)?;
            Ok(decided)
        }),
    }
}

/// The ids a consume for this member may spend from.
pub async fn consume_candidates(
    store: &(impl Reads + ?Sized),
    site_id: Uuid,
    membership_id: Uuid,
) -> Result<Vec<Uuid>, StoreError> {
    let mut ids = store.membership_credit_ids(site_id, membership_id, Tombstones::Excluded).await?;
    ids.truncate(ledger_domain::consume::CONSUME_CREDITS_MAX);
    Ok(ids)
}

/// How much each credit paid, read from what a consume wrote (first run or replay alike).
pub fn allocations(committed: &Committed) -> Vec<Allocation> {
    committed
        .events
        .iter()
        .filter_map(|e| match &e.event {
            ledger_domain::Event::CreditUsed(used) => {
                Some(Allocation { billing_credit_id: e.billing_credit_id, amount: used.amount })
            }
            _ => None,
        })
        .collect()
}

/// Spends across a member's matching credits in one transaction over all of them.
pub async fn consume<S: Commands + Reads + ?Sized>(
    store: &S,
    site_id: Uuid,
    request: ConsumeRequest,
    meta: CommandMeta,
) -> Result<Consumed, StoreError> {
    let ids = consume_candidates(store, site_id, request.wellness_plan_membership_id).await?;
    let committed = store.execute(consume_execution(site_id, ids, request, meta)).await?;
    Ok(Consumed { allocations: allocations(&committed), committed })
}
