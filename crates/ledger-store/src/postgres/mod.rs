//! The production store on PostgreSQL: what differs from SQLite.
//!
//! - A command takes four round trips (`commands.rs`). Credits are locked with advisory
//!   locks, and the feed is read only below the oldest transaction still running
//!   (events carry the id of the transaction that wrote them).
//! - Instants are `timestamptz`, amounts `NUMERIC`, JSON `json`.
//! - List totals come from per-site live counters kept in the write transaction.
//! - A full replay rebuilds the projection beside the live table and swaps it in.
//! - A streaming standby may serve the read endpoints ([`replica`]).

mod commands;
mod counts;
mod failover;
mod hosts;
mod rebuild;
pub mod replica;

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ledger_domain::Credit;
use rust_decimal::Decimal;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow, Postgres};
use sqlx::{ConnectOptions, Connection, Row};
use uuid::Uuid;

use crate::error::StoreError;
use crate::model::{CreditFilter, FeedCursor, Progress, RecordedEvent, ReplayLimits, ReplayReport};
use crate::ports::Backend;
use crate::prepare::{PreparedCredit, PreparedEvent};
use crate::sql::{Arg, ConnectSettings, Dialect, Locked, Piece, SqlStore, WriteError};
use failover::Failover;
pub use failover::FAILOVER_PROBE_INTERVAL_MS;
use hosts::Target;

/// How long a request waits for a pooled connection before the store counts as unavailable.
pub const ACQUIRE_TIMEOUT_MS: u64 = 5_000;
/// Group writers working at once: one fills its group while another commits.
pub(crate) const GROUP_WRITERS: usize = 2;

#[derive(Default)]
pub(crate) struct PgDialect {
    /// Set when the URL names several hosts (or target_session_attrs): the primary
    /// among them is followed.
    failover: Option<Arc<Failover>>,
}

/// Opens a pool on the database `url` names; reads and writes share it.
///
/// One connection is made first, on its own: a pool retries until its acquire timeout
/// and then only says it timed out, where an operator needs the host, the port and the
/// cause. libpq's `connect_timeout` (seconds) bounds it; the default is ACQUIRE_TIMEOUT_MS.
///
/// With several hosts, the first not in recovery is taken. If none is, but some host
/// answered as a standby, `wait_for_primary` opens the store down (503 until a primary
/// appears, see `failover.rs`); otherwise that is an error, as an unreachable host is.
pub(crate) async fn open(
    url: &str,
    settings: &ConnectSettings,
    wait_for_primary: bool,
) -> Result<SqlStore<PgDialect>, StoreError> {
    let (url, connect_timeout) = take_connect_timeout(url)?;
    let timeout = connect_timeout.unwrap_or(Duration::from_millis(ACQUIRE_TIMEOUT_MS));
    // No ping before each acquire: it is a round trip per transaction, and a connection
    // that died idle fails its statement as `Unavailable` (503, retried) and is dropped.
    let pool_options = PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .test_before_acquire(false)
        .acquire_timeout(timeout.max(Duration::from_millis(ACQUIRE_TIMEOUT_MS)));
    let hosts = match hosts::parse(&url)? {
        Target::Single(url) => return open_single(&url, timeout, pool_options).await,
        Target::Primary(hosts) => hosts,
    };
    let failover = Arc::new(Failover::new(hosts, timeout, settings.failover_probe_interval));
    let primary = match failover.find_primary().await {
        Ok((index, conn)) => {
            let _ = conn.close().await;
            Some(index)
        }
        Err(none) => match none.refused {
            Some(refused) => return Err(refused),
            None if none.standby_answered && wait_for_primary => {
                tracing::warn!("{}: serving 503 until one appears", none.summary());
                None
            }
            None => return Err(StoreError::Unreachable(none.summary())),
        },
    };
    let pool = failover.open_pool(pool_options, primary).await?;
    Ok(SqlStore::new(PgDialect { failover: Some(failover) }, pool.clone(), pool))
}

/// One host, as sqlx reads its URL.
async fn open_single(
    url: &str,
    timeout: Duration,
    pool_options: PgPoolOptions,
) -> Result<SqlStore<PgDialect>, StoreError> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::Config(format!("the PostgreSQL URL cannot be read: {e}")))?;
    let unreachable = |cause: String| {
        let place = match options.get_socket() {
            Some(socket) => format!("{}", socket.display()),
            None => format!("{}:{}", options.get_host(), options.get_port()),
        };
        StoreError::Unreachable(format!("cannot reach PostgreSQL at {place} ({cause})"))
    };
    match tokio::time::timeout(timeout, options.connect()).await {
        Err(_) => return Err(unreachable(format!("no answer within {} ms", timeout.as_millis()))),
        Ok(Err(e)) => return Err(refused_connection(e, unreachable)),
        Ok(Ok(probe)) => {
            let _ = probe.close().await;
        }
    }
    let pool = pool_options.connect_with(options).await.map_err(StoreError::from_sqlx)?;
    Ok(SqlStore::new(PgDialect { failover: None }, pool.clone(), pool))
}

/// Why the first connection failed, in an operator's words: the network (unreachable,
/// with the cause), or the server refusing us (a wrong password, an unknown database,
/// a TLS setting), which it says itself.
fn refused_connection(e: sqlx::Error, unreachable: impl Fn(String) -> StoreError) -> StoreError {
    match e {
        sqlx::Error::Io(io) => unreachable(match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
            std::io::ErrorKind::TimedOut => "timed out".into(),
            _ => io.to_string(),
        }),
        sqlx::Error::Tls(tls) => unreachable(format!("TLS: {tls}")),
        // Starting up, shutting down, out of connection slots: it may take us later.
        sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("57P0") || c.starts_with("53")) => {
            unreachable(db.message().to_string())
        }
        sqlx::Error::Database(db) => StoreError::Config(format!("PostgreSQL refused the connection: {}", db.message())),
        sqlx::Error::Configuration(e) => StoreError::Config(format!("the PostgreSQL URL cannot be used: {e}")),
        other => unreachable(other.to_string()),
    }
}

/// The URL without libpq's `connect_timeout` parameter (sqlx does not know it), and its
/// value.
fn take_connect_timeout(url: &str) -> Result<(String, Option<Duration>), StoreError> {
    let Some((base, query)) = url.split_once('?') else { return Ok((url.to_string(), None)) };
    let mut timeout = None;
    let mut kept = vec![];
    for pair in query.split('&') {
        match pair.strip_prefix("connect_timeout=") {
            Some(seconds) => {
                let seconds: u64 = seconds.parse().map_err(|_| {
                    StoreError::Config(format!("connect_timeout={seconds:?} is not a number of seconds"))
                })?;
                // Zero is libpq's "no limit"; here it keeps the default.
                timeout = (seconds > 0).then(|| Duration::from_secs(seconds));
            }
            None => kept.push(pair),
        }
    }
    Ok(match kept.is_empty() {
        true => (base.to_string(), timeout),
        false => (format!("{base}?{}", kept.join("&")), timeout),
    })
}

#[async_trait]
impl Dialect for PgDialect {
    type Db = Postgres;
    const BACKEND: Backend = Backend::Postgres;
    const BIND_PARAMS_MAX: usize = 65_535;
    const BEGIN_WRITE: &'static str = "BEGIN";
    const EVENT_COLUMNS: &'static str = "position, txid::text AS txid, event_id, site_id, billing_credit_id, \
         version, event_type, schema_version, payload::text AS payload, actor, command_id, correlation_id, \
         causation_id, occurred_at, recorded_at, hash";
    const RETURNING_CURSOR: &'static str = "event_id, position, txid::text AS txid";
    const STATE_COLUMN: &'static str = "state::text AS state";
    const JSON_CAST: &'static str = "::json";
    const AMOUNT_CAST: &'static str = "::numeric";

    async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
        crate::migrate::postgres().run(pool).await.map_err(|e| StoreError::Database(sqlx::Error::Migrate(Box::new(e))))
    }

    /// The failover watcher, which ends with the store.
    fn started(&self, store: &SqlStore<Self>) {
        if let (Some(failover), Some(alive)) = (&self.failover, store.group_alive()) {
            failover.clone().spawn_watcher(store.writer().clone(), alive);
        }
    }

    fn available(&self) -> Result<(), StoreError> {
        self.failover.as_ref().map_or(Ok(()), |f| f.available())
    }

    fn noticed_fault(&self) {
        if let Some(failover) = &self.failover {
            failover.noticed();
        }
    }

    fn migrates_later(&self) -> bool {
        self.failover.as_ref().is_some_and(|f| f.migrates_later())
    }

    fn push_placeholder(sql: &mut String, n: usize) {
        sql.push('$');
        sql.push_str(&n.to_string());
    }
    fn time(value: DateTime<Utc>) -> Arg {
        Arg::Time(value)
    }
    fn opt_time(value: Option<DateTime<Utc>>) -> Arg {
        Arg::OptTime(value)
    }
    fn amount(value: Decimal) -> Arg {
        Arg::Text(value.to_string())
    }
    fn read_time(row: &PgRow, column: &str) -> Result<DateTime<Utc>, StoreError> {
        row.try_get(column).map_err(|e| StoreError::Corrupt(format!("column {column}: {e}")))
    }
    fn read_opt_time(row: &PgRow, column: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        row.try_get(column).map_err(|e| StoreError::Corrupt(format!("column {column}: {e}")))
    }
    fn cursor(row: &PgRow) -> Result<FeedCursor, StoreError> {
        let txid: &str = row.try_get("txid").map_err(|e| StoreError::Corrupt(format!("txid: {e}")))?;
        let txid = txid.parse().map_err(|_| StoreError::Corrupt(format!("txid {txid:?}")))?;
        let position = row.try_get("position").map_err(|e| StoreError::Corrupt(format!("position: {e}")))?;
        Ok(FeedCursor { txid, position })
    }

    /// Two arrays unnested side by side (sent as array literals, cast here).
    fn pairs((a, b): (&str, &str), pairs: &[(Uuid, Uuid)]) -> Vec<Piece> {
        let (firsts, seconds): (Vec<Uuid>, Vec<Uuid>) = pairs.iter().copied().unzip();
        vec![
            Piece::Sql(format!("({a}, {b}) IN (SELECT * FROM unnest(")),
            Piece::Arg(Arg::Text(uuid_array(&firsts))),
            Piece::Sql("::uuid[], ".into()),
            Piece::Arg(Arg::Text(uuid_array(&seconds))),
            Piece::Sql("::uuid[]))".into()),
        ]
    }

    /// Only transactions older than the oldest still running are complete: reading
    /// below that horizon never skips an event whose transaction commits late.
    fn feed_after(after: FeedCursor) -> Vec<Piece> {
        vec![
            Piece::Sql("(txid, position) > (".into()),
            Piece::Arg(Arg::Text(after.txid.to_string())),
            Piece::Sql("::text::xid8, ".into()),
            Piece::Arg(Arg::I64(after.position)),
            Piece::Sql(") AND txid < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY txid, position".into()),
        ]
    }

    fn begin_locking(keys: &[(Uuid, Uuid)]) -> Cow<'static, str> {
        commands::begin_locking(keys).into()
    }

    async fn lock(conn: &mut PgConnection, keys: &[(Uuid, Uuid)]) -> Result<(), StoreError> {
        commands::lock(conn, keys).await
    }

    async fn load(
        conn: &mut PgConnection,
        keys: &[(Uuid, Uuid)],
        commands: &[(Uuid, Uuid)],
    ) -> Result<Locked, StoreError> {
        commands::load(conn, keys, commands).await
    }

    async fn write(
        conn: &mut PgConnection,
        events: Vec<PreparedEvent>,
        changed: &[(Option<&Credit>, &PreparedCredit)],
    ) -> Result<Vec<RecordedEvent>, WriteError> {
        commands::write(conn, events, changed).await
    }

    const SINGLE_WRITER: bool = false;
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";

    fn days(days_sql: &str) -> String {
        format!("({days_sql}) * interval '1 day'")
    }

    async fn lock_alerter(conn: &mut PgConnection) -> Result<(), StoreError> {
        // Advisory, like the credit locks: it assigns no transaction id, so the step's
        // own transaction does not hold the feed horizon back while it reads.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('ledger-alerter', 0))")
            .execute(conn)
            .await
            .map_err(StoreError::from_sqlx)?;
        Ok(())
    }

    /// Every transaction below the oldest one running has ended: a cursor just below
    /// it is past all of them and before every event still to commit.
    async fn feed_end(conn: &mut PgConnection) -> Result<FeedCursor, StoreError> {
        let xmin: String = sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
            .fetch_one(conn)
            .await
            .map_err(StoreError::from_sqlx)?;
        let xmin: u64 = xmin.parse().map_err(|_| StoreError::Corrupt(format!("snapshot xmin {xmin:?}")))?;
        Ok(FeedCursor { txid: xmin.saturating_sub(1), position: i64::MAX })
    }

    /// The insert position, not the write position: with synchronous_commit off a commit
    /// is acknowledged before it is written, but never before it is inserted.
    async fn wal_position(conn: &mut PgConnection) -> Result<Option<String>, StoreError> {
        let lsn = sqlx::query_scalar("SELECT pg_current_wal_insert_lsn()::text").fetch_one(conn).await;
        lsn.map(Some).map_err(StoreError::from_sqlx)
    }

    async fn lock_key(conn: &mut PgConnection, site_id: Uuid, key: &str) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(format!("idempotency/{site_id}/{key}"))
            .execute(conn)
            .await
            .map_err(StoreError::from_sqlx)?;
        Ok(())
    }

    fn write_error(err: sqlx::Error) -> WriteError {
        if let sqlx::Error::Database(db) = &err {
            match db.constraint() {
                Some("events_event_id_key") => return WriteError::DuplicateEvent,
                Some("events_site_id_billing_credit_id_version_key") => return WriteError::VersionTaken,
                _ => {}
            }
        }
        WriteError::Other(StoreError::from_sqlx(err))
    }

    async fn counted_total(
        conn: &mut PgConnection,
        site_id: Uuid,
        filter: &CreditFilter,
    ) -> Result<Option<u64>, StoreError> {
        counts::total_from_counts(conn, site_id, filter).await
    }

    async fn recount(conn: &mut PgConnection, site_id: Option<Uuid>) -> Result<(), StoreError> {
        counts::recount(conn, site_id).await
    }

    async fn count_mismatches(conn: &mut PgConnection, site_id: Option<Uuid>) -> Result<Vec<String>, StoreError> {
        counts::mismatches(conn, site_id).await
    }

    async fn rebuild(
        &self,
        pool: &PgPool,
        limits: ReplayLimits,
        progress: Progress<'_>,
    ) -> Result<Option<ReplayReport>, StoreError> {
        rebuild::Rebuild { pool: pool.clone() }.rebuild_all(limits.credits_in_memory_max, progress).await.map(Some)
    }
}

/// A Postgres array literal of uuids: `{a,b,…}`.
fn uuid_array(ids: &[Uuid]) -> String {
    let mut text = String::with_capacity(2 + ids.len() * 37);
    text.push('{');
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&id.to_string());
    }
    text.push('}');
    text
}
