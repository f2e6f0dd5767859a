//! The ledger operations (use, waste, expire, reverse, consume) and the audit reads
//! (a credit's history, the site feed).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{Duration, Utc};
use ledger_domain::{Command, ConsumeRequest, CreditType};
use ledger_store::{commands, CommandMeta, FeedCursor, READ_LIMIT_MAX};

use super::credits::command_for;
use super::query::number;
use super::write::{perform, Render, Reply};
use super::{credit_id, etag_text, if_match};
use crate::auth::{Audit, SiteAccess, Write};
use crate::body::JsonBody;
use crate::dto::*;
use crate::problem::{ApiError, ReadProblems, WriteProblems};
use crate::startup::AppState;

/// How far in the future a use's occurredAt may lie (clock skew between services).
pub const OCCURRED_AT_SKEW_MAX_S: i64 = 300;
/// The default and largest page of the site feed.
pub const FEED_LIMIT_DEFAULT: u32 = 100;

/// Replies 200 with the credit and the events the operation wrote.
fn operation_reply() -> Render {
    Box::new(|committed| match committed.credits.first() {
        Some(credit) => Reply::json(
            StatusCode::OK,
            &OperationResult {
                billing_credit: BillingCredit::from(credit),
                events: committed.events.iter().map(LedgerEvent::from).collect(),
            },
        )
        .header("ETag", etag_text(credit.version)),
        None => Reply::json(StatusCode::NOT_FOUND, &serde_json::json!({})),
    })
}

async fn operate(
    access: SiteAccess<Write>,
    req: HttpRequest,
    raw: &[u8],
    command: Command,
    state: &AppState,
) -> Result<HttpResponse, ApiError> {
    let id = credit_id(&req)?;
    let execution = command_for(&access, id, command, if_match(&req)?);
    perform(state, &req, raw, execution, operation_reply()).await
}

#[utoipa::path(
    post, path = "/site/{siteId}/ahds/v1/billing-credit/{billingCreditId}/use", tag = "Ledger",
    summary = "Spend part of a credit",
    params(("siteId" = Uuid, Path), ("billingCreditId" = Uuid, Path),
           ("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key and body get the first response"),
           ("If-Match" = Option<String>, Header)),
    request_body = UseBody,
    responses(
        (status = 200, body = OperationResult),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
pub async fn use_credit(
    access: SiteAccess<Write>,
    req: HttpRequest,
    body: JsonBody<UseBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let JsonBody { value, raw } = body;
    let occurred_at = value.occurred_at.unwrap_or_else(Utc::now);
    if occurred_at > Utc::now() + Duration::seconds(OCCURRED_AT_SKEW_MAX_S) {
        return Err(ApiError::bad_field("occurredAt", "in-the-future", "occurredAt must not be in the future"));
    }
    let id = credit_id(&req)?;
    let meta = CommandMeta::new(access.actor.clone(), occurred_at);
    let command = Command::Use { amount: value.amount, reference: Some(value.reference), note: value.note };
    let execution = commands::command_execution(access.site_id, id, command, meta, if_match(&req)?);
    perform(&state, &req, &raw, execution, operation_reply()).await
}

#[utoipa::path(
    post, path = "/site/{siteId}/ahds/v1/billing-credit/{billingCreditId}/waste", tag = "Ledger",
    summary = "Write part of a credit off",
    params(("siteId" = Uuid, Path), ("billingCreditId" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header), ("If-Match" = Option<String>, Header)),
    request_body = WasteBody,
    responses(
        (status = 200, body = OperationResult),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
pub async fn waste(
    access: SiteAccess<Write>,
    req: HttpRequest,
    body: JsonBody<WasteBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let JsonBody { value, raw } = body;
    operate(access, req, &raw, Command::Waste { amount: value.amount, reason: Some(value.reason) }, &state).await
}

#[utoipa::path(
    post, path = "/site/{siteId}/ahds/v1/billing-credit/{billingCreditId}/expire", tag = "Ledger",
    summary = "Write off all that remains (once; a second time is 409)",
    params(("siteId" = Uuid, Path), ("billingCreditId" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header), ("If-Match" = Option<String>, Header)),
    request_body = ExpireBody,
    responses(
        (status = 200, body = OperationResult),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
pub async fn expire(
    access: SiteAccess<Write>,
    req: HttpRequest,
    body: JsonBody<ExpireBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let JsonBody { value, raw } = body;
    operate(access, req, &raw, Command::Expire { reason: value.reason }, &state).await
}

#[utoipa::path(
    post, path = "/site/{siteId}/ahds/v1/billing-credit/{billingCreditId}/reverse", tag = "Ledger",
    summary = "Undo a use or a waste, in full or in part",
    params(("siteId" = Uuid, Path), ("billingCreditId" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header), ("If-Match" = Option<String>, Header)),
    request_body = ReverseBody,
    responses(
        (status = 200, body = OperationResult),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
pub async fn reverse(
    access: SiteAccess<Write>,
    req: HttpRequest,
    body: JsonBody<ReverseBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let JsonBody { value, raw } = body;
    let command = Command::Reverse { event_id: value.event_id, amount: value.amount, reason: value.reason };
    operate(access, req, &raw, command, &state).await
}

#[utoipa::path(
    post, path = "/site/{siteId}/ahds/v1/billing-credit/consume", tag = "Ledger",
    summary = "Spend across a member's credits, soonest-ending first, in one atomic append",
    params(("siteId" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header)),
    request_body = ConsumeBody,
    responses(
        (status = 200, body = ConsumeResult),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
pub async fn consume(
    access: SiteAccess<Write>,
    req: HttpRequest,
    body: JsonBody<ConsumeBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let JsonBody { value, raw } = body;
    let unit_code = match (value.credit_type, value.currency, value.measurement_unit) {
        (CreditType::Monetary, Some(code), None) | (CreditType::Quantity, None, Some(code)) => code,
        (CreditType::Monetary, ..) => {
            return Err(ApiError::bad_field(
                "currency",
                "required",
                "a monetary consume names its currency (and no measurementUnit)",
            ))
        }
        (CreditType::Quantity, ..) => {
            return Err(ApiError::bad_field(
                "measurementUnit",
                "required",
                "a quantity consume names its measurementUnit (and no currency)",
            ))
        }
    };
    let requested = value.amount;
    let request = ConsumeRequest {
        wellness_plan_membership_id: value.wellness_plan_membership_id,
        amount: value.amount,
        credit_type: value.credit_type,
        unit_code,
        credit_category_code: value.credit_category,
        wellness_plan_benefit_id: value.wellness_plan_benefit_id,
        reference: Some(value.reference),
        allow_partial: value.allow_partial.unwrap_or(false),
    };
    let ids =
        commands::consume_candidates(state.store.as_ref(), access.site_id, request.wellness_plan_membership_id).await?;
    let execution =
        commands::consume_execution(access.site_id, ids, request, CommandMeta::new(access.actor.clone(), Utc::now()));
    let render: Render = Box::new(move |committed| {
        let allocations = commands::allocations(committed);
        Reply::json(
            StatusCode::OK,
            &ConsumeResult {
                requested_amount: requested,
                allocated_amount: allocations.iter().map(|a| a.amount).sum(),
                allocations: allocations.iter().map(AllocationDto::from).collect(),
                events: committed.events.iter().map(LedgerEvent::from).collect(),
            },
        )
    });
    perform(&state, &req, &raw, execution, render).await
}

#[utoipa::path(
    get, path = "/site/{siteId}/ahds/v1/billing-credit/{billingCreditId}/events", tag = "Audit",
    summary = "A credit's history, oldest first (needs billing-credit:audit)",
    params(("siteId" = Uuid, Path), ("billingCreditId" = Uuid, Path),
           ("page" = Option<u32>, Query, minimum = 0, maximum = 1000000, description = "0-based"), ("pageSize" = Option<u32>, Query, minimum = 1, maximum = 100, description = "1 to 100, default 10")),
    responses(
        (status = 200, body = EventPage),
        ReadProblems,
    ),
    security(("bearer" = []))
)]
pub async fn history(
    access: SiteAccess<Audit>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = credit_id(&req)?;
    let (mut page, mut page_size) = (0, 10);
    for (key, value) in query_pairs(&req)? {
        match key.as_str() {
            "page" => page = number(&key, &value, 0, ledger_store::PAGE_MAX)?,
            "pageSize" => page_size = number(&key, &value, 1, ledger_store::PAGE_SIZE_MAX)?,
            _ => {
                return Err(ApiError::bad_field(
                    key.clone(),
                    "unknown-parameter",
                    format!("{key} is not a parameter of this endpoint"),
                ))
            }
        }
    }
    // Deleted credits keep their history: auditors read it after the tombstone too.
    let credit = state.store.load(access.site_id, id).await?.ok_or(ApiError::NotFound)?;
    let after_version = u64::from(page) * u64::from(page_size);
    let events = state.store.read_stream(access.site_id, id, after_version, page_size).await?;
    Ok(HttpResponse::Ok().json(EventPage {
        data: events.iter().map(LedgerEvent::from).collect(),
        meta: PageMeta::new(page, page_size, credit.version),
    }))
}

#[utoipa::path(
    get, path = "/site/{siteId}/ahds/v1/billing-credit-events", tag = "Audit",
    summary = "Every event of the site in commit order, after an opaque cursor (needs billing-credit:audit)",
    params(("siteId" = Uuid, Path), ("after" = Option<String>, Query, description = "The `next` of the previous slice; the start when absent"),
           ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "1 to 1000, default 100")),
    responses(
        (status = 200, body = FeedSlice),
        ReadProblems,
    ),
    security(("bearer" = []))
)]
pub async fn site_feed(
    access: SiteAccess<Audit>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (mut after, mut limit) = (FeedCursor::START, FEED_LIMIT_DEFAULT);
    for (key, value) in query_pairs(&req)? {
        match key.as_str() {
            "after" => {
                after = FeedCursor::decode(&value).ok_or_else(|| {
                    ApiError::bad_field("after", "invalid-cursor", "after must be a cursor this API returned")
                })?
            }
            "limit" => limit = number(&key, &value, 1, READ_LIMIT_MAX)?,
            _ => {
                return Err(ApiError::bad_field(
                    key.clone(),
                    "unknown-parameter",
                    format!("{key} is not a parameter of this endpoint"),
                ))
            }
        }
    }
    let page = state.store.feed(Some(access.site_id), after, limit).await?;
    Ok(HttpResponse::Ok()
        .json(FeedSlice { data: page.events.iter().map(LedgerEvent::from).collect(), next: page.next.encode() }))
}

pub fn query_pairs(req: &HttpRequest) -> Result<Vec<(String, String)>, ApiError> {
    web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| ApiError::bad_field("query", "malformed-query", e.to_string()))
}
