//! # The event store
//!
//! One [`EventStore`] trait, two implementations: [`postgres::PgStore`] for production and
//! [`sqlite::SqliteStore`], the embedded zero-setup default. Both pass the same tests.
//!
//! - `events` is append-only (the database itself refuses UPDATE and DELETE).
//! - Unique (stream, version) gives optimistic concurrency; unique event id makes a
//!   retried append harmless.
//! - The `billing_credits` projection is written in the same transaction as the events,
//!   so a read after a write sees it, and it can be rebuilt from `events` at any time.
//! - [`EventStore::execute`] locks the credits it touches, runs the pure `decide` on what
//!   it found, and appends the result, all in one transaction: concurrent commands on one
//!   credit queue on its row lock instead of overspending it.

use std::sync::Arc;

use async_trait::async_trait;
use ledger_domain::{Credit, DomainError, Event};
use uuid::Uuid;

pub mod audit;
pub mod chain;
pub mod commands;
mod group;
pub mod history;
mod migrate;
pub mod model;
pub mod postgres;
mod prepare;
mod query;
pub mod sqlite;
pub mod sweep;
#[cfg(feature = "testing")]
pub mod testing;

pub use model::*;
pub use prepare::EVENTS_PER_APPEND_MAX;

/// The largest number of events one feed or history read returns.
pub const READ_LIMIT_MAX: u32 = 1_000;

/// The largest number of rows one replay/verify scan returns.
pub const SCAN_LIMIT_MAX: u32 = 10_000;

/// Projection rows per multi-row upsert (22 bind parameters each; both databases' limits allow it).
pub const PROJECTION_BATCH_MAX: usize = 500;

/// The decision a command makes once its credits are locked: from the credits as they
/// stand (in the order asked, None where absent), the events to append to each.
/// It may refuse with a business rule ([`StoreError::Domain`]) or a stale version
/// ([`StoreError::VersionConflict`], for If-Match).
/// A pure function of the credits: group commit may run it again if its batch has to
/// be retried command by command.
pub type Decider = Box<dyn Fn(&[Option<Credit>]) -> Result<Vec<(Uuid, Vec<Event>)>, StoreError> + Send + Sync>;

/// An event's place in stream order: (site, credit, version).
pub type StreamPosition = (Uuid, Uuid, u64);

/// An Idempotency-Key and the fingerprint of the request that first used it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub key: String,
    pub request_hash: String,
}

/// A response as first sent, kept for the retries of its Idempotency-Key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
}

/// Renders an outcome as the response to keep, or None to keep nothing.
pub type Responder = Box<dyn FnOnce(&Result<Committed, StoreError>) -> Option<StoredResponse> + Send>;

/// A command to run against the credits it names, atomically.
pub struct Execution {
    pub site_id: Uuid,
    pub billing_credit_ids: Vec<Uuid>,
    pub meta: CommandMeta,
    pub decide: Decider,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The command broke a business rule; nothing was written.
    #[error(transparent)]
    Domain(#[from] DomainError),
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
}

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    fn backend(&self) -> Backend;

    /// Appends events to one or several streams in one transaction, each only if its
    /// stream is still at the expected version, and updates their projections.
    /// If every event id is already stored, writes nothing and returns them (`replayed`).
    async fn append(&self, appends: Vec<StreamAppend>, meta: CommandMeta) -> Result<Committed, StoreError>;

    /// Locks the named credits, decides on them, appends the result: one transaction.
    /// With a `command_id`, a command already applied is not applied again: the events
    /// it wrote then are returned (`replayed`).
    async fn execute(&self, execution: Execution) -> Result<Committed, StoreError>;

    /// The credit as its projection holds it, deleted or not.
    async fn load(&self, site_id: Uuid, billing_credit_id: Uuid) -> Result<Option<Credit>, StoreError>;

    /// Events of one stream with version > `after_version`, oldest first.
    async fn read_stream(
        &self,
        site_id: Uuid,
        billing_credit_id: Uuid,
        after_version: u64,
        limit: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Events committed after `after`, in commit order, never skipping one that commits
    /// late. All sites, or one.
    async fn feed(&self, site_id: Option<Uuid>, after: FeedCursor, limit: u32) -> Result<FeedPage, StoreError>;

    /// One page of a site's live (not deleted) credits.
    async fn list(&self, site_id: Uuid, query: &ListQuery) -> Result<CreditPage, StoreError>;

    /// Like [`execute`](Self::execute), once per idempotency key: the first outcome's
    /// response (rendered by `respond`, in the same transaction as the events) is stored
    /// and returned again for every retry with the same request. `respond` returns None
    /// for outcomes not worth keeping (transient faults), which are returned as errors.
    /// A retry that arrives while the first attempt runs waits for it.
    async fn execute_idempotent(
        &self,
        execution: Execution,
        key: IdempotencyKey,
        respond: Responder,
    ) -> Result<StoredResponse, StoreError>;

    /// Credits whose endDate has passed with a balance left and no CreditExpired yet.
    async fn due_for_expiry(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> Result<Vec<(Uuid, Uuid)>, StoreError>;

    /// Forgets idempotency keys recorded before `before`; returns how many.
    async fn purge_idempotency_keys(&self, before: chrono::DateTime<chrono::Utc>) -> Result<u64, StoreError>;

    /// Ids of the live credits of one membership in a site, oldest first.
    async fn membership_credit_ids(&self, site_id: Uuid, membership_id: Uuid) -> Result<Vec<Uuid>, StoreError>;

    /// Events in stream order (site, credit, version) after `after`, for replay and verify.
    async fn scan_events(
        &self,
        site_id: Option<Uuid>,
        after: Option<StreamPosition>,
        limit: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Projection rows (deleted or not) in (site, credit) order after `after`, with their last hash.
    async fn scan_projections(
        &self,
        site_id: Option<Uuid>,
        after: Option<(Uuid, Uuid)>,
        limit: u32,
    ) -> Result<Vec<(Credit, [u8; 32])>, StoreError>;

    /// Writes rebuilt projection rows, never over a newer version.
    async fn put_projections(&self, rows: Vec<(Credit, [u8; 32])>) -> Result<(), StoreError>;

    /// Rebuilds any derived counters from the projection (after a replay).
    /// Rebuilds every projection row from the events, faster than the paged replay,
    /// where the backend knows how (Postgres: a fresh table swapped in); `None` where
    /// it does not, and the caller replays page by page.
    async fn rebuild_projections(
        &self,
        _limits: audit::ReplayLimits,
        _progress: audit::Progress<'_>,
    ) -> Result<Option<audit::ReplayReport>, StoreError> {
        Ok(None)
    }

    async fn recount(&self, _site_id: Option<Uuid>) -> Result<(), StoreError> {
        Ok(())
    }

    /// Derived counters that disagree with the projection, described.
    async fn count_mismatches(&self, _site_id: Option<Uuid>) -> Result<Vec<String>, StoreError> {
        Ok(vec![])
    }

    /// Whether the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Opens the store a URL names (`postgres://…` or `sqlite://…`) and migrates it.
pub async fn connect(url: &str, max_connections: u32) -> Result<Arc<dyn EventStore>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = postgres::PgStore::connect(url, max_connections).await?;
        store.migrate().await?;
        Ok(Arc::new(store.with_group_commit()))
    } else if url.starts_with("sqlite:") {
        let store = sqlite::SqliteStore::connect(url, max_connections).await?;
        store.migrate().await?;
        Ok(Arc::new(store.with_group_commit()))
    } else {
        Err(StoreError::Rejected(format!("unsupported DATABASE_URL scheme in {url:?}: use postgres:// or sqlite://")))
    }
}

/// Event ids of a command's events: derived from its id, so a retry of the same command
/// produces the same ids and the store keeps them once.
pub fn command_event_id(command_id: Uuid, site_id: Uuid, billing_credit_id: Uuid, index: usize) -> Uuid {
    let mut name = Vec::with_capacity(40);
    name.extend_from_slice(site_id.as_bytes());
    name.extend_from_slice(billing_credit_id.as_bytes());
    name.extend_from_slice(&(index as u64).to_be_bytes());
    Uuid::new_v5(&command_id, &name)
}

/// Turns a decision into appends at the versions the credits were loaded at.
pub(crate) fn decision_to_appends(
    execution_site: Uuid,
    loaded: &[Option<Credit>],
    ids: &[Uuid],
    decided: Vec<(Uuid, Vec<Event>)>,
    command_id: Option<Uuid>,
) -> Vec<StreamAppend> {
    decided
        .into_iter()
        .filter(|(_, events)| !events.is_empty())
        .map(|(credit_id, events)| {
            let expected_version =
                ids.iter().position(|id| *id == credit_id).and_then(|i| loaded[i].as_ref()).map_or(0, |c| c.version);
            let events = events
                .into_iter()
                .enumerate()
                .map(|(i, event)| NewEvent {
                    event_id: command_id
                        .map_or_else(Uuid::new_v4, |cmd| command_event_id(cmd, execution_site, credit_id, i)),
                    event,
                })
                .collect();
            StreamAppend { site_id: execution_site, billing_credit_id: credit_id, expected_version, events }
        })
        .collect()
}

/// A kept response, if the retry is the same request as the first use of its key.
pub(crate) fn stored_response(
    request_hash: String,
    status: u16,
    body: String,
    headers: String,
    key: &IdempotencyKey,
) -> Result<StoredResponse, StoreError> {
    if request_hash != key.request_hash {
        return Err(StoreError::IdempotencyKeyReused);
    }
    let headers = serde_json::from_str(&headers).map_err(|e| StoreError::Corrupt(format!("stored headers: {e}")))?;
    Ok(StoredResponse { status, body, headers })
}

/// A command already applied: its events, and the credits they touched as they stand now.
pub(crate) async fn replayed(store: &dyn EventStore, events: Vec<RecordedEvent>) -> Result<Committed, StoreError> {
    let mut credits: Vec<Credit> = Vec::new();
    for e in &events {
        if !credits.iter().any(|c| c.billing_credit_id == e.billing_credit_id && c.site_id == e.site_id) {
            credits.extend(store.load(e.site_id, e.billing_credit_id).await?);
        }
    }
    Ok(Committed { events, credits, replayed: true })
}
