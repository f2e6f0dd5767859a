//! Why a store call failed, in classes a caller can act on.

use ledger_domain::{DomainError, Refusal};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The command broke a business rule; nothing was written.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// A business-rule refusal kept for an Idempotency-Key, answered again to its retry.
    #[error("{}", .0.message)]
    Refused(Refusal),
    /// The stream moved on since the caller read it.
    #[error("credit {billing_credit_id} is at version {actual}, not {expected}")]
    VersionConflict { billing_credit_id: Uuid, expected: u64, actual: u64 },
    /// Another transaction created or extended the stream between our read and our
    /// write (only possible for a stream that did not exist yet); retrying is safe.
    #[error("the credit was written concurrently")]
    ConcurrentWrite,
    /// An Idempotency-Key came back with a different request.
    #[error("this Idempotency-Key was used for a different request")]
    IdempotencyKeyReused,
    /// The append itself is malformed (not a business rule): too large, out of order.
    #[error("append rejected: {0}")]
    Rejected(String),
    /// The database cannot be reached now; the caller may retry later.
    #[error("store unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// The store cannot be opened as configured (URL, missing database or schema).
    #[error("{0}")]
    Config(String),
    /// A stored event could not be read back.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
}

impl StoreError {
    pub(crate) fn from_sqlx(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_) => {
                StoreError::Unavailable(err)
            }
            // Connection exceptions (class 08) and an administrator shutting the server
            // down (57P01-57P03): the database is going away, not refusing the query.
            sqlx::Error::Database(db)
                if db.code().is_some_and(|code| code.starts_with("08") || code.starts_with("57P0")) =>
            {
                StoreError::Unavailable(err)
            }
            _ => StoreError::Database(err),
        }
    }

    /// Whether this is part of a command's outcome (kept for its Idempotency-Key), not a fault.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            StoreError::Domain(_)
                | StoreError::Refused(_)
                | StoreError::VersionConflict { .. }
                | StoreError::ConcurrentWrite
        )
    }
}
