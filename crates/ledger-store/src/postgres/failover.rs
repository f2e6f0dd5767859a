//! Following the primary among a multi-host URL's hosts (see `hosts.rs`).
//!
//! At start the hosts are tried in order and the first that is not in recovery is taken;
//! the pool connects there. A watcher then checks that host on its own connection every
//! probe interval (sooner when a request saw the database go away). When the host is
//! gone or in recovery, the store is *down*: every call that needs the database fails at
//! once as `Unavailable` (503 with Retry-After, `/readyz` not ready), and the watcher
//! looks for a primary among all the hosts, once per interval, until it finds one. Then
//! the pool is pointed at it, connections made to the old host are dropped, and the
//! store is up again.
//!
//! Nothing here runs per transaction but one atomic load: the check of a connection is
//! made when it is opened (it must not be in recovery), and the age test at acquire
//! compares two instants.
//!
//! Two primaries at once (split brain) cannot be told apart from here: the operator
//! fences the old primary before promoting a standby.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::Notify;

use super::hosts::Host;
use crate::error::StoreError;

/// How often the watcher checks the primary, and looks for one while there is none.
pub const FAILOVER_PROBE_INTERVAL_MS: u64 = 1_000;
/// Checks a request asked for (it saw the database go away) are at least this far apart.
const WAKE_SPACING_MS: u64 = 50;
const NO_PRIMARY: usize = usize::MAX;

pub(crate) struct Failover {
    hosts: Vec<Host>,
    /// Bounds each connection attempt and each check.
    connect_timeout: Duration,
    probe_interval: Duration,
    /// The host the pool connects to, or NO_PRIMARY while there is none.
    primary: AtomicUsize,
    /// When the pool last moved to a host, in ns after `epoch`: older connections are
    /// the old host's.
    epoch: Instant,
    switched_at_ns: AtomicU64,
    /// The store opened with no primary: it is migrated when one is found.
    migration_pending: AtomicBool,
    wake: Notify,
}

/// Why no host was taken.
pub(crate) struct NoPrimary {
    /// Some host answered, in recovery (a standby): the primary may come.
    pub standby_answered: bool,
    /// A host refused us (a password, a database name): a configuration error.
    pub refused: Option<StoreError>,
    /// One line per host.
    pub causes: Vec<String>,
}

impl NoPrimary {
    pub(crate) fn summary(&self) -> String {
        format!("no PostgreSQL primary among the hosts ({})", self.causes.join("; "))
    }
}

impl Failover {
    pub(crate) fn new(hosts: Vec<Host>, connect_timeout: Duration, probe_interval: Duration) -> Self {
        Self {
            hosts,
            connect_timeout,
            probe_interval,
            primary: AtomicUsize::new(NO_PRIMARY),
            epoch: Instant::now(),
            switched_at_ns: AtomicU64::new(0),
            migration_pending: AtomicBool::new(false),
            wake: Notify::new(),
        }
    }

    /// Fails at once while there is no primary.
    pub(crate) fn available(&self) -> Result<(), StoreError> {
        match self.primary.load(Ordering::Acquire) {
            NO_PRIMARY => Err(StoreError::Unavailable(sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "no PostgreSQL primary: looking for one among the hosts",
            )))),
            _ => Ok(()),
        }
    }

    pub(crate) fn migrates_later(&self) -> bool {
        self.migration_pending.load(Ordering::Acquire)
    }

    /// A call saw the database go away: check the primary now.
    pub(crate) fn noticed(&self) {
        if self.primary.load(Ordering::Acquire) != NO_PRIMARY {
            self.wake.notify_one();
        }
    }

    /// The hosts in order; the first not in recovery is taken, with the connection that
    /// checked it (the watcher's).
    pub(crate) async fn find_primary(&self) -> Result<(usize, PgConnection), NoPrimary> {
        let mut none = NoPrimary { standby_answered: false, refused: None, causes: vec![] };
        for (index, host) in self.hosts.iter().enumerate() {
            let mut conn = match self.connect(host).await {
                Ok(conn) => conn,
                Err(StoreError::Config(message)) => {
                    none.causes.push(format!("{}: {message}", host.label));
                    none.refused.get_or_insert(StoreError::Config(format!("{}: {message}", host.label)));
                    continue;
                }
                Err(e) => {
                    none.causes.push(e.to_string());
                    continue;
                }
            };
            match self.in_recovery(&mut conn).await {
                Ok(false) => return Ok((index, conn)),
                Ok(true) => {
                    none.standby_answered = true;
                    none.causes.push(format!("{}: in recovery (a standby)", host.label));
                }
                Err(cause) => none.causes.push(format!("{}: {cause}", host.label)),
            }
            let _ = conn.close().await;
        }
        Err(none)
    }

    async fn connect(&self, host: &Host) -> Result<PgConnection, StoreError> {
        let unreachable = |cause: String| StoreError::Unreachable(format!("{}: {cause}", host.label));
        match tokio::time::timeout(self.connect_timeout, host.options.connect()).await {
            Err(_) => Err(unreachable(format!("no answer within {} ms", self.connect_timeout.as_millis()))),
            Ok(Err(e)) => Err(super::refused_connection(e, unreachable)),
            Ok(Ok(conn)) => Ok(conn),
        }
    }

    async fn in_recovery(&self, conn: &mut PgConnection) -> Result<bool, String> {
        let check = sqlx::query_scalar("SELECT pg_is_in_recovery()").fetch_one(conn);
        match tokio::time::timeout(self.connect_timeout, check).await {
            Err(_) => Err(format!("no answer within {} ms", self.connect_timeout.as_millis())),
            Ok(result) => result.map_err(|e| e.to_string()),
        }
    }

    /// Points the pool at host `index`; connections made before are dropped when next
    /// acquired (see [`Failover::pool_options`]). The store stays down until `serve`.
    fn point_pool_at(&self, index: usize, pool: &PgPool) {
        pool.set_connect_options(self.hosts[index].options.clone());
        self.switched_at_ns.store(self.epoch.elapsed().as_nanos() as u64, Ordering::Release);
    }

    fn serve(&self, index: usize) {
        self.primary.store(index, Ordering::Release);
    }

    /// Opens the pool on the primary (`Some`), or lazily on the first host while there
    /// is none (the watcher points it at the primary it finds).
    pub(crate) async fn open_pool(
        self: &Arc<Self>,
        options: PgPoolOptions,
        primary: Option<usize>,
    ) -> Result<PgPool, StoreError> {
        let options = self.pool_options(options);
        match primary {
            Some(index) => {
                // Every connection of this pool is made after `epoch`, the first switch.
                let pool =
                    options.connect_with(self.hosts[index].options.clone()).await.map_err(StoreError::from_sqlx)?;
                self.serve(index);
                Ok(pool)
            }
            None => {
                self.migration_pending.store(true, Ordering::Release);
                Ok(options.connect_lazy_with(self.hosts[0].options.clone()))
            }
        }
    }

    /// A new connection must not be in recovery (one check when it opens, never per
    /// transaction: a standby is never written to); one opened before the pool last
    /// moved is the old host's and is dropped.
    fn pool_options(self: &Arc<Self>, options: PgPoolOptions) -> PgPoolOptions {
        let connected = self.clone();
        let acquired = self.clone();
        options
            .after_connect(move |conn, _| {
                let failover = connected.clone();
                Box::pin(async move {
                    match failover.in_recovery(conn).await {
                        Ok(false) => Ok(()),
                        Ok(true) => {
                            failover.noticed();
                            Err(sqlx::Error::Io(std::io::Error::other(
                                "the PostgreSQL host is in recovery (a standby): no connection is made to it",
                            )))
                        }
                        Err(cause) => Err(sqlx::Error::Io(std::io::Error::other(cause))),
                    }
                })
            })
            .before_acquire(move |_, meta| {
                let since_switch = acquired
                    .epoch
                    .elapsed()
                    .saturating_sub(Duration::from_nanos(acquired.switched_at_ns.load(Ordering::Acquire)));
                Box::pin(async move { Ok(meta.age <= since_switch) })
            })
    }

    /// Runs the watcher until the store (`alive`) is gone.
    pub(crate) fn spawn_watcher<T: Send + Sync + 'static>(self: Arc<Self>, pool: PgPool, alive: Weak<T>) {
        tokio::spawn(async move {
            // The watcher's own connection to the primary, made at its first check.
            let mut probe: Option<PgConnection> = None;
            let mut last_check = Instant::now();
            let mut reported = String::new();
            while alive.strong_count() > 0 {
                let spacing = Duration::from_millis(WAKE_SPACING_MS).min(self.probe_interval);
                tokio::select! {
                    _ = tokio::time::sleep_until((last_check + self.probe_interval).into()) => {}
                    _ = async {
                        self.wake.notified().await;
                        tokio::time::sleep_until((last_check + spacing).into()).await;
                    } => {}
                }
                last_check = Instant::now();
                let current = self.primary.load(Ordering::Acquire);
                if current != NO_PRIMARY {
                    match self.still_primary(current, &mut probe).await {
                        Ok(()) => continue,
                        Err(cause) => {
                            self.primary.store(NO_PRIMARY, Ordering::Release);
                            tracing::warn!(host = %self.hosts[current].label, %cause,
                                "the PostgreSQL primary is gone: answering 503 while looking for a new one");
                        }
                    }
                }
                match self.find_primary().await {
                    Ok((index, conn)) => {
                        if let Err(e) = self.take_and_migrate(index, &pool).await {
                            tracing::warn!(host = %self.hosts[index].label, error = %e,
                                "found a primary but could not migrate it; trying again");
                            continue;
                        }
                        probe = Some(conn);
                        reported.clear();
                        tracing::info!(host = %self.hosts[index].label, "PostgreSQL primary found: serving again");
                    }
                    Err(none) => {
                        // Once per change, not once per interval.
                        let summary = none.summary();
                        if summary != reported {
                            tracing::warn!("{summary}");
                            reported = summary;
                        }
                    }
                }
            }
        });
    }

    /// Whether host `current` is still the primary, on the watcher's connection (made
    /// again once if it was lost, e.g. to an idle timeout).
    async fn still_primary(&self, current: usize, probe: &mut Option<PgConnection>) -> Result<(), String> {
        for _ in 0..2 {
            if probe.is_none() {
                match self.connect(&self.hosts[current]).await {
                    Ok(conn) => *probe = Some(conn),
                    Err(e) => return Err(e.to_string()),
                }
            }
            let conn = probe.as_mut().expect("made above");
            match self.in_recovery(conn).await {
                Ok(false) => return Ok(()),
                Ok(true) => return Err("the host is in recovery (a standby)".into()),
                Err(_) => *probe = None,
            }
        }
        Err("the host does not answer".into())
    }

    async fn take_and_migrate(&self, index: usize, pool: &PgPool) -> Result<(), StoreError> {
        self.point_pool_at(index, pool);
        if self.migration_pending.load(Ordering::Acquire) {
            crate::migrate::postgres()
                .run(pool)
                .await
                .map_err(|e| StoreError::Database(sqlx::Error::Migrate(Box::new(e))))?;
            self.migration_pending.store(false, Ordering::Release);
        }
        self.serve(index);
        Ok(())
    }
}
