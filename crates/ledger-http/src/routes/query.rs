//! Query strings, checked strictly on every endpoint: a parameter given twice, a control
//! character, or a value out of range is a 400 naming the parameter, never silently
//! clamped or resolved by picking one of the values.

use actix_web::{web, HttpRequest};
use chrono::{DateTime, Utc};
use ledger_domain::CreditType;
use ledger_store::{ListQuery, SortField, SortOrder, PAGE_MAX, PAGE_SIZE_MAX};
use utoipa::IntoParams;
use uuid::Uuid;

use crate::problem::ApiError;
use crate::wire;

/// The list parameters, as documented. Parsing is done by [`parse_list_query`].
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[allow(dead_code)]
pub struct ListParams {
    /// Page number (0-based). Default 0.
    #[param(minimum = 0, maximum = 1000000, example = 0)]
    page: Option<u32>,
    /// Number of items per page, 1 to 100. Default 10.
    #[param(minimum = 1, maximum = 100, example = 10)]
    page_size: Option<u32>,
    /// Field to sort by: createdAt (default), updatedAt, startDate, endDate, totalAmount,
    /// usedAmount, wastedAmount, remainingAmount.
    #[param(example = "createdAt")]
    sort_by: Option<String>,
    /// asc (default) or desc.
    #[param(example = "asc")]
    sort_order: Option<String>,
    /// quantity or monetary.
    #[param(example = "quantity")]
    credit_type: Option<String>,
    is_active: Option<bool>,
    wellness_plan_benefit_id: Option<Uuid>,
    wellness_plan_id: Option<Uuid>,
    wellness_plan_membership_cycle_id: Option<Uuid>,
    wellness_plan_membership_id: Option<Uuid>,
    wellness_plan_membership_status_period_id: Option<Uuid>,
}

/// The query string's (name, value) pairs, percent-decoded: each name at most once,
/// and no control character in a name or a value (none is meaningful in a parameter, and
/// a NUL cannot reach Postgres).
pub fn query_pairs(req: &HttpRequest) -> Result<Vec<(String, String)>, ApiError> {
    query_pairs_repeating(req, &[])
}

/// [`query_pairs`], where the parameters named in `repeatable` may be given more than once
/// (each value is a pair of its own).
pub fn query_pairs_repeating(req: &HttpRequest, repeatable: &[&str]) -> Result<Vec<(String, String)>, ApiError> {
    let pairs = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| ApiError::bad_field("query", "malformed-query", e.to_string()))?;
    let mut seen = std::collections::HashSet::new();
    for (key, value) in &pairs {
        if key.chars().any(char::is_control) {
            return Err(ApiError::bad_field(
                "query",
                "control-character",
                "a parameter name holds a control character",
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(ApiError::bad_field(
                key.clone(),
                "control-character",
                format!("{key} holds a control character"),
            ));
        }
        if !repeatable.contains(&key.as_str()) && !seen.insert(key.as_str()) {
            return Err(ApiError::bad_field(key.clone(), "repeated", format!("{key} is given more than once")));
        }
    }
    Ok(pairs)
}

/// A parameter this endpoint does not have.
pub fn unknown(key: &str) -> ApiError {
    ApiError::bad_field(key, "unknown-parameter", format!("{key} is not a parameter of this endpoint"))
}

pub fn parse_list_query(req: &HttpRequest) -> Result<ListQuery, ApiError> {
    let mut query = ListQuery::default();
    for (key, value) in query_pairs(req)?.iter() {
        let filter = &mut query.filter;
        match key.as_str() {
            "page" => query.page = number(key, value, 0, PAGE_MAX)?,
            "pageSize" => query.page_size = number(key, value, 1, PAGE_SIZE_MAX)?,
            "sortBy" => {
                query.sort_by = SortField::parse(value).ok_or_else(|| {
                    let allowed: Vec<_> = SortField::ALL.iter().map(|f| f.api_name()).collect();
                    ApiError::bad_field(key.clone(), "one-of", format!("sortBy must be one of {}", allowed.join(", ")))
                })?
            }
            "sortOrder" => {
                query.sort_order = match value.as_str() {
                    "asc" => SortOrder::Asc,
                    "desc" => SortOrder::Desc,
                    _ => return Err(ApiError::bad_field(key.clone(), "one-of", "sortOrder must be asc or desc")),
                }
            }
            "creditType" => filter.credit_type = Some(credit_type(key, value)?),
            "isActive" => {
                filter.is_active = Some(match value.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(ApiError::bad_field(key.clone(), "boolean", "isActive must be true or false")),
                })
            }
            "wellnessPlanBenefitId" => filter.wellness_plan_benefit_id = Some(uuid(key, value)?),
            "wellnessPlanId" => filter.wellness_plan_id = Some(uuid(key, value)?),
            "wellnessPlanMembershipCycleId" => filter.wellness_plan_membership_cycle_id = Some(uuid(key, value)?),
            "wellnessPlanMembershipId" => filter.wellness_plan_membership_id = Some(uuid(key, value)?),
            "wellnessPlanMembershipStatusPeriodId" => {
                filter.wellness_plan_membership_status_period_id = Some(uuid(key, value)?)
            }
            _ => return Err(unknown(key)),
        }
    }
    Ok(query)
}

/// A whole number in [min, max], or a 400 naming the parameter.
pub fn number(key: &str, value: &str, min: u32, max: u32) -> Result<u32, ApiError> {
    value
        .parse::<i64>()
        .ok()
        .filter(|n| (i64::from(min)..=i64::from(max)).contains(n))
        .map(|n| n as u32)
        .ok_or_else(|| ApiError::bad_field(key, "range", format!("{key} must be a whole number from {min} to {max}")))
}

/// An instant: RFC 3339, or a date (midnight UTC), by the wire's date rule.
pub fn instant(key: &str, value: &str) -> Result<DateTime<Utc>, ApiError> {
    wire::parse_date(value)
        .ok_or_else(|| ApiError::bad_field(key, "invalid-instant", format!("{value:?} {}", wire::DATE_RULE)))
}

pub fn credit_type(key: &str, value: &str) -> Result<CreditType, ApiError> {
    CreditType::parse(value)
        .ok_or_else(|| ApiError::bad_field(key, "one-of", "creditType must be quantity or monetary"))
}

pub fn uuid(key: &str, value: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(value).map_err(|_| ApiError::bad_field(key, "invalid-uuid", format!("{value:?} is not a UUID")))
}
