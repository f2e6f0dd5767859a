//! What truly differs between the databases: how a credit is locked, where the feed may
//! safely be read up to, how instants and amounts are encoded, and the list counters.
//! Everything else is written once, in [`super::SqlStore`].

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ledger_domain::Credit;
use rust_decimal::Decimal;
use sqlx::pool::PoolConnection;
use uuid::Uuid;

use super::db::{Arg, Piece, SqlDb};
use crate::chain::GENESIS;
use crate::error::StoreError;
use crate::model::{CreditFilter, FeedCursor, Progress, RecordedEvent, ReplayLimits, ReplayReport};
use crate::ports::Backend;
use crate::prepare::{LoadedStream, PreparedCredit, PreparedEvent};

pub(crate) type Conn<D> = <<D as Dialect>::Db as sqlx::Database>::Connection;
pub(crate) type DbRow<D> = <<D as Dialect>::Db as sqlx::Database>::Row;

#[async_trait]
pub(crate) trait Dialect: Send + Sync + Sized + 'static {
    type Db: SqlDb;
    const BACKEND: Backend;
    /// Bind parameters one statement may carry.
    const BIND_PARAMS_MAX: usize;
    /// How a write transaction starts.
    const BEGIN_WRITE: &'static str;
    /// The columns `sql::rows::event` reads, as this database spells them.
    const EVENT_COLUMNS: &'static str;
    /// What `INSERT INTO events … RETURNING` gives back for [`Dialect::cursor`].
    const RETURNING_CURSOR: &'static str;
    /// The projection's state as JSON text.
    const STATE_COLUMN: &'static str;
    /// Appended after a bound JSON text.
    const JSON_CAST: &'static str;
    /// Appended after a bound amount.
    const AMOUNT_CAST: &'static str;

    /// Brings the schema up to date.
    async fn migrate(pool: &sqlx::Pool<Self::Db>) -> Result<(), StoreError>;
    /// Starts what a serving store runs beside it; it ends with the store.
    fn started(&self, _store: &super::SqlStore<Self>) {}
    /// Checked before every connection is taken (no round trip): fails while the
    /// database is known to be away (Postgres failover looking for a primary).
    fn available(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// A call failed because the database went away or refused writes for now.
    fn noticed_fault(&self) {}
    /// The store opened without a database to migrate yet: `started` migrates it.
    fn migrates_later(&self) -> bool {
        false
    }

    /// Writes the placeholder of the `n`th bound value (from 1).
    fn push_placeholder(sql: &mut String, n: usize);
    fn time(value: DateTime<Utc>) -> Arg;
    fn opt_time(value: Option<DateTime<Utc>>) -> Arg;
    /// An amount for the sortable projection columns (followed by AMOUNT_CAST).
    fn amount(value: Decimal) -> Arg;
    fn read_time(row: &DbRow<Self>, column: &str) -> Result<DateTime<Utc>, StoreError>;
    fn read_opt_time(row: &DbRow<Self>, column: &str) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// Where a feed reader resumes after the event in `row`.
    fn cursor(row: &DbRow<Self>) -> Result<FeedCursor, StoreError>;

    /// A condition true for rows whose (`a`, `b`) is one of `pairs`.
    fn pairs(columns: (&str, &str), pairs: &[(Uuid, Uuid)]) -> Vec<Piece>;
    /// The feed's condition (after `after`, and only what can no longer be
    /// overtaken by a transaction committing late) and its order.
    fn feed_after(after: FeedCursor) -> Vec<Piece>;

    /// Whether one write connection serves the whole store (SQLite): whatever can be read
    /// before a write transaction should be, since every command waits while it is open.
    const SINGLE_WRITER: bool;
    /// Ends a claim's subquery: Postgres skips rows another claim has locked.
    const SKIP_LOCKED: &'static str;
    /// `days_sql` days, to add to a bound instant (`instant + {plus_days}`).
    fn days(days_sql: &str) -> String;
    /// Serializes alerter steps (all replicas) until the transaction ends.
    async fn lock_alerter(conn: &mut Conn<Self>) -> Result<(), StoreError>;
    /// A cursor after every event committed so far: where a new feed reader starts when
    /// it must not see history.
    async fn feed_end(conn: &mut Conn<Self>) -> Result<FeedCursor, StoreError>;

    /// Where the write-ahead log ends now, as the database writes it, for a read
    /// replica's lag probe; None where there are no replicas.
    async fn wal_position(_conn: &mut Conn<Self>) -> Result<Option<String>, StoreError> {
        Ok(None)
    }

    /// How a write transaction over the credits `keys` (site, credit) starts: with
    /// [`Dialect::lock`]'s locks taken in the same trip where the database allows it.
    fn begin_locking(_keys: &[(Uuid, Uuid)]) -> Cow<'static, str> {
        Self::BEGIN_WRITE.into()
    }
    /// Serializes writers of the credits `keys` (site, credit) until the transaction
    /// ends, in an order that cannot deadlock. A database with one writer at a time
    /// needs no lock.
    async fn lock(conn: &mut Conn<Self>, keys: &[(Uuid, Uuid)]) -> Result<(), StoreError>;
    /// A command's first trip once its credits are locked: reads their rows and which of
    /// `commands` (site, command id) are stored already.
    async fn load(
        conn: &mut Conn<Self>,
        keys: &[(Uuid, Uuid)],
        commands: &[(Uuid, Uuid)],
    ) -> Result<Locked, StoreError>;
    /// A command's second trip: inserts the events, writes the projection rows they
    /// change (`changed` pairs each new row with the credit as it was loaded) and any
    /// derived counters; returns the events with their feed cursors.
    async fn write(
        conn: &mut Conn<Self>,
        events: Vec<PreparedEvent>,
        changed: &[(Option<&Credit>, &PreparedCredit)],
    ) -> Result<Vec<RecordedEvent>, WriteError>;
    /// Serializes the requests of one Idempotency-Key until the transaction ends.
    async fn lock_key(conn: &mut Conn<Self>, site_id: Uuid, key: &str) -> Result<(), StoreError>;
    /// Sorts out a failed write: a duplicate event id or stream version, or a fault.
    fn write_error(err: sqlx::Error) -> WriteError;

    /// A list's total from derived counters, when they can answer it.
    async fn counted_total(
        _conn: &mut Conn<Self>,
        _site_id: Uuid,
        _filter: &CreditFilter,
    ) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }
    async fn recount(_conn: &mut Conn<Self>, _site_id: Option<Uuid>) -> Result<(), StoreError> {
        Ok(())
    }
    async fn count_mismatches(_conn: &mut Conn<Self>, _site_id: Option<Uuid>) -> Result<Vec<String>, StoreError> {
        Ok(vec![])
    }
    /// Rebuilds every projection row faster than the paged replay, where it knows how.
    async fn rebuild(
        &self,
        _pool: &sqlx::Pool<Self::Db>,
        _limits: ReplayLimits,
        _progress: Progress<'_>,
    ) -> Result<Option<ReplayReport>, StoreError> {
        Ok(None)
    }
}

/// What a command's first trip found, under its credits' locks.
#[derive(Default)]
pub(crate) struct Locked {
    /// The rows found, by (site, credit): the credit and its last hash.
    pub rows: HashMap<(Uuid, Uuid), (Credit, [u8; 32])>,
    /// The (site, command id) pairs asked about that are stored already.
    pub applied: HashSet<(Uuid, Uuid)>,
}

impl Locked {
    /// The streams of `keys`, in that order; a credit with no row starts from genesis.
    pub fn streams(&mut self, keys: &[(Uuid, Uuid)]) -> Vec<LoadedStream> {
        keys.iter()
            .map(|&(site_id, billing_credit_id)| match self.rows.remove(&(site_id, billing_credit_id)) {
                Some((state, last_hash)) => LoadedStream { site_id, billing_credit_id, state: Some(state), last_hash },
                None => LoadedStream { site_id, billing_credit_id, state: None, last_hash: GENESIS },
            })
            .collect()
    }
}

/// Why an insert into `events` failed.
pub(crate) enum WriteError {
    /// An event with this id is stored already (a retried append or command).
    DuplicateEvent,
    /// Someone created or extended the stream between our read and our write.
    VersionTaken,
    Other(StoreError),
}

impl From<WriteError> for StoreError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::DuplicateEvent => StoreError::Rejected(DUPLICATE_EVENT.into()),
            WriteError::VersionTaken => StoreError::ConcurrentWrite,
            WriteError::Other(e) => e,
        }
    }
}

pub(crate) const DUPLICATE_EVENT: &str = "an event with this id is already stored";

/// A pooled connection of a dialect's database.
pub(crate) type Pooled<D> = PoolConnection<<D as Dialect>::Db>;
