//! The alert outbox, on any dialect: the webhook endpoints of each site, and the
//! deliveries the alerter wrote for them and for NATS: their log, redelivery, and the
//! lease claims of the delivery workers (see [`crate::alerts`]).

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::alerts::{kind, sqlx_err};
use super::build::Sql;
use super::db::SqlDb;
use super::dialect::{DbRow, Dialect};
use super::store::SqlStore;
use crate::alerts::*;
use crate::error::StoreError;
use crate::ports::AlertOutbox;

const DELIVERY_COLUMNS: &str = "delivery_id, alert_id, site_id, kind, endpoint_id, status, attempts, \
     next_attempt_at, give_up_at, last_status_code, last_error, created_at, delivered_at";

fn delivery<D: Dialect>(row: &DbRow<D>) -> Result<Delivery, StoreError> {
    let status = D::Db::text(row, "status")?;
    Ok(Delivery {
        delivery_id: D::Db::uuid(row, "delivery_id")?,
        alert_id: D::Db::uuid(row, "alert_id")?,
        site_id: D::Db::uuid(row, "site_id")?,
        kind: kind(&D::Db::text(row, "kind")?)?,
        endpoint_id: D::Db::opt_uuid(row, "endpoint_id")?,
        status: DeliveryStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("delivery status {status:?}")))?,
        attempts: D::Db::i64(row, "attempts")?.try_into().unwrap_or(u32::MAX),
        next_attempt_at: D::read_time(row, "next_attempt_at")?,
        give_up_at: D::read_time(row, "give_up_at")?,
        last_status_code: D::Db::opt_i64(row, "last_status_code")?.and_then(|c| u16::try_from(c).ok()),
        last_error: D::Db::opt_text(row, "last_error")?,
        created_at: D::read_time(row, "created_at")?,
        delivered_at: D::read_opt_time(row, "delivered_at")?,
    })
}

fn endpoint<D: Dialect>(row: &DbRow<D>) -> Result<WebhookEndpoint, StoreError> {
    Ok(WebhookEndpoint {
        endpoint_id: D::Db::uuid(row, "endpoint_id")?,
        site_id: D::Db::uuid(row, "site_id")?,
        url: D::Db::text(row, "url")?,
        description: D::Db::opt_text(row, "description")?,
        created_at: D::read_time(row, "created_at")?,
    })
}

#[async_trait]
impl<D: Dialect> AlertOutbox for SqlStore<D> {
    async fn create_webhook(
        &self,
        endpoint: &WebhookEndpoint,
        secret: &str,
        max_per_site: u32,
    ) -> Result<bool, StoreError> {
        // One statement: the count and the insert cannot be separated by another request.
        let mut q = Sql::<D>::new(
            "INSERT INTO webhook_endpoints (endpoint_id, site_id, url, description, secret, created_at) SELECT ",
        );
        q.uuid(endpoint.endpoint_id).push(", ").uuid(endpoint.site_id).push(", ").text(endpoint.url.clone());
        q.push(", ")
            .opt_text(endpoint.description.clone())
            .push(", ")
            .text(secret)
            .push(", ")
            .time(endpoint.created_at);
        q.push(" WHERE (SELECT count(*) FROM webhook_endpoints WHERE NOT deleted AND site_id = ");
        q.uuid(endpoint.site_id).push(") < ").i64(i64::from(max_per_site));
        Ok(q.execute(&mut *self.write_conn().await?).await.map_err(sqlx_err)? == 1)
    }

    async fn webhooks(&self, site_id: Uuid) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let mut q = Sql::<D>::new(
            "SELECT endpoint_id, site_id, url, description, created_at FROM webhook_endpoints \
             WHERE NOT deleted AND site_id = ",
        );
        q.uuid(site_id).push(" ORDER BY created_at, endpoint_id");
        q.fetch_all(&mut *self.read_conn().await?).await.map_err(sqlx_err)?.iter().map(endpoint::<D>).collect()
    }

    async fn webhook(&self, site_id: Uuid, endpoint_id: Uuid) -> Result<Option<WebhookEndpoint>, StoreError> {
        let mut q = Sql::<D>::new(
            "SELECT endpoint_id, site_id, url, description, created_at FROM webhook_endpoints \
             WHERE NOT deleted AND site_id = ",
        );
        q.uuid(site_id).push(" AND endpoint_id = ").uuid(endpoint_id);
        q.fetch_optional(&mut *self.read_conn().await?).await.map_err(sqlx_err)?.as_ref().map(endpoint::<D>).transpose()
    }

    async fn delete_webhook(&self, site_id: Uuid, endpoint_id: Uuid) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let mut q = Sql::<D>::new("UPDATE webhook_endpoints SET deleted = ");
        q.bool(true)
            .push(" WHERE NOT deleted AND site_id = ")
            .uuid(site_id)
            .push(" AND endpoint_id = ")
            .uuid(endpoint_id);
        if q.execute(&mut tx).await.map_err(sqlx_err)? == 0 {
            return Ok(false);
        }
        let mut q = Sql::<D>::new("UPDATE alert_deliveries SET status = ");
        q.text(DeliveryStatus::Failed.as_str())
            .push(", last_error = ")
            .text("the endpoint was deleted")
            // An attempt under way when it was deleted can no longer record its outcome.
            .push(", claimed_until = NULL, claim_token = NULL WHERE status = ")
            .text(DeliveryStatus::Pending.as_str())
            .push(" AND endpoint_id = ")
            .uuid(endpoint_id);
        q.execute(&mut tx).await.map_err(sqlx_err)?;
        tx.commit().await.map_err(sqlx_err)?;
        Ok(true)
    }

    async fn rotate_webhook_secret(&self, site_id: Uuid, endpoint_id: Uuid, secret: &str) -> Result<bool, StoreError> {
        let mut q = Sql::<D>::new("UPDATE webhook_endpoints SET secret = ");
        q.text(secret)
            .push(" WHERE NOT deleted AND site_id = ")
            .uuid(site_id)
            .push(" AND endpoint_id = ")
            .uuid(endpoint_id);
        Ok(q.execute(&mut *self.write_conn().await?).await.map_err(sqlx_err)? == 1)
    }

    async fn webhook_deliveries(
        &self,
        site_id: Uuid,
        endpoint_id: Uuid,
        page: u32,
        page_size: u32,
    ) -> Result<(Vec<Delivery>, u64), StoreError> {
        let mut conn = self.read_conn().await?;
        let mut q = Sql::<D>::new("SELECT count(*) AS total FROM alert_deliveries WHERE site_id = ");
        q.uuid(site_id).push(" AND endpoint_id = ").uuid(endpoint_id);
        let total = q.fetch_all(&mut conn).await.map_err(sqlx_err)?;
        let total = total.first().map(|r| D::Db::i64(r, "total")).transpose()?.unwrap_or(0).max(0) as u64;
        let mut q = Sql::<D>::new(format!("SELECT {DELIVERY_COLUMNS} FROM alert_deliveries WHERE site_id = "));
        q.uuid(site_id).push(" AND endpoint_id = ").uuid(endpoint_id);
        q.push(" ORDER BY created_at DESC, delivery_id LIMIT ")
            .i64(i64::from(page_size))
            .push(" OFFSET ")
            .i64(i64::from(page) * i64::from(page_size));
        let rows = q.fetch_all(&mut conn).await.map_err(sqlx_err)?;
        Ok((rows.iter().map(delivery::<D>).collect::<Result<_, _>>()?, total))
    }

    async fn redeliver(
        &self,
        site_id: Uuid,
        endpoint_id: Uuid,
        delivery_id: Uuid,
        now: DateTime<Utc>,
        give_up_at: DateTime<Utc>,
    ) -> Result<Option<Delivery>, StoreError> {
        let new_id = Uuid::new_v4();
        let mut q = Sql::<D>::new(
            "INSERT INTO alert_deliveries (delivery_id, alert_id, site_id, kind, target, endpoint_id, status, \
             attempts, next_attempt_at, give_up_at, created_at) SELECT ",
        );
        q.uuid(new_id).push(", d.alert_id, d.site_id, d.kind, d.target, d.endpoint_id, ");
        q.text(DeliveryStatus::Pending.as_str())
            .push(", 0, ")
            .time(now)
            .push(", ")
            .time(give_up_at)
            .push(", ")
            .time(now);
        q.push(" FROM alert_deliveries d JOIN webhook_endpoints e ON e.endpoint_id = d.endpoint_id AND NOT e.deleted");
        q.push(" WHERE d.site_id = ").uuid(site_id).push(" AND d.endpoint_id = ").uuid(endpoint_id);
        q.push(" AND d.delivery_id = ").uuid(delivery_id);
        let mut conn = self.write_conn().await?;
        if q.execute(&mut conn).await.map_err(sqlx_err)? == 0 {
            return Ok(None);
        }
        let mut q = Sql::<D>::new(format!("SELECT {DELIVERY_COLUMNS} FROM alert_deliveries WHERE delivery_id = "));
        q.uuid(new_id);
        q.fetch_optional(&mut conn).await.map_err(sqlx_err)?.as_ref().map(delivery::<D>).transpose()
    }

    async fn claim_deliveries(
        &self,
        target: TargetKind,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let token = Uuid::new_v4();
        // The outer conditions repeat the inner ones: on Postgres a claim that waited for
        // another's row lock re-checks them on the row as that claim left it.
        let due = |q: &mut Sql<D>| {
            q.push("status = ")
                .text(DeliveryStatus::Pending.as_str())
                .push(" AND (claimed_until IS NULL OR claimed_until < ")
                .time(now)
                .push(")");
        };
        let mut q = Sql::<D>::new("UPDATE alert_deliveries SET claimed_until = ");
        q.time(lease_until).push(", claim_token = ").uuid(token);
        q.push(" WHERE delivery_id IN (SELECT delivery_id FROM alert_deliveries WHERE target = ").text(target.as_str());
        q.push(" AND next_attempt_at <= ").time(now).push(" AND ");
        due(&mut q);
        q.push(" ORDER BY next_attempt_at LIMIT ").i64(i64::from(limit)).push(D::SKIP_LOCKED).push(") AND ");
        due(&mut q);
        q.push(" RETURNING delivery_id, alert_id, site_id, kind, endpoint_id, attempts, give_up_at");
        let mut conn = self.write_conn().await?;
        let rows = q.fetch_all(&mut conn).await.map_err(sqlx_err)?;
        let mut claimed = Vec::with_capacity(rows.len());
        let mut endpoint_ids = BTreeSet::new();
        let mut alert_ids = BTreeSet::new();
        for row in &rows {
            let endpoint_id = D::Db::opt_uuid(row, "endpoint_id")?;
            endpoint_ids.extend(endpoint_id);
            let alert_id = D::Db::uuid(row, "alert_id")?;
            alert_ids.insert(alert_id);
            claimed.push((
                endpoint_id,
                ClaimedDelivery {
                    delivery_id: D::Db::uuid(row, "delivery_id")?,
                    alert_id,
                    site_id: D::Db::uuid(row, "site_id")?,
                    kind: kind(&D::Db::text(row, "kind")?)?,
                    payload: String::new(),
                    attempts: D::Db::i64(row, "attempts")?.try_into().unwrap_or(u32::MAX),
                    give_up_at: D::read_time(row, "give_up_at")?,
                    claim_token: token,
                    endpoint: None,
                },
            ));
        }
        if claimed.is_empty() {
            return Ok(vec![]);
        }
        let mut endpoints = BTreeMap::new();
        if !endpoint_ids.is_empty() {
            let ids: Vec<Uuid> = endpoint_ids.into_iter().collect();
            let mut q = Sql::<D>::new(
                "SELECT endpoint_id, url, secret FROM webhook_endpoints WHERE NOT deleted AND endpoint_id IN ",
            );
            q.uuid_list(&ids);
            for row in q.fetch_all(&mut conn).await.map_err(sqlx_err)? {
                endpoints.insert(
                    D::Db::uuid(&row, "endpoint_id")?,
                    (D::Db::text(&row, "url")?, D::Db::text(&row, "secret")?),
                );
            }
        }
        let ids: Vec<Uuid> = alert_ids.into_iter().collect();
        let mut q = Sql::<D>::new("SELECT alert_id, payload FROM alerts WHERE alert_id IN ");
        q.uuid_list(&ids);
        let mut payloads = BTreeMap::new();
        for row in q.fetch_all(&mut conn).await.map_err(sqlx_err)? {
            payloads.insert(D::Db::uuid(&row, "alert_id")?, D::Db::text(&row, "payload")?);
        }
        Ok(claimed
            .into_iter()
            .map(|(endpoint_id, mut d)| {
                d.endpoint = endpoint_id.and_then(|id| endpoints.get(&id).cloned());
                d.payload = payloads.get(&d.alert_id).cloned().unwrap_or_default();
                d
            })
            .collect())
    }

    async fn record_attempt(
        &self,
        d: &ClaimedDelivery,
        attempt: &Attempt,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (status, code, error, next, delivered) = match attempt {
            Attempt::Delivered { status_code } => (DeliveryStatus::Delivered, *status_code, None, now, Some(now)),
            Attempt::Retry { status_code, error, next_attempt_at } => {
                (DeliveryStatus::Pending, *status_code, Some(error.clone()), *next_attempt_at, None)
            }
            Attempt::Failed { status_code, error } => {
                (DeliveryStatus::Failed, *status_code, Some(error.clone()), now, None)
            }
        };
        let mut q = Sql::<D>::new("UPDATE alert_deliveries SET attempts = attempts + 1, status = ");
        q.text(status.as_str())
            .push(", last_status_code = ")
            .opt_i64(code.map(i64::from))
            .push(", last_error = ")
            .opt_text(error)
            .push(", next_attempt_at = ")
            .time(next)
            .push(", delivered_at = ")
            .opt_time(delivered);
        q.push(", claimed_until = NULL, claim_token = NULL WHERE delivery_id = ").uuid(d.delivery_id);
        q.push(" AND claim_token = ").uuid(d.claim_token);
        Ok(q.execute(&mut *self.write_conn().await?).await.map_err(sqlx_err)? == 1)
    }
}
