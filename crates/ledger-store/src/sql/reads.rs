//! Reads, the feed, the auditors' scans and the sweeps' queries, on any dialect.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ledger_domain::Credit;
use uuid::Uuid;

use super::build::Sql;
use super::db::SqlDb;
use super::dialect::{Conn, Dialect};
use super::list::{page_select, push_where};
use super::rows;
use super::store::SqlStore;
use crate::error::StoreError;
use crate::model::*;
use crate::ports::{Audit, Backend, Feed, Health, Reads, Upkeep};
use crate::prepare::PreparedCredit;

#[async_trait]
impl<D: Dialect> Reads for SqlStore<D> {
    async fn load(&self, site_id: Uuid, billing_credit_id: Uuid) -> Result<Option<Credit>, StoreError> {
        let mut q = Sql::<D>::new(format!("SELECT {} FROM billing_credits WHERE site_id = ", D::STATE_COLUMN));
        q.uuid(site_id).push(" AND billing_credit_id = ").uuid(billing_credit_id);
        let row = q.fetch_optional(&mut *self.read_conn().await?).await.map_err(StoreError::from_sqlx)?;
        row.as_ref().map(rows::state::<D>).transpose().map_err(|e| rows::of_credit(e, site_id, billing_credit_id))
    }

    async fn read_stream(
        &self,
        site_id: Uuid,
        billing_credit_id: Uuid,
        after_version: u64,
        limit: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut q = Sql::<D>::new(format!("SELECT {} FROM events WHERE site_id = ", D::EVENT_COLUMNS));
        q.uuid(site_id)
            .push(" AND billing_credit_id = ")
            .uuid(billing_credit_id)
            .push(" AND version > ")
            .i64(after_version as i64)
            .push(" ORDER BY version LIMIT ")
            .i64(i64::from(limit.min(READ_LIMIT_MAX)));
        rows::events::<D>(&q.fetch_all(&mut *self.read_conn().await?).await.map_err(StoreError::from_sqlx)?)
    }

    async fn list(&self, site_id: Uuid, query: &ListQuery) -> Result<CreditPage, StoreError> {
        let mut conn = self.read_conn().await?;
        let total = match D::counted_total(&mut conn, site_id, &query.filter).await? {
            Some(total) => total,
            None => {
                let mut count = Sql::<D>::new("SELECT count(*) AS total FROM billing_credits");
                push_where(&mut count, site_id, &query.filter);
                let row = count.fetch_all(&mut conn).await.map_err(StoreError::from_sqlx)?;
                row.first().map(|r| D::Db::i64(r, "total")).transpose()?.unwrap_or(0) as u64
            }
        };
        let rows = page_select::<D>(site_id, query).fetch_all(&mut conn).await.map_err(StoreError::from_sqlx)?;
        let credits = rows.iter().map(|row| rows::listed_state::<D>(row, Some(site_id))).collect::<Result<_, _>>()?;
        Ok(CreditPage { credits, total })
    }

    async fn membership_credit_ids(
        &self,
        site_id: Uuid,
        membership_id: Uuid,
        tombstones: Tombstones,
    ) -> Result<Vec<Uuid>, StoreError> {
        let mut q = Sql::<D>::new("SELECT billing_credit_id FROM billing_credits WHERE site_id = ");
        q.uuid(site_id).push(" AND wellness_plan_membership_id = ").uuid(membership_id);
        if tombstones == Tombstones::Excluded {
            q.push(" AND NOT deleted");
        }
        q.push(" ORDER BY created_at, billing_credit_id");
        let rows = q.fetch_all(&mut *self.read_conn().await?).await.map_err(StoreError::from_sqlx)?;
        rows.iter().map(|r| D::Db::uuid(r, "billing_credit_id")).collect()
    }

    async fn membership_credits(
        &self,
        site_id: Uuid,
        membership_id: Uuid,
        limit: u32,
    ) -> Result<Vec<Credit>, StoreError> {
        Self::membership_credits_in(&mut *self.read_conn().await?, site_id, membership_id, limit).await
    }
}

impl<D: Dialect> SqlStore<D> {
    /// [`Reads::membership_credits`] on `conn` (the alerter reads them in its transaction).
    pub(super) async fn membership_credits_in(
        conn: &mut Conn<D>,
        site_id: Uuid,
        membership_id: Uuid,
        limit: u32,
    ) -> Result<Vec<Credit>, StoreError> {
        let mut q = Sql::<D>::new(format!(
            "SELECT billing_credit_id, {} FROM billing_credits WHERE site_id = ",
            D::STATE_COLUMN
        ));
        q.uuid(site_id)
            .push(" AND wellness_plan_membership_id = ")
            .uuid(membership_id)
            .push(" AND NOT deleted ORDER BY created_at, billing_credit_id LIMIT ")
            .i64(i64::from(limit));
        let rows = q.fetch_all(conn).await.map_err(StoreError::from_sqlx)?;
        rows.iter().map(|r| rows::listed_state::<D>(r, Some(site_id))).collect()
    }
}

#[async_trait]
impl<D: Dialect> Feed for SqlStore<D> {
    async fn feed_window(
        &self,
        site_id: Option<Uuid>,
        window: RecordedWindow,
        after: FeedCursor,
        limit: u32,
    ) -> Result<FeedPage, StoreError> {
        let mut q = Sql::<D>::new(format!("SELECT {} FROM events WHERE ", D::EVENT_COLUMNS));
        if let Some(site_id) = site_id {
            q.push("site_id = ").uuid(site_id).push(" AND ");
        }
        if let Some(from) = window.from {
            q.push("recorded_at >= ").time(from).push(" AND ");
        }
        if let Some(to) = window.to {
            q.push("recorded_at < ").time(to).push(" AND ");
        }
        q.pieces(D::feed_after(after));
        q.push(" LIMIT ").i64(i64::from(limit.min(READ_LIMIT_MAX)));
        let rows = q.fetch_all(&mut *self.read_conn().await?).await.map_err(StoreError::from_sqlx)?;
        let events = rows::stored_events::<D>(&rows)?;
        let next = events.last().map_or(after, |e| e.as_ref().map_or_else(|u| u.cursor, |e| e.cursor));
        Ok(FeedPage { events, next })
    }
}

/// `WHERE true [AND site_id = ?]`
fn push_site<D: Dialect>(q: &mut Sql<D>, site_id: Option<Uuid>) {
    q.push(" WHERE true");
    if let Some(site) = site_id {
        q.push(" AND site_id = ").uuid(site);
    }
}

#[async_trait]
impl<D: Dialect> Audit for SqlStore<D> {
    async fn scan_events(
        &self,
        site_id: Option<Uuid>,
        after: Option<StreamPosition>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut q = Sql::<D>::new(format!("SELECT {} FROM events", D::EVENT_COLUMNS));
        push_site(&mut q, site_id);
        if let Some((site, credit, version)) = after {
            q.push(" AND (site_id, billing_credit_id, version) > (")
                .uuid(site)
                .push(", ")
                .uuid(credit)
                .push(", ")
                .i64(version as i64)
                .push(")");
        }
        q.push(" ORDER BY site_id, billing_credit_id, version LIMIT ").i64(i64::from(limit.min(SCAN_LIMIT_MAX)));
        rows::stored_events::<D>(&q.fetch_all(&mut *self.read_conn().await?).await.map_err(StoreError::from_sqlx)?)
    }

    async fn scan_projections(
        &self,
        site_id: Option<Uuid>,
        after: Option<(Uuid, Uuid)>,
        limit: u32,
    ) -> Result<Vec<(Credit, [u8; 32])>, StoreError> {
        let mut q = Sql::<D>::new(format!(
            "SELECT {}, site_id, billing_credit_id, last_hash FROM billing_credits",
            D::STATE_COLUMN
        ));
        push_site(&mut q, site_id);
        if let Some((site, credit)) = after {
            q.push(" AND (site_id, billing_credit_id) > (").uuid(site).push(", ").uuid(credit).push(")");
        }
        q.push(" ORDER BY site_id, billing_credit_id LIMIT ").i64(i64::from(limit.min(SCAN_LIMIT_MAX)));
        let rows = q.fetch_all(&mut *self.read_conn().await?).await.map_err(StoreError::from_sqlx)?;
        rows.iter().map(|row| Ok((rows::listed_state::<D>(row, None)?, rows::hash::<D>(row, "last_hash")?))).collect()
    }

    async fn put_projections(&self, rows: Vec<(Credit, [u8; 32])>) -> Result<(), StoreError> {
        let rows: Vec<PreparedCredit> =
            rows.into_iter().map(|(credit, last_hash)| PreparedCredit { credit, last_hash }).collect();
        Self::upsert_projections(&mut *self.write_conn().await?, &rows.iter().collect::<Vec<_>>(), true).await
    }

    async fn rebuild_projections(
        &self,
        limits: ReplayLimits,
        progress: Progress<'_>,
    ) -> Result<Option<ReplayReport>, StoreError> {
        self.dialect.rebuild(&self.writer, limits, progress).await
    }

    async fn recount(&self, site_id: Option<Uuid>) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        D::recount(&mut tx, site_id).await?;
        tx.commit().await.map_err(StoreError::from_sqlx)
    }

    async fn count_mismatches(&self, site_id: Option<Uuid>) -> Result<Vec<String>, StoreError> {
        D::count_mismatches(&mut *self.read_conn().await?, site_id).await
    }
}

#[async_trait]
impl<D: Dialect> Upkeep for SqlStore<D> {
    async fn due_for_expiry(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<(Uuid, Uuid)>, StoreError> {
        let mut q = Sql::<D>::new(
            "SELECT site_id, billing_credit_id FROM billing_credits \
             WHERE NOT deleted AND NOT expired AND remaining_amount > 0 AND end_date IS NOT NULL AND end_date <= ",
        );
        q.time(now).push(" ORDER BY end_date LIMIT ").i64(i64::from(limit));
        let rows = q.fetch_all(&mut *self.read_conn().await?).await.map_err(StoreError::from_sqlx)?;
        rows.iter().map(|r| Ok((D::Db::uuid(r, "site_id")?, D::Db::uuid(r, "billing_credit_id")?))).collect()
    }

    async fn purge_idempotency_keys(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut q = Sql::<D>::new("DELETE FROM idempotency_keys WHERE created_at < ");
        q.time(before);
        q.execute(&mut *self.write_conn().await?).await.map_err(StoreError::from_sqlx)
    }
}

#[async_trait]
impl<D: Dialect> Health for SqlStore<D> {
    fn backend(&self) -> Backend {
        D::BACKEND
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Sql::<D>::new("SELECT 1").execute(&mut *self.read_conn().await?).await.map_err(StoreError::from_sqlx)?;
        Ok(())
    }

    async fn wal_position(&self) -> Result<Option<String>, StoreError> {
        D::wal_position(&mut *self.write_conn().await?).await
    }
}
