//! The expiry sweep: writes CreditExpired for every credit past its endDate with a
//! balance left. Safe to run on every replica at once and to interrupt anywhere:
//!
//! - each expiry is its own transaction under the credit's lock, and `decide` refuses a
//!   second expiry, so two sweepers never both expire one credit;
//! - each expiry's command id is derived from the credit, so a retried one is a no-op;
//! - whatever an interrupted sweep did not reach is still due, and the next run takes it.

use chrono::{DateTime, Duration, Utc};
use ledger_domain::{Command, DomainError};
use uuid::Uuid;

use crate::commands::run_command;
use crate::error::StoreError;
use crate::model::CommandMeta;
use crate::ports::{Commands, Upkeep};

/// Credits expired per batch; each is its own transaction.
pub const SWEEP_BATCH_MAX: u32 = 500;
/// Batches per run, so one run cannot hold a replica busy forever.
pub const SWEEP_BATCHES_PER_RUN_MAX: u32 = 100;
/// Idempotency keys are kept at least this long (the API promises 24 hours).
pub const IDEMPOTENCY_KEY_TTL_HOURS: i64 = 48;

/// The actor recorded on the sweep's events.
pub const SWEEP_ACTOR: &str = "system:expiry-sweep";

const EXPIRY_NAMESPACE: Uuid = Uuid::from_u128(0x6578_7069_7279_2d73_7765_6570_0000_0001);

/// The command id of a credit's expiry: the same on every replica and every retry.
pub fn expiry_command_id(site_id: Uuid, billing_credit_id: Uuid) -> Uuid {
    let mut name = [0u8; 32];
    name[..16].copy_from_slice(site_id.as_bytes());
    name[16..].copy_from_slice(billing_credit_id.as_bytes());
    Uuid::new_v5(&EXPIRY_NAMESPACE, &name)
}

/// Expires what is due at `now`; returns how many credits this run expired.
pub async fn expire_due<S: Commands + Upkeep + ?Sized>(store: &S, now: DateTime<Utc>) -> Result<u64, StoreError> {
    let mut expired = 0;
    for _ in 0..SWEEP_BATCHES_PER_RUN_MAX {
        let due = store.due_for_expiry(now, SWEEP_BATCH_MAX).await?;
        if due.is_empty() {
            break;
        }
        let mut progressed = false;
        for (site_id, billing_credit_id) in due {
            let mut meta = CommandMeta::new(SWEEP_ACTOR, now);
            meta.command_id = Some(expiry_command_id(site_id, billing_credit_id));
            let command = Command::Expire { reason: Some("endDate passed".into()) };
            match run_command(store, site_id, billing_credit_id, command, meta, None).await {
                Ok(committed) if !committed.replayed => {
                    expired += 1;
                    progressed = true;
                }
                // Another sweeper got there first, or the credit changed since it was listed.
                Ok(_) | Err(StoreError::Domain(DomainError::AlreadyExpired | DomainError::NotFound)) => {
                    progressed = true
                }
                Err(e) => return Err(e),
            }
        }
        if !progressed {
            break;
        }
    }
    store.purge_idempotency_keys(now - Duration::hours(IDEMPOTENCY_KEY_TTL_HOURS)).await?;
    Ok(expired)
}
