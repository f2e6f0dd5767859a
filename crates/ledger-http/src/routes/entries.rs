//! `GET …/billing-credit-entries`: a member's statement, every movement of their credits'
//! balances, newest first, in cursor pages.

use actix_web::{web, HttpRequest, HttpResponse};
use ledger_domain::statement::EntryType;
use ledger_store::statement::{member_entries, EntryCursor, EntryQuery, ENTRIES_LIMIT_MAX};

use super::consistency::read;
use super::query::{instant, number, query_pairs_repeating, unknown, uuid};
use crate::auth::{Read, SiteAccess};
use crate::dto::{EntryDto, EntryPageDto, EntryPageMeta};
use crate::problem::{ApiError, Problem, ReadProblems};
use crate::startup::AppState;

pub const ENTRIES_PATH: &str = "/site/{siteId}/ahds/v1/billing-credit-entries";
/// The page size when the caller names none.
pub const ENTRIES_LIMIT_DEFAULT: u32 = 20;

#[utoipa::path(
    get, path = "/site/{siteId}/ahds/v1/billing-credit-entries", tag = "Balance",
    summary = "A member's statement: every movement of their credits, newest first",
    params(("siteId" = Uuid, Path),
           ("wellnessPlanMembershipId" = Uuid, Query, description = "The member (required)"),
           ("billingCreditId" = Option<Uuid>, Query, description = "Only this credit's entries"),
           ("type" = Option<Vec<String>>, Query, explode = true, description = "issued, used, wasted, expired, reversed or adjusted; repeatable"),
           ("recordedFrom" = Option<String>, Query, description = "Recorded at or after this instant"),
           ("recordedTo" = Option<String>, Query, description = "Recorded before this instant"),
           ("reference" = Option<String>, Query, description = "Only uses with this reference"),
           ("cursor" = Option<String>, Query, description = "The nextCursor of the previous page"),
           ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "1 to 100, default 20"),
           ("Read-After" = Option<i64>, Header, description = "A `Ledger-Position` from one of your writes: the answer then includes that write, even when a read replica serves it (a malformed value is a 400)")),
    responses(
        (status = 200, body = EntryPageDto),
        (status = 409, description = "The member has more credits than a statement reads (1000)", body = Problem,
         content_type = "application/problem+json"),
        ReadProblems,
    ),
    security(("bearer" = []))
)]
pub async fn member_statement(
    access: SiteAccess<Read>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mut membership_id = None;
    let mut billing_credit_id = None;
    let mut types = vec![];
    let (mut recorded_from, mut recorded_to, mut reference, mut after) = (None, None, None, None);
    let mut limit = ENTRIES_LIMIT_DEFAULT;
    for (key, value) in query_pairs_repeating(&req, &["type"])? {
        match key.as_str() {
            "wellnessPlanMembershipId" => membership_id = Some(uuid(&key, &value)?),
            "billingCreditId" => billing_credit_id = Some(uuid(&key, &value)?),
            "type" => types.push(EntryType::parse(&value).ok_or_else(|| {
                ApiError::bad_field(
                    key.clone(),
                    "one-of",
                    "type must be one of issued, used, wasted, expired, reversed, adjusted",
                )
            })?),
            "recordedFrom" => recorded_from = Some(instant(&key, &value)?),
            "recordedTo" => recorded_to = Some(instant(&key, &value)?),
            "reference" => reference = Some(value),
            "cursor" => {
                after = Some(EntryCursor::decode(&value).ok_or_else(|| {
                    ApiError::bad_field(key.clone(), "invalid-cursor", "cursor must be a nextCursor of this endpoint")
                })?)
            }
            "limit" => limit = number(&key, &value, 1, ENTRIES_LIMIT_MAX)?,
            _ => return Err(unknown(&key)),
        }
    }
    let membership_id = membership_id.ok_or_else(|| {
        ApiError::bad_field("wellnessPlanMembershipId", "required", "wellnessPlanMembershipId names the member")
    })?;
    let query =
        EntryQuery { membership_id, billing_credit_id, types, recorded_from, recorded_to, reference, after, limit };
    let page = read(&state, &req, async |reads| member_entries(reads, access.site_id, &query).await).await?;
    Ok(HttpResponse::Ok().json(EntryPageDto {
        data: page.entries.iter().map(EntryDto::from).collect(),
        meta: EntryPageMeta { next_cursor: page.next.map(|c| c.encode()), has_more: page.next.is_some() },
    }))
}
