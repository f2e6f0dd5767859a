//! A read replica: a streaming standby that serves the read endpoints while it is fresh
//! enough, and a client's reads after its own writes once it has them.
//!
//! - A probe samples the primary's WAL position every `probe_interval` and compares the
//!   standby's replay position with the samples (see [`lag`]). The replica serves only
//!   while it holds everything committed before some instant no more than `max_lag`
//!   ago; unreachable, not a standby, or not measured yet, it serves nothing.
//! - A reader that wrote sends the position of the last event its write appended; the
//!   replica serves it only if it has replayed that event (one primary-key lookup). Replay
//!   follows commit order, so it then holds every earlier write of that client too.

mod lag;

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::Row;

use super::{take_connect_timeout, PgDialect};
use crate::error::StoreError;
use crate::ports::{Backend, Health, ReadModels};
use crate::sql::SqlStore;
use lag::{parse_lsn, Freshness, Samples};

/// Default of [`ReplicaSettings::max_lag`].
pub const READ_REPLICA_MAX_LAG_MS: u64 = 1_000;
/// Default of [`ReplicaSettings::probe_interval`].
pub const READ_REPLICA_PROBE_INTERVAL_MS: u64 = 200;
/// One probe query's limit: a server that does not answer by then counts as unreachable.
pub const PROBE_QUERY_TIMEOUT_MS: u64 = 1_000;
/// A read waits this long for a replica connection (the standby is down, or its pool is
/// busy) before the primary answers it instead.
pub const REPLICA_ACQUIRE_TIMEOUT_MS: u64 = 1_000;

/// How a read replica is used.
#[derive(Debug, Clone)]
pub struct ReplicaSettings {
    /// `postgres://…` of the standby.
    pub url: String,
    /// Its read pool's size.
    pub max_connections: u32,
    /// Reads go to the primary when the replica is further behind than this.
    pub max_lag: Duration,
    /// How often the lag is measured; below `max_lag`, or the replica never serves.
    pub probe_interval: Duration,
}

impl ReplicaSettings {
    /// Refuses settings that cannot work: a URL that is not Postgres, a probe that could
    /// never renew the verdict in time.
    pub fn check(&self) -> Result<(), StoreError> {
        if !(self.url.starts_with("postgres://") || self.url.starts_with("postgresql://")) {
            return Err(not_postgres("DATABASE_READ_URL"));
        }
        if self.probe_interval >= self.max_lag {
            return Err(StoreError::Config(format!(
                "the read replica's probe interval ({} ms) must be below its maximum lag ({} ms), or it never serves",
                self.probe_interval.as_millis(),
                self.max_lag.as_millis()
            )));
        }
        Ok(())
    }
}

fn not_postgres(name: &str) -> StoreError {
    StoreError::Config(format!(
        "a read replica needs PostgreSQL: {name} must be a postgres:// URL (SQLite has no replicas)"
    ))
}

/// Where one read goes, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Replica,
    /// Further behind than the bound, unreachable, or not measured yet.
    PrimaryStale,
    /// The replica has not replayed the reader's last write yet.
    PrimaryAhead,
}

impl Route {
    /// The pool that serves it, for the metric.
    pub fn pool(self) -> &'static str {
        match self {
            Route::Replica => "replica",
            Route::PrimaryStale | Route::PrimaryAhead => "primary",
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            Route::Replica => "fresh",
            Route::PrimaryStale => "replica-stale",
            Route::PrimaryAhead => "read-after-not-replayed",
        }
    }
}

/// The standby's read models and the probe that says whether they may be served.
pub struct ReadReplica {
    store: SqlStore<PgDialect>,
    freshness: Arc<Freshness>,
    probe: tokio::task::JoinHandle<()>,
}

impl Drop for ReadReplica {
    fn drop(&mut self) {
        self.probe.abort();
    }
}

impl ReadReplica {
    /// Opens the replica's pools lazily and starts the probe (it needs a Tokio runtime),
    /// which samples the WAL of `primary`, the store the commands go to (so it follows
    /// the primary wherever that store does). A standby that is down at start is not an
    /// error: reads go to the primary until it answers. A primary that is not Postgres,
    /// or settings [`ReplicaSettings::check`] refuses, are.
    pub fn start(primary: Arc<dyn Health>, settings: ReplicaSettings) -> Result<Self, StoreError> {
        settings.check()?;
        if primary.backend() != Backend::Postgres {
            return Err(not_postgres("DATABASE_URL"));
        }
        let reads = lazy_pool(&settings.url, settings.max_connections, REPLICA_ACQUIRE_TIMEOUT_MS)?;
        let probe = Probe {
            primary,
            replica: lazy_pool(&settings.url, 1, PROBE_QUERY_TIMEOUT_MS)?,
            freshness: Arc::new(Freshness::new()),
            samples: Samples::default(),
            settings,
        };
        let freshness = probe.freshness.clone();
        // A replica follows no failover: the dialect as it is for one plain host.
        let store = SqlStore::new(PgDialect::default(), reads.clone(), reads);
        Ok(Self { store, freshness, probe: tokio::spawn(probe.run()) })
    }

    /// Where a read goes: the replica while it is fresh and, for a reader that sends the
    /// position of its last write (`read_after`), once it has replayed that event.
    pub async fn route(&self, read_after: Option<i64>) -> Route {
        if !self.freshness.is_fresh(Instant::now()) {
            return Route::PrimaryStale;
        }
        let Some(position) = read_after else { return Route::Replica };
        let lookup = sqlx::query("SELECT EXISTS (SELECT 1 FROM events WHERE position = $1)")
            .bind(position)
            .fetch_one(self.store.writer());
        match tokio::time::timeout(Duration::from_millis(PROBE_QUERY_TIMEOUT_MS), lookup).await {
            Ok(Ok(row)) if row.try_get::<bool, _>(0).unwrap_or(false) => Route::Replica,
            Ok(Ok(_)) => Route::PrimaryAhead,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the read replica did not answer; this read goes to the primary");
                Route::PrimaryStale
            }
            Err(_) => Route::PrimaryStale,
        }
    }

    /// A read on the replica failed: it serves nothing until the probe finds it fresh again.
    pub fn distrust(&self) {
        self.freshness.unusable();
    }

    /// The replica's read models.
    pub fn reads(&self) -> &dyn ReadModels {
        &self.store
    }

    /// The lag last measured, in milliseconds (None before the first measure).
    pub fn lag_ms(&self) -> Option<u64> {
        self.freshness.lag_ms()
    }
}

/// A pool that connects on first use; waiting for a connection (or making one) ends after
/// `acquire_timeout_ms`, or the URL's `connect_timeout` if it is shorter.
fn lazy_pool(url: &str, max_connections: u32, acquire_timeout_ms: u64) -> Result<PgPool, StoreError> {
    let (url, connect_timeout) = take_connect_timeout(url)?;
    let options = PgConnectOptions::from_str(&url)
        .map_err(|e| StoreError::Config(format!("the PostgreSQL URL cannot be read: {e}")))?;
    let timeout = Duration::from_millis(acquire_timeout_ms);
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .test_before_acquire(false)
        .acquire_timeout(connect_timeout.map_or(timeout, |given| given.min(timeout)))
        .connect_lazy_with(options))
}

/// The background task that measures the replica's lag.
struct Probe {
    primary: Arc<dyn Health>,
    replica: PgPool,
    freshness: Arc<Freshness>,
    samples: Samples,
    settings: ReplicaSettings,
}

impl Probe {
    async fn run(mut self) {
        let mut ticks = tokio::time::interval(self.settings.probe_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut usable = None;
        loop {
            ticks.tick().await;
            let now_usable = self.step().await;
            if usable != Some(now_usable.is_ok()) {
                match &now_usable {
                    Ok(()) => tracing::info!(lag_ms = ?self.freshness.lag_ms(), "the read replica serves reads"),
                    Err(why) => tracing::warn!(%why, "the read replica serves no reads; the primary takes them"),
                }
                usable = Some(now_usable.is_ok());
            }
        }
    }

    /// One measure: a sample of the primary, then the replica's replay position.
    async fn step(&mut self) -> Result<(), String> {
        // Taken before asking: every commit acknowledged before it lies below the answer.
        let asked_at = Instant::now();
        let timeout = Duration::from_millis(PROBE_QUERY_TIMEOUT_MS);
        match tokio::time::timeout(timeout, self.primary.wal_position()).await {
            Ok(Ok(Some(lsn))) => self.samples.push(parse_lsn(&lsn).ok_or(format!("WAL position {lsn:?}"))?, asked_at),
            // No new sample: the verdict in force expires by itself.
            _ => metrics::counter!("ledger_read_replica_probe_failures_total").increment(1),
        }
        let replayed = match query_text(
            &self.replica,
            "SELECT CASE WHEN pg_is_in_recovery() AND to_regclass('events') IS NOT NULL \
             THEN pg_last_wal_replay_lsn()::text END",
        )
        .await
        {
            Ok(Some(lsn)) => parse_lsn(&lsn).ok_or(format!("WAL position {lsn:?}")),
            Ok(None) => Err("it is not a standby of a ledger (not in recovery, or no events table)".to_string()),
            Err(e) => Err(e),
        };
        let replayed = replayed.inspect_err(|_| {
            metrics::counter!("ledger_read_replica_probe_failures_total").increment(1);
            self.freshness.unusable();
        })?;
        let now = Instant::now();
        match self.samples.fresh_as_of(replayed) {
            Some(as_of) => {
                self.freshness.fresh_as_of(as_of, self.settings.max_lag, now);
                metrics::gauge!("ledger_read_replica_lag_seconds").set(now.duration_since(as_of).as_secs_f64());
                match self.freshness.is_fresh(now) {
                    true => Ok(()),
                    false => Err(format!("it is {} ms behind", now.duration_since(as_of).as_millis())),
                }
            }
            None => {
                self.freshness.unusable();
                Err("it has not replayed any position the probe sampled yet".into())
            }
        }
    }
}

/// One text column of one row, within [`PROBE_QUERY_TIMEOUT_MS`].
async fn query_text(pool: &PgPool, sql: &str) -> Result<Option<String>, String> {
    let query = sqlx::query_scalar::<_, Option<String>>(sql).fetch_one(pool);
    match tokio::time::timeout(Duration::from_millis(PROBE_QUERY_TIMEOUT_MS), query).await {
        Ok(Ok(text)) => Ok(text),
        Ok(Err(e)) => Err(format!("it did not answer: {e}")),
        Err(_) => Err(format!("it did not answer within {PROBE_QUERY_TIMEOUT_MS} ms")),
    }
}
