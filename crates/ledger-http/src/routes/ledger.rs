//! The ledger operations (use, waste, expire, reverse, consume) and the audit reads
//! (a credit's history, the site feed).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use ledger_domain::Command;
use ledger_store::{commands, CommandMeta, FeedCursor, RecordedWindow, StoreError, READ_LIMIT_MAX};
use ledger_wire::Body;

use super::consistency::read;
use super::query::{instant, number, query_pairs, unknown};
use super::write::{perform, Render, Reply};
use super::{credit_id, etag_text, if_match};
use crate::auth::{Audit, SiteAccess, Write};
use crate::body::JsonBody;
use crate::dto::*;
use crate::problem::{ApiError, ReadProblems, WriteProblems};
use crate::startup::AppState;

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

/// Runs an operation's command on the path's credit, judged at the body's occurredAt
/// (now when it has none).
async fn operate<B: Body>(
    access: SiteAccess<Write>,
    req: HttpRequest,
    body: JsonBody<B>,
    into_command: fn(B) -> Command,
    state: &AppState,
) -> Result<HttpResponse, ApiError> {
    let id = credit_id(&req)?;
    let JsonBody { value, raw } = body;
    let meta = CommandMeta::new(access.actor.clone(), value.occurred_at().unwrap_or_else(Utc::now));
    let execution = commands::command_execution(access.site_id, id, into_command(value), meta, if_match(&req)?);
    perform(state, &req, &raw, execution, operation_reply()).await
}

#[utoipa::path(
    post, path = "/site/{siteId}/ahds/v1/billing-credit/{billingCreditId}/use", tag = "Ledger",
    summary = "Spend part of a credit",
    params(("siteId" = Uuid, Path), ("billingCreditId" = Uuid, Path),
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
    operate(access, req, body, UseBody::into_command, &state).await
}

#[utoipa::path(
    post, path = "/site/{siteId}/ahds/v1/billing-credit/{billingCreditId}/waste", tag = "Ledger",
    summary = "Write part of a credit off",
    params(("siteId" = Uuid, Path), ("billingCreditId" = Uuid, Path), ("If-Match" = Option<String>, Header)),
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
    operate(access, req, body, WasteBody::into_command, &state).await
}

#[utoipa::path(
    post, path = "/site/{siteId}/ahds/v1/billing-credit/{billingCreditId}/expire", tag = "Ledger",
    summary = "Write off all that remains (once; a second time is 409)",
    params(("siteId" = Uuid, Path), ("billingCreditId" = Uuid, Path), ("If-Match" = Option<String>, Header)),
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
    operate(access, req, body, ExpireBody::into_command, &state).await
}

#[utoipa::path(
    post, path = "/site/{siteId}/ahds/v1/billing-credit/{billingCreditId}/reverse", tag = "Ledger",
    summary = "Undo a use or a waste, in full or in part",
    params(("siteId" = Uuid, Path), ("billingCreditId" = Uuid, Path), ("If-Match" = Option<String>, Header)),
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
    operate(access, req, body, ReverseBody::into_command, &state).await
}

#[utoipa::path(
    post, path = "/site/{siteId}/ahds/v1/billing-credit/consume", tag = "Ledger",
    summary = "Spend across a member's credits, soonest-ending first, in one atomic append",
    params(("siteId" = Uuid, Path)),
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
    let request = value.into_request()?;
    let requested = request.amount;
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
           ("page" = Option<u32>, Query, minimum = 0, maximum = 1000000, description = "0-based"), ("pageSize" = Option<u32>, Query, minimum = 1, maximum = 100, description = "1 to 100, default 10"),
           ("Read-After" = Option<i64>, Header, description = "A `Ledger-Position` from one of your writes: the answer then includes that write, even when a read replica serves it (a malformed value is a 400)")),
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
            _ => return Err(unknown(&key)),
        }
    }
    // Deleted credits keep their history: auditors read it after the tombstone too.
    let after_version = u64::from(page) * u64::from(page_size);
    let (credit, events) = read(&state, &req, async |reads| {
        let Some(credit) = reads.load(access.site_id, id).await? else { return Ok(None) };
        let events = reads.read_stream(access.site_id, id, after_version, page_size).await?;
        Ok::<_, StoreError>(Some((credit, events)))
    })
    .await?
    .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(EventPage {
        data: events.iter().map(LedgerEvent::from).collect(),
        meta: PageMeta::new(page, page_size, credit.version),
    }))
}

#[utoipa::path(
    get, path = "/site/{siteId}/ahds/v1/billing-credit-events", tag = "Audit",
    summary = "Every event of the site in commit order, after an opaque cursor (needs billing-credit:audit)",
    params(("siteId" = Uuid, Path), ("after" = Option<String>, Query, description = "The `next` of the previous slice; the start when absent"),
           ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "1 to 1000, default 100"),
           ("recordedFrom" = Option<String>, Query, description = "Only events recorded at or after this instant (RFC 3339)"),
           ("recordedTo" = Option<String>, Query, description = "Only events recorded before this instant (RFC 3339)"),
           ("Read-After" = Option<i64>, Header, description = "A `Ledger-Position` from one of your writes: the answer then includes that write, even when a read replica serves it (a malformed value is a 400)")),
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
    let (mut after, mut limit, mut window) = (FeedCursor::START, FEED_LIMIT_DEFAULT, RecordedWindow::ALL);
    for (key, value) in query_pairs(&req)? {
        match key.as_str() {
            "after" => {
                after = FeedCursor::decode(&value).ok_or_else(|| {
                    ApiError::bad_field("after", "invalid-cursor", "after must be a cursor this API returned")
                })?
            }
            "limit" => limit = number(&key, &value, 1, READ_LIMIT_MAX)?,
            "recordedFrom" => window.from = Some(instant(&key, &value)?),
            "recordedTo" => window.to = Some(instant(&key, &value)?),
            _ => return Err(unknown(&key)),
        }
    }
    let page =
        read(&state, &req, async |reads| reads.feed_window(Some(access.site_id), window, after, limit).await).await?;
    // The events before an unreadable one are served; the unreadable one is a 500 that
    // names it, until an operator repairs it (docs/operations.md): skipping it here
    // would hide a hole in an audit trail.
    let mut data = Vec::with_capacity(page.events.len());
    let mut served_up_to = after;
    for stored in &page.events {
        match stored {
            Ok(event) => {
                data.push(LedgerEvent::from(event));
                served_up_to = event.cursor;
            }
            Err(undecodable) if data.is_empty() => {
                return Err(StoreError::Undecodable(Box::new(undecodable.clone())).into())
            }
            Err(_) => return Ok(HttpResponse::Ok().json(FeedSlice { data, next: served_up_to.encode() })),
        }
    }
    Ok(HttpResponse::Ok().json(FeedSlice { data, next: page.next.encode() }))
}
