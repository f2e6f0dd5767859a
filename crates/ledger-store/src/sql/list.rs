//! The projection's SQL, shared by both backends: its columns, and the list endpoint's
//! filters and order.

use uuid::Uuid;

use super::build::Sql;
use super::dialect::Dialect;
use crate::model::{CreditFilter, ListQuery};

/// Every projection column, as both backends write them.
pub(crate) const PROJECTION_COLUMNS: &str =
    "site_id, billing_credit_id, version, last_hash, deleted, expired, credit_type, \
     is_active, wellness_plan_id, wellness_plan_benefit_id, wellness_plan_membership_id, \
     wellness_plan_membership_cycle_id, wellness_plan_membership_status_period_id, start_date, end_date, \
     created_at, updated_at, total_amount, used_amount, wasted_amount, remaining_amount, state";

/// An upsert's SET list: every projection column from the proposed row.
pub(crate) const PROJECTION_SET_EXCLUDED: &str = "version = EXCLUDED.version, \
     last_hash = EXCLUDED.last_hash, deleted = EXCLUDED.deleted, expired = EXCLUDED.expired, \
     credit_type = EXCLUDED.credit_type, is_active = EXCLUDED.is_active, wellness_plan_id = EXCLUDED.wellness_plan_id, \
     wellness_plan_benefit_id = EXCLUDED.wellness_plan_benefit_id, \
     wellness_plan_membership_id = EXCLUDED.wellness_plan_membership_id, \
     wellness_plan_membership_cycle_id = EXCLUDED.wellness_plan_membership_cycle_id, \
     wellness_plan_membership_status_period_id = EXCLUDED.wellness_plan_membership_status_period_id, \
     start_date = EXCLUDED.start_date, end_date = EXCLUDED.end_date, created_at = EXCLUDED.created_at, \
     updated_at = EXCLUDED.updated_at, total_amount = EXCLUDED.total_amount, used_amount = EXCLUDED.used_amount, \
     wasted_amount = EXCLUDED.wasted_amount, remaining_amount = EXCLUDED.remaining_amount, state = EXCLUDED.state";

/// Appends `WHERE site_id = ? AND NOT deleted AND <filters>`.
pub(crate) fn push_where<D: Dialect>(q: &mut Sql<D>, site_id: Uuid, filter: &CreditFilter) {
    q.push(" WHERE site_id = ").uuid(site_id).push(" AND NOT deleted");
    if let Some(credit_type) = filter.credit_type {
        q.push(" AND credit_type = ").text(credit_type.as_str());
    }
    if let Some(is_active) = filter.is_active {
        q.push(" AND is_active = ").bool(is_active);
    }
    let ids = [
        ("wellness_plan_id", filter.wellness_plan_id),
        ("wellness_plan_benefit_id", filter.wellness_plan_benefit_id),
        ("wellness_plan_membership_id", filter.wellness_plan_membership_id),
        ("wellness_plan_membership_cycle_id", filter.wellness_plan_membership_cycle_id),
        ("wellness_plan_membership_status_period_id", filter.wellness_plan_membership_status_period_id),
    ];
    for (column, value) in ids {
        if let Some(id) = value {
            q.push(" AND ").push(column).push(" = ").uuid(id);
        }
    }
}

/// `SELECT <state>, billing_credit_id FROM billing_credits` for one page of `query`: filtered, sorted (the
/// id breaks ties, so pages never overlap or skip rows that share a sort value), limited
/// and offset.
///
/// endDate, the one nullable sort, puts credits without one last in both directions.
/// One `ORDER BY end_date DESC NULLS LAST` cannot be read off an ascending index (its
/// backward scan gives nulls first), so that page is the ordered union of two index
/// reads: the dated credits in the asked order, then the undated ones, each cut at the
/// end of the page.
pub(crate) fn page_select<D: Dialect>(site_id: Uuid, query: &ListQuery) -> Sql<D> {
    let dir = query.sort_order.sql();
    let col = query.sort_by.column();
    let state = D::STATE_COLUMN;
    if !query.sort_by.nullable() {
        let mut q = Sql::new(format!("SELECT {state}, billing_credit_id FROM billing_credits"));
        push_where(&mut q, site_id, &query.filter);
        q.push(format_args!(" ORDER BY {col} {dir}, billing_credit_id {dir}"));
        push_limit(&mut q, query.page_size, query.offset());
        return q;
    }
    let end_of_page = query.offset() + i64::from(query.page_size);
    let mut q = Sql::new(format!(
        "SELECT {state}, billing_credit_id FROM (SELECT * FROM (SELECT state, {col}, billing_credit_id, 0 AS undated FROM billing_credits"
    ));
    push_where(&mut q, site_id, &query.filter);
    q.push(format_args!(" AND {col} IS NOT NULL ORDER BY {col} {dir}, billing_credit_id {dir} LIMIT "))
        .i64(end_of_page);
    q.push(") dated UNION ALL SELECT * FROM (SELECT state, ")
        .push(col)
        .push(", billing_credit_id, 1 AS undated FROM billing_credits");
    push_where(&mut q, site_id, &query.filter);
    q.push(format_args!(" AND {col} IS NULL ORDER BY billing_credit_id {dir} LIMIT ")).i64(end_of_page);
    q.push(format_args!(") undated) page ORDER BY undated, {col} {dir}, billing_credit_id {dir}"));
    push_limit(&mut q, query.page_size, query.offset());
    q
}

fn push_limit<D: Dialect>(q: &mut Sql<D>, page_size: u32, offset: i64) {
    q.push(" LIMIT ").i64(i64::from(page_size)).push(" OFFSET ").i64(offset);
}
