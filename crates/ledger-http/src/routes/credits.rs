//! The six seed endpoints. Every write is a command run by the store under the credit's
//! lock; nothing is updated in place.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use ledger_domain::event::StatusChange;
use ledger_domain::{decide, Command, DomainError};
use ledger_store::{commands, history, CommandMeta, Execution};
use uuid::Uuid;

use super::consistency::read;
use super::query::{instant, parse_list_query, query_pairs, unknown};
use super::write::{perform, Render, Reply};
use super::{credit_id, credit_response, etag_text, if_match};
use crate::auth::{Read, SiteAccess, Write};
use crate::body::JsonBody;
use crate::dto::{BillingCredit, BillingCreditBody, BillingCreditList, BillingCreditPatchBody, PageMeta};
use crate::problem::{ApiError, ReadProblems, WriteProblems};
use crate::startup::AppState;

/// One command on one credit for the caller, judged now.
pub fn command_for<S>(
    access: &SiteAccess<S>,
    billing_credit_id: Uuid,
    command: Command,
    expected_version: Option<u64>,
) -> Execution {
    let meta = CommandMeta::new(access.actor.clone(), Utc::now());
    commands::command_execution(access.site_id, billing_credit_id, command, meta, expected_version)
}

/// Replies with the credit a command left (status `status`, ETag its version).
pub fn credit_reply(status: StatusCode) -> Render {
    Box::new(move |committed| match committed.credits.first() {
        Some(credit) => Reply::json(status, &BillingCredit::from(credit)).header("ETag", etag_text(credit.version)),
        None => Reply::json(StatusCode::NOT_FOUND, &serde_json::json!({})),
    })
}

#[utoipa::path(
    post, path = "/site/{siteId}/ahds/v1/billing-credit", tag = "Billing Credit",
    summary = "Create a billing credit",
    params(("siteId" = Uuid, Path, description = "Site identifier")),
    request_body = BillingCreditBody,
    responses(
        (status = 201, description = "Billing Credit created successfully", body = BillingCredit, headers(("ETag" = String))),
        (status = 200, description = "The same billingCreditId and body were sent before: the existing credit", body = BillingCredit),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
pub async fn create(
    access: SiteAccess<Write>,
    req: HttpRequest,
    body: JsonBody<BillingCreditBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let JsonBody { value, raw } = body;
    let given_id = value.billing_credit_id;
    let id = given_id.unwrap_or_else(Uuid::new_v4);
    let draft = value.into_draft();
    if given_id.is_some() {
        // A retried create: the same body gets the credit back, another body a 409.
        if let Some(first) = state.store.read_stream(access.site_id, id, 0, 1).await?.first() {
            let wanted = decide(None, &Command::Issue(draft), Utc::now())?;
            let existing = state.store.load(access.site_id, id).await?.filter(|c| !c.deleted);
            return match existing {
                Some(credit) if wanted.first() == Some(&first.event) => {
                    Ok(credit_response(HttpResponse::Ok(), &credit))
                }
                _ => Err(DomainError::AlreadyExists.into()),
            };
        }
    }
    let location = format!("/site/{}/ahds/v1/billing-credit/{id}", access.site_id);
    let created = credit_reply(StatusCode::CREATED);
    let render: Render = Box::new(move |committed| created(committed).header("Location", location));
    perform(&state, &req, &raw, command_for(&access, id, Command::Issue(draft), None), render).await
}

#[utoipa::path(
    get, path = "/site/{siteId}/ahds/v1/billing-credit", tag = "Billing Credit",
    summary = "List billing credits",
    params(("siteId" = Uuid, Path, description = "Site identifier"), super::query::ListParams,
           ("Read-After" = Option<i64>, Header, description = "A `Ledger-Position` from one of your writes: the answer then includes that write, even when a read replica serves it (a malformed value is a 400)")),
    responses(
        (status = 200, description = "One page of billing credits", body = BillingCreditList),
        ReadProblems,
    ),
    security(("bearer" = []))
)]
pub async fn list(
    access: SiteAccess<Read>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = parse_list_query(&req)?;
    let page = read(&state, &req, async |reads| reads.list(access.site_id, &query).await).await?;
    Ok(HttpResponse::Ok().json(BillingCreditList {
        data: page.credits.iter().map(BillingCredit::from).collect(),
        meta: PageMeta::new(query.page, query.page_size, page.total),
    }))
}

#[utoipa::path(
    get, path = "/site/{siteId}/ahds/v1/billing-credit/{billingCreditId}", tag = "Billing Credit",
    summary = "Get a billing credit",
    params(("siteId" = Uuid, Path), ("billingCreditId" = Uuid, Path),
           ("asOf" = Option<String>, Query, description = "RFC 3339 instant (or a date, midnight UTC; year 0001 to 9999, no leap second): the credit as it stood then, rebuilt from its events")),
    responses(
        (status = 200, description = "Billing Credit found", body = BillingCredit, headers(("ETag" = String))),
        ReadProblems,
    ),
    security(("bearer" = []))
)]
pub async fn get_one(
    access: SiteAccess<Read>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = credit_id(&req)?;
    let mut as_of = None;
    for (key, value) in query_pairs(&req)? {
        match key.as_str() {
            "asOf" => as_of = Some(instant(&key, &value)?),
            _ => return Err(unknown(&key)),
        }
    }
    let credit = match as_of {
        Some(instant) => history::as_of(state.store.as_ref(), access.site_id, id, instant).await?,
        None => state.store.load(access.site_id, id).await?.filter(|c| !c.deleted),
    };
    Ok(credit_response(HttpResponse::Ok(), &credit.ok_or(ApiError::NotFound)?))
}

#[utoipa::path(
    patch, path = "/site/{siteId}/ahds/v1/billing-credit/{billingCreditId}", tag = "Billing Credit",
    summary = "Change some fields of a billing credit",
    params(("siteId" = Uuid, Path), ("billingCreditId" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "ETag the credit must still have")),
    request_body = BillingCreditPatchBody,
    responses(
        (status = 200, description = "Billing Credit updated successfully", body = BillingCredit),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
pub async fn patch(
    access: SiteAccess<Write>,
    req: HttpRequest,
    body: JsonBody<BillingCreditPatchBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = credit_id(&req)?;
    let execution = command_for(&access, id, Command::Patch(body.value.into_patch()), if_match(&req)?);
    perform(&state, &req, &body.raw, execution, credit_reply(StatusCode::OK)).await
}

#[utoipa::path(
    put, path = "/site/{siteId}/ahds/v1/billing-credit/{billingCreditId}", tag = "Billing Credit",
    summary = "Replace a billing credit",
    params(("siteId" = Uuid, Path), ("billingCreditId" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "ETag the credit must still have")),
    request_body = BillingCreditBody,
    responses(
        (status = 200, description = "Billing Credit replaced successfully", body = BillingCredit),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
pub async fn replace(
    access: SiteAccess<Write>,
    req: HttpRequest,
    body: JsonBody<BillingCreditBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = credit_id(&req)?;
    if body.value.billing_credit_id.is_some_and(|given| given != id) {
        return Err(ApiError::bad_field("billingCreditId", "path-mismatch", "billingCreditId differs from the path"));
    }
    let JsonBody { value, raw } = body;
    let execution = command_for(&access, id, Command::Replace(value.into_draft()), if_match(&req)?);
    perform(&state, &req, &raw, execution, credit_reply(StatusCode::OK)).await
}

#[utoipa::path(
    delete, path = "/site/{siteId}/ahds/v1/billing-credit/{billingCreditId}", tag = "Billing Credit",
    summary = "Delete a billing credit (a tombstone: the history stays for audit)",
    params(("siteId" = Uuid, Path), ("billingCreditId" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "ETag the credit must still have")),
    responses(
        (status = 204, description = "Billing Credit deleted"),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
pub async fn delete(
    access: SiteAccess<Write>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = credit_id(&req)?;
    let execution = command_for(&access, id, Command::Delete(StatusChange::default()), if_match(&req)?);
    let render: Render = Box::new(|committed| {
        let version = committed.credits.first().map_or(0, |c| c.version);
        Reply { status: StatusCode::NO_CONTENT, body: None, headers: vec![("ETag".into(), etag_text(version))] }
    });
    perform(&state, &req, &[], execution, render).await
}
