//! SQL for the list endpoint, shared by both backends: the same filters, the same order.

use sqlx::{Database, Encode, QueryBuilder, Type};
use uuid::Uuid;

use crate::model::{CreditFilter, ListQuery};

/// Appends `WHERE site_id = ? AND NOT deleted AND <filters>` to `qb`.
pub(crate) fn push_where<'a, DB>(qb: &mut QueryBuilder<'a, DB>, site_id: Uuid, filter: &'a CreditFilter)
where
    DB: Database,
    Uuid: Encode<'a, DB> + Type<DB>,
    bool: Encode<'a, DB> + Type<DB>,
    &'a str: Encode<'a, DB> + Type<DB>,
{
    qb.push(" WHERE site_id = ").push_bind(site_id).push(" AND NOT deleted");
    if let Some(credit_type) = filter.credit_type {
        qb.push(" AND credit_type = ").push_bind(credit_type.as_str());
    }
    if let Some(is_active) = filter.is_active {
        qb.push(" AND is_active = ").push_bind(is_active);
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
            qb.push(" AND ").push(column).push(" = ").push_bind(id);
        }
    }
}

/// Appends the ORDER BY, LIMIT and OFFSET of a page. The id breaks ties, so pages
/// never overlap or skip rows that share a sort value.
pub(crate) fn push_page<'a, DB>(qb: &mut QueryBuilder<'a, DB>, query: &ListQuery)
where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
{
    let dir = query.sort_order.sql();
    // Only endDate can be null. Saying NULLS LAST on a NOT NULL column would stop
    // Postgres from reading a descending page off its ascending index.
    let nulls = if query.sort_by.nullable() { " NULLS LAST" } else { "" };
    qb.push(format_args!(
        " ORDER BY {col} {dir}{nulls}, billing_credit_id {dir} LIMIT ",
        col = query.sort_by.column()
    ));
    qb.push_bind(i64::from(query.page_size)).push(" OFFSET ").push_bind(query.offset());
}
