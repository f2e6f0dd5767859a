//! Idempotency keys: the first outcome of a keyed command is kept, in the same
//! transaction as its events, and is the outcome of every retry of the same request.
//!
//! What is kept is the outcome in the store's own terms, not a rendered response: a
//! refusal as data, or which credits a commit left at which versions. A retry gets the
//! command's events back (found by its command id) and those credits as they stood right
//! after it, so whoever renders the first answer renders the retry's identically.

use chrono::Utc;
use ledger_domain::Refusal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::build::Sql;
use super::commands::Locks;
use super::db::SqlDb;
use super::dialect::Dialect;
use super::store::SqlStore;
use crate::error::StoreError;
use crate::history;
use crate::model::Committed;
use crate::ports::{Execution, IdempotencyKey, Keyed};

/// A first outcome, as kept.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
enum Kept {
    /// The credits the command returned, in order, at the versions it left them.
    #[serde(rename_all = "camelCase")]
    Committed {
        command_id: Option<Uuid>,
        credits: Vec<(Uuid, u64)>,
    },
    Refused {
        refusal: Refusal,
    },
    #[serde(rename_all = "camelCase")]
    VersionConflict {
        billing_credit_id: Uuid,
        expected: u64,
        actual: u64,
    },
    ConcurrentWrite,
}

impl Kept {
    fn of(outcome: &Result<Committed, StoreError>, command_id: Option<Uuid>) -> Option<Kept> {
        Some(match outcome {
            Ok(committed) => Kept::Committed {
                command_id,
                credits: committed.credits.iter().map(|c| (c.billing_credit_id, c.version)).collect(),
            },
            Err(StoreError::Domain(e)) => Kept::Refused { refusal: e.into() },
            Err(StoreError::Refused(refusal)) => Kept::Refused { refusal: refusal.clone() },
            Err(StoreError::VersionConflict { billing_credit_id, expected, actual }) => {
                Kept::VersionConflict { billing_credit_id: *billing_credit_id, expected: *expected, actual: *actual }
            }
            Err(StoreError::ConcurrentWrite) => Kept::ConcurrentWrite,
            Err(_) => return None,
        })
    }
}

impl<D: Dialect> SqlStore<D> {
    pub(super) async fn execute_keyed(&self, execution: Execution, key: IdempotencyKey) -> Result<Keyed, StoreError> {
        let site_id = execution.site_id;
        let command_id = execution.meta.command_id;
        let mut tx = self.begin().await?;
        // Retries of one key queue here until the first attempt commits or rolls back.
        D::lock_key(&mut tx, site_id, &key.key).await?;
        let mut q = Sql::<D>::new("SELECT request_hash, outcome FROM idempotency_keys WHERE site_id = ");
        q.uuid(site_id).push(" AND key = ").text(key.key.clone());
        if let Some(row) = q.fetch_optional(&mut tx).await.map_err(StoreError::from_sqlx)? {
            drop(tx);
            if D::Db::text(&row, "request_hash")? != key.request_hash {
                return Err(StoreError::IdempotencyKeyReused);
            }
            let kept: Kept = serde_json::from_str(&D::Db::text(&row, "outcome")?)
                .map_err(|e| StoreError::Corrupt(format!("kept outcome of key {:?}: {e}", key.key)))?;
            return Ok(Keyed { outcome: self.reenact(site_id, kept).await?, replayed: true });
        }
        let outcome = self.execute_in(&mut tx, execution, Locks::ToTake).await;
        if matches!(&outcome, Ok(c) if c.replayed) {
            // Applied before under this command id, its key since forgotten: nothing to write.
            return Ok(Keyed { outcome, replayed: true });
        }
        let Some(kept) = Kept::of(&outcome, command_id) else {
            // A fault is no outcome: nothing is kept, and a retry of the key runs the command again.
            return outcome.map(|committed| Keyed { outcome: Ok(committed), replayed: false });
        };
        let mut q = Sql::<D>::new("INSERT INTO idempotency_keys (site_id, key, request_hash, outcome, created_at)");
        q.values([()], |v, ()| {
            v.uuid(site_id)
                .text(key.key.clone())
                .text(key.request_hash.clone())
                .text(serde_json::to_string(&kept).expect("outcomes serialize"))
                .time(Utc::now());
        });
        q.execute(&mut tx).await.map_err(StoreError::from_sqlx)?;
        tx.commit().await.map_err(StoreError::from_sqlx)?;
        Ok(Keyed { outcome, replayed: false })
    }

    /// The outcome a kept record stands for, read back from the events.
    async fn reenact(&self, site_id: Uuid, kept: Kept) -> Result<Result<Committed, StoreError>, StoreError> {
        Ok(match kept {
            Kept::Committed { command_id, credits: versions } => {
                let events = match command_id {
                    Some(command_id) => {
                        Self::events_of_command(&mut *self.read_conn().await?, site_id, command_id).await?
                    }
                    None => vec![],
                };
                let mut credits = Vec::with_capacity(versions.len());
                for (billing_credit_id, version) in versions {
                    let stream = history::read_all(self, site_id, billing_credit_id).await?;
                    let credit = history::fold(stream.iter().take_while(|e| e.version <= version))
                        .ok_or_else(|| StoreError::Corrupt(format!("credit {billing_credit_id} has no events")))?;
                    credits.push(credit);
                }
                Ok(Committed { events, credits, replayed: true })
            }
            Kept::Refused { refusal } => Err(StoreError::Refused(refusal)),
            Kept::VersionConflict { billing_credit_id, expected, actual } => {
                Err(StoreError::VersionConflict { billing_credit_id, expected, actual })
            }
            Kept::ConcurrentWrite => Err(StoreError::ConcurrentWrite),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_not_kept_refusals_are() {
        let fault = Err(StoreError::Corrupt("x".into()));
        assert!(Kept::of(&fault, None).is_none());
        let refusal = Err(StoreError::Domain(ledger_domain::DomainError::Inactive));
        let kept = Kept::of(&refusal, None).expect("a refusal is kept");
        let text = serde_json::to_string(&kept).unwrap();
        let back: Kept = serde_json::from_str(&text).unwrap();
        assert!(matches!(back, Kept::Refused { refusal } if refusal.rule == "credit-inactive"));
    }
}
