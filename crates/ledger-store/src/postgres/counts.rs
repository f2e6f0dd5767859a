//! Live-credit counts per (site, type, active), kept beside the projection so a list's
//! `total` is a sum of a few rows instead of a count over a million. Filters on the
//! plan ids are selective and counted exactly from their indexes instead.

use std::collections::BTreeMap;

use ledger_domain::Credit;
use sqlx::{PgConnection, Postgres, QueryBuilder, Row};
use uuid::Uuid;

use crate::error::StoreError;
use crate::model::CreditFilter;

type Key = (Uuid, &'static str, bool);

fn key(credit: &Credit) -> Option<Key> {
    (!credit.deleted).then(|| (credit.site_id, credit.details.credit_type.as_str(), credit.is_active))
}

/// How the live counts move when credits go from `before` to `after`.
#[derive(Default)]
pub(crate) struct CountDeltas(BTreeMap<Key, i64>);

impl CountDeltas {
    pub(crate) fn record(&mut self, before: Option<&Credit>, after: &Credit) {
        let (old, new) = (before.and_then(key), key(after));
        if old == new {
            return;
        }
        if let Some(old) = old {
            *self.0.entry(old).or_default() -= 1;
        }
        if let Some(new) = new {
            *self.0.entry(new).or_default() += 1;
        }
    }

    /// The non-zero deltas as columns (site, type, active, delta), in key order so
    /// concurrent writers lock counter rows alike.
    pub(crate) fn columns(self) -> (Vec<Uuid>, Vec<&'static str>, Vec<bool>, Vec<i64>) {
        let mut columns = (vec![], vec![], vec![], vec![]);
        for ((site_id, credit_type, is_active), delta) in self.0 {
            if delta != 0 {
                columns.0.push(site_id);
                columns.1.push(credit_type);
                columns.2.push(is_active);
                columns.3.push(delta);
            }
        }
        columns
    }
}

/// The total of a list from the counters, when the filter allows it.
pub(crate) async fn total_from_counts(
    conn: &mut PgConnection,
    site_id: Uuid,
    filter: &CreditFilter,
) -> Result<Option<u64>, StoreError> {
    let by_plan = filter.wellness_plan_id.is_some()
        || filter.wellness_plan_benefit_id.is_some()
        || filter.wellness_plan_membership_id.is_some()
        || filter.wellness_plan_membership_cycle_id.is_some()
        || filter.wellness_plan_membership_status_period_id.is_some();
    if by_plan {
        return Ok(None);
    }
    let mut qb =
        QueryBuilder::<Postgres>::new("SELECT COALESCE(sum(live), 0)::bigint FROM credit_counts WHERE site_id = ");
    qb.push_bind(site_id);
    if let Some(credit_type) = filter.credit_type {
        qb.push(" AND credit_type = ").push_bind(credit_type.as_str());
    }
    if let Some(active) = filter.is_active {
        qb.push(" AND is_active = ").push_bind(active);
    }
    let total: i64 = qb.build().fetch_one(conn).await.map_err(StoreError::from_sqlx)?.get(0);
    Ok(Some(total as u64))
}

/// Recounts from the projection (after a replay), for one site or all.
pub(crate) async fn recount(conn: &mut PgConnection, site_id: Option<Uuid>) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM credit_counts WHERE $1::uuid IS NULL OR site_id = $1")
        .bind(site_id)
        .execute(&mut *conn)
        .await
        .map_err(StoreError::from_sqlx)?;
    sqlx::query(
        "INSERT INTO credit_counts (site_id, credit_type, is_active, live) \
         SELECT site_id, credit_type, is_active, count(*) FROM billing_credits \
         WHERE NOT deleted AND ($1::uuid IS NULL OR site_id = $1) GROUP BY 1, 2, 3",
    )
    .bind(site_id)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::from_sqlx)?;
    Ok(())
}

/// Counter rows that disagree with the projection, described for `verify`.
pub(crate) async fn mismatches(conn: &mut PgConnection, site_id: Option<Uuid>) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query(
        "WITH actual AS (SELECT site_id, credit_type, is_active, count(*) AS live FROM billing_credits \
                         WHERE NOT deleted AND ($1::uuid IS NULL OR site_id = $1) GROUP BY 1, 2, 3), \
              kept AS (SELECT site_id, credit_type, is_active, live FROM credit_counts \
                       WHERE live <> 0 AND ($1::uuid IS NULL OR site_id = $1)) \
         SELECT COALESCE(a.site_id, k.site_id) AS site_id, COALESCE(a.credit_type, k.credit_type) AS credit_type, \
                COALESCE(a.is_active, k.is_active) AS is_active, COALESCE(a.live, 0) AS actual, COALESCE(k.live, 0) AS kept \
         FROM actual a FULL JOIN kept k USING (site_id, credit_type, is_active) \
         WHERE COALESCE(a.live, 0) <> COALESCE(k.live, 0)",
    )
    .bind(site_id)
    .fetch_all(conn)
    .await
    .map_err(StoreError::from_sqlx)?;
    Ok(rows
        .iter()
        .map(|r| {
            format!(
                "site {}: {} {} credits counted {} but the projection holds {}",
                r.get::<Uuid, _>("site_id"),
                if r.get::<bool, _>("is_active") { "active" } else { "inactive" },
                r.get::<String, _>("credit_type"),
                r.get::<i64, _>("kept"),
                r.get::<i64, _>("actual"),
            )
        })
        .collect())
}
