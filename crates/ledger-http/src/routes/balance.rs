//! `GET …/billing-credit-balance`: what a member has left, per creditType and unit, now
//! or as of an instant, summed from the same credits the list shows.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{Duration, Utc};
use ledger_domain::balance::{EXPIRING_WITHIN_DAYS_DEFAULT, EXPIRING_WITHIN_DAYS_MAX};
use ledger_domain::{balance, BalanceFilter};
use ledger_store::balance::member_credits;

use super::consistency::read;
use super::query::{credit_type, instant, number, query_pairs, unknown, uuid};
use crate::auth::{Read, SiteAccess};
use crate::dto::{BalanceLineDto, MemberBalance};
use crate::problem::{ApiError, Problem, ReadProblems};
use crate::startup::AppState;
use crate::wire;

pub const BALANCE_PATH: &str = "/site/{siteId}/ahds/v1/billing-credit-balance";

#[utoipa::path(
    get, path = "/site/{siteId}/ahds/v1/billing-credit-balance", tag = "Balance",
    summary = "What a member has left, per creditType and unit",
    description = "Sums the member's spendable credits (active, not expired, not deleted, inside their \
                   startDate/endDate window at the instant asked). With `asOf`, every credit is first rebuilt \
                   from its events as of that instant.",
    params(("siteId" = Uuid, Path),
           ("wellnessPlanMembershipId" = Uuid, Query, description = "The member (required)"),
           ("creditType" = Option<String>, Query, description = "quantity or monetary"),
           ("measurementUnit" = Option<String>, Query, description = "Only credits of this measurementUnit code"),
           ("currency" = Option<String>, Query, description = "Only credits of this currency code"),
           ("creditCategory" = Option<String>, Query, description = "Only credits of this creditCategory code"),
           ("wellnessPlanBenefitId" = Option<Uuid>, Query),
           ("wellnessPlanId" = Option<Uuid>, Query),
           ("asOf" = Option<String>, Query, description = "RFC 3339 instant or a date (midnight UTC): the balance as it stood then"),
           ("expiringWithinDays" = Option<u32>, Query, minimum = 0, maximum = 3660, description = "Window of expiringAmount, default 30"),
           ("Read-After" = Option<i64>, Header, description = "A `Ledger-Position` from one of your writes: the answer then includes that write, even when a read replica serves it (a malformed value is a 400)")),
    responses(
        (status = 200, body = MemberBalance),
        (status = 409, description = "The member has more credits than a balance sums (1000)", body = Problem,
         content_type = "application/problem+json"),
        ReadProblems,
    ),
    security(("bearer" = []))
)]
pub async fn member_balance(
    access: SiteAccess<Read>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mut membership_id = None;
    let mut filter = BalanceFilter::default();
    let mut as_of = None;
    let mut expiring_within_days = EXPIRING_WITHIN_DAYS_DEFAULT;
    for (key, value) in query_pairs(&req)? {
        match key.as_str() {
            "wellnessPlanMembershipId" => membership_id = Some(uuid(&key, &value)?),
            "creditType" => filter.credit_type = Some(credit_type(&key, &value)?),
            // One unit per credit: its currency when monetary, its measurementUnit when not.
            "measurementUnit" | "currency" => {
                if filter.unit_code.is_some() {
                    return Err(ApiError::bad_field(key, "exclusive", "give measurementUnit or currency, not both"));
                }
                filter.unit_code = Some(value);
            }
            "creditCategory" => filter.credit_category_code = Some(value),
            "wellnessPlanBenefitId" => filter.wellness_plan_benefit_id = Some(uuid(&key, &value)?),
            "wellnessPlanId" => filter.wellness_plan_id = Some(uuid(&key, &value)?),
            "asOf" => as_of = Some(instant(&key, &value)?),
            "expiringWithinDays" => expiring_within_days = number(&key, &value, 0, EXPIRING_WITHIN_DAYS_MAX)?,
            _ => return Err(unknown(&key)),
        }
    }
    let membership_id = membership_id.ok_or_else(|| {
        ApiError::bad_field("wellnessPlanMembershipId", "required", "wellnessPlanMembershipId names the member")
    })?;
    let credits =
        read(&state, &req, async |reads| member_credits(reads, access.site_id, membership_id, as_of).await).await?;
    let at = as_of.unwrap_or_else(Utc::now);
    let lines = balance(&credits, &filter, at, Duration::days(i64::from(expiring_within_days)));
    Ok(HttpResponse::Ok().json(MemberBalance {
        wellness_plan_membership_id: membership_id,
        as_of: wire::format_timestamp(&at),
        expiring_within_days,
        data: lines.iter().map(BalanceLineDto::from).collect(),
    }))
}
