//! [`SqlStore`]: the pools and the group commit of a store on one SQL database.

use std::sync::Arc;
use uuid::Uuid;

use super::dialect::{self, Dialect};
use crate::error::StoreError;
use crate::group::GroupCommit;

/// A store on one SQL database.
pub(crate) struct SqlStore<D: Dialect> {
    pub(super) dialect: Arc<D>,
    /// Where transactions that write run (SQLite: its one write connection).
    pub(super) writer: sqlx::Pool<D::Db>,
    /// Where reads run (Postgres: the same pool).
    readers: sqlx::Pool<D::Db>,
    /// Set once started: `execute` then goes through group commit.
    pub(super) group: Option<Arc<GroupCommit>>,
}

impl<D: Dialect> Clone for SqlStore<D> {
    fn clone(&self) -> Self {
        Self {
            dialect: self.dialect.clone(),
            writer: self.writer.clone(),
            readers: self.readers.clone(),
            group: self.group.clone(),
        }
    }
}

impl<D: Dialect> SqlStore<D> {
    pub(crate) fn new(dialect: D, writer: sqlx::Pool<D::Db>, readers: sqlx::Pool<D::Db>) -> Self {
        Self { dialect: Arc::new(dialect), writer, readers, group: None }
    }

    /// Routes `execute` through group commit (see [`crate::group`]) with `writers`
    /// group writers: concurrent commands share transactions. Needs a Tokio runtime.
    pub(crate) fn with_group_commit(mut self, writers: usize) -> Self {
        self.group = Some(Arc::new(GroupCommit::start(self.clone(), writers)));
        self
    }

    /// A weak handle on the group commit, for background tasks that end with the store.
    pub(crate) fn group_alive(&self) -> Option<std::sync::Weak<GroupCommit>> {
        self.group.as_ref().map(Arc::downgrade)
    }

    pub(crate) fn writer(&self) -> &sqlx::Pool<D::Db> {
        &self.writer
    }

    pub(super) async fn read_conn(&self) -> Result<dialect::Pooled<D>, StoreError> {
        self.dialect.available()?;
        self.readers.acquire().await.map_err(|e| self.fault(StoreError::from_sqlx(e)))
    }

    pub(super) async fn write_conn(&self) -> Result<dialect::Pooled<D>, StoreError> {
        self.dialect.available()?;
        self.writer.acquire().await.map_err(|e| self.fault(StoreError::from_sqlx(e)))
    }

    pub(super) async fn begin(&self) -> Result<sqlx::Transaction<'static, D::Db>, StoreError> {
        self.begin_locked(&[]).await
    }

    /// A write transaction that holds the locks of the credits `keys` (site, credit).
    pub(super) async fn begin_locked(
        &self,
        keys: &[(Uuid, Uuid)],
    ) -> Result<sqlx::Transaction<'static, D::Db>, StoreError> {
        self.dialect.available()?;
        self.writer.begin_with(D::begin_locking(keys)).await.map_err(|e| self.fault(StoreError::from_sqlx(e)))
    }

    /// Tells the dialect of a fault the database's going away may explain (it may look
    /// for another primary), and passes the error on.
    pub(super) fn fault(&self, e: StoreError) -> StoreError {
        if e.is_transient() && !matches!(e, StoreError::ConcurrentWrite) {
            self.dialect.noticed_fault();
        }
        e
    }
}

/// Rows of `columns` bind parameters each that fit in one statement.
pub(crate) fn rows_per_statement<D: Dialect>(columns: usize) -> usize {
    D::BIND_PARAMS_MAX / columns
}
