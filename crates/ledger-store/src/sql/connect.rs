//! Opening a store from a URL: `postgres://…` or `sqlite://…`.

use std::sync::Arc;
use std::time::Duration;

use super::build::Sql;
use super::dialect::Dialect;
use super::store::SqlStore;
use crate::error::StoreError;
use crate::ports::EventStore;
use crate::{postgres, sqlite};

/// What the opener means to do with the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Serve commands: create the database if it is an absent SQLite file, migrate it,
    /// and batch concurrent commands (group commit).
    Serve,
    /// Work on a ledger that must already exist (replay, verify, export): never create
    /// or migrate anything, so it runs under a role that may only read, and a mistyped
    /// path or name fails instead of auditing an empty database.
    Existing,
}

/// How a store is opened, beside its URL.
#[derive(Debug, Clone, Copy)]
pub struct ConnectSettings {
    /// Pool size (Postgres), reader pool size (SQLite).
    pub max_connections: u32,
    /// With a multi-host Postgres URL: how often the primary is checked, and looked for
    /// while there is none.
    pub failover_probe_interval: Duration,
}

impl ConnectSettings {
    pub fn new(max_connections: u32) -> Self {
        Self { max_connections, failover_probe_interval: Duration::from_millis(postgres::FAILOVER_PROBE_INTERVAL_MS) }
    }
}

/// Opens the store a URL names, migrated and with group commit, to serve commands.
pub async fn connect(url: &str, max_connections: u32) -> Result<Arc<dyn EventStore>, StoreError> {
    connect_with(url, &ConnectSettings::new(max_connections)).await
}

/// [`connect`] with every setting.
pub async fn connect_with(url: &str, settings: &ConnectSettings) -> Result<Arc<dyn EventStore>, StoreError> {
    open_with(url, settings, Access::Serve).await
}

/// Opens the store a URL names for `access`.
pub async fn open(url: &str, max_connections: u32, access: Access) -> Result<Arc<dyn EventStore>, StoreError> {
    open_with(url, &ConnectSettings::new(max_connections), access).await
}

/// [`open`] with every setting.
pub async fn open_with(
    url: &str,
    settings: &ConnectSettings,
    access: Access,
) -> Result<Arc<dyn EventStore>, StoreError> {
    let create = access == Access::Serve;
    let max_connections = settings.max_connections;
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        // Only a serving store waits for a primary: a tool on an existing ledger fails.
        let store = postgres::open(url, settings, access == Access::Serve).await?;
        finish(store, access, postgres::GROUP_WRITERS).await
    } else if url.starts_with("sqlite:") {
        let store = sqlite::open(url, max_connections, create).await?;
        finish(store, access, sqlite::GROUP_WRITERS).await
    } else {
        // Only the scheme is shown: the rest of a URL may hold a password.
        let given = match url.split_once("://") {
            Some((scheme, _)) => format!("the scheme {scheme:?}"),
            None => "a URL without a scheme".into(),
        };
        Err(StoreError::Config(format!(
            "unsupported database URL ({given}): the supported schemes are postgres://, postgresql:// and sqlite://"
        )))
    }
}

async fn finish<D: Dialect>(
    store: SqlStore<D>,
    access: Access,
    group_writers: usize,
) -> Result<Arc<dyn EventStore>, StoreError> {
    match access {
        Access::Serve => {
            if !store.dialect.migrates_later() {
                D::migrate(store.writer()).await?;
            }
            let store = store.with_group_commit(group_writers);
            store.dialect.started(&store);
            Ok(Arc::new(store))
        }
        Access::Existing => {
            require_schema(&store).await?;
            Ok(Arc::new(store))
        }
    }
}

/// Fails unless the ledger's tables are there.
async fn require_schema<D: Dialect>(store: &SqlStore<D>) -> Result<(), StoreError> {
    let mut conn = store.read_conn().await?;
    let probe = Sql::<D>::new("SELECT event_id FROM events WHERE false").fetch_optional(&mut conn).await;
    probe.map(|_| ()).map_err(|e| match StoreError::from_sqlx(e) {
        StoreError::Database(e) => StoreError::Config(format!(
            "this database holds no ledger (run `billing-credit-ledger migrate` first): {e}"
        )),
        other => other,
    })
}
