//! Why a store call failed, in classes a caller can act on.

use ledger_domain::{DomainError, Refusal};
use sqlx::error::DatabaseError;
use uuid::Uuid;

use crate::model::UndecodableEvent;

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
    /// Opening the store found no database answering: where it looked and why it failed
    /// (`cannot reach PostgreSQL at 10.0.0.5:5432 (connection refused)`).
    #[error("{0}")]
    Unreachable(String),
    /// The store cannot be opened as configured (URL, missing database or schema).
    #[error("{0}")]
    Config(String),
    /// Stored data could not be read back.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// One stored event could not be read back; it is named, for the operator to repair.
    #[error("stored data is corrupt: {0}")]
    Undecodable(Box<UndecodableEvent>),
    /// The database refused the statement: see [`StoreError::is_transient`] for whether
    /// trying again can help.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
}

impl StoreError {
    pub(crate) fn from_sqlx(err: sqlx::Error) -> Self {
        match &err {
            // The conversation with the server broke (a connection cut mid-handshake reads
            // as a protocol error), not the statement.
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(err),
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

    /// Whether the same call may succeed later, unchanged: the database was unreachable or
    /// busy, or the statement lost a race (serialization failure, deadlock, a lock not
    /// available, resources exhausted). Anything else the database refuses (a constraint,
    /// a trigger, a value it cannot store) fails again however often it is retried, and
    /// is the caller's answer at once.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Unavailable(_) | StoreError::Unreachable(_) | StoreError::ConcurrentWrite => true,
            StoreError::Database(sqlx::Error::Database(db)) => transient_database_error(db.as_ref()),
            _ => false,
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

/// SQLSTATE classes and codes (Postgres) and primary result codes (SQLite) of failures
/// that come from the moment, not from the statement.
fn transient_database_error(db: &(dyn DatabaseError + 'static)) -> bool {
    if let Some(sqlite) = db.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
        // Extended codes carry the primary code in their low byte.
        let primary = sqlite.code().and_then(|c| c.parse::<i32>().ok()).map(|c| c & 0xff);
        // BUSY, LOCKED, NOMEM, IOERR, FULL, CANTOPEN
        return matches!(primary, Some(5 | 6 | 7 | 10 | 13 | 14));
    }
    let Some(code) = db.code() else { return false };
    matches!(
        &code[..code.len().min(2)],
        "08" // connection exception
            | "53" // insufficient resources (disk full, out of memory, too many connections)
            | "58" // system error (I/O) outside Postgres
    ) || matches!(
        code.as_ref(),
        "25006" // read-only transaction: a failover still under way
            | "40001" // serialization failure
            | "40P01" // deadlock detected
            | "55P03" // lock not available
            | "57014" // canceled (statement timeout)
            | "57P01" | "57P02" | "57P03" | "57P04" | "57P05" // shutting down, cannot connect now
    )
}
