//! The six seed endpoints. Every write is a command run by the store under the credit's
//! lock; nothing is updated in place.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use ledger_domain::event::StatusChange;
use ledger_domain::{decide, Command, Credit, DomainError, Event};
use ledger_store::{commands, Committed, CommandMeta, StoreError};
use uuid::Uuid;

use super::{credit_id, credit_response, etag, if_match, query::parse_list_query};
use crate::auth::{Read, SiteAccess, Write};
use crate::body::JsonBody;
use crate::dto::{BillingCredit, BillingCreditBody, BillingCreditList, BillingCreditPatchBody, PageMeta};
use crate::problem::{ApiError, Problem};
use crate::startup::AppState;

/// Runs one command on one credit for the caller, counting what it appended.
pub async fn run_command<S>(
    state: &AppState,
    access: &SiteAccess<S>,
    billing_credit_id: Uuid,
    command: Command,
    expected_version: Option<u64>,
) -> Result<Committed, StoreError> {
    let meta = CommandMeta::new(access.actor.clone(), Utc::now());
    let committed =
        commands::run_command(state.store.as_ref(), access.site_id, billing_credit_id, command, meta, expected_version).await?;
    if !committed.replayed {
        metrics::counter!("ledger_events_appended_total").increment(committed.events.len() as u64);
    }
    Ok(committed)
}

fn the_credit(committed: &Committed) -> Result<&Credit, ApiError> {
    committed.credits.first().ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a command returned no credit")))
}

const PROBLEM: &str = "application/problem+json";

#[utoipa::path(
    post, path = "/site/{siteId}/ahds/v1/billing-credit", tag = "Billing Credit",
    summary = "Create a billing credit",
    params(("siteId" = Uuid, Path, description = "Site identifier")),
    request_body = BillingCreditBody,
    responses(
        (status = 201, description = "Billing Credit created successfully", body = BillingCredit, headers(("ETag" = String))),
        (status = 200, description = "The same billingCreditId and body were sent before: the existing credit", body = BillingCredit),
        (status = 400, body = Problem, content_type = PROBLEM), (status = 401, body = Problem, content_type = PROBLEM),
        (status = 403, body = Problem, content_type = PROBLEM), (status = 409, body = Problem, content_type = PROBLEM),
        (status = 413, body = Problem, content_type = PROBLEM), (status = 415, body = Problem, content_type = PROBLEM),
        (status = 422, body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    access: SiteAccess<Write>,
    body: JsonBody<BillingCreditBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = body.value;
    let id = body.billing_credit_id.unwrap_or_else(Uuid::new_v4);
    let draft = body.into_draft();
    match run_command(&state, &access, id, Command::Issue(draft.clone()), None).await {
        Ok(committed) => {
            let credit = the_credit(&committed)?;
            let location = format!("/site/{}/ahds/v1/billing-credit/{id}", access.site_id);
            Ok(credit_response(HttpResponse::Created().insert_header((header::LOCATION, location)).take(), credit))
        }
        Err(StoreError::Domain(DomainError::AlreadyExists) | StoreError::ConcurrentWrite) => {
            // A retried create: the same body gets the credit back, another body a 409.
            let first = state.store.read_stream(access.site_id, id, 0, 1).await?;
            let wanted = decide(None, &Command::Issue(draft), Utc::now())?;
            let existing = state.store.load(access.site_id, id).await?.filter(|c| !c.deleted);
            match (first.first(), existing) {
                (Some(first), Some(credit)) if wanted.first() == Some(&first.event) => {
                    Ok(credit_response(HttpResponse::Ok(), &credit))
                }
                _ => Err(DomainError::AlreadyExists.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

#[utoipa::path(
    get, path = "/site/{siteId}/ahds/v1/billing-credit", tag = "Billing Credit",
    summary = "List billing credits",
    params(("siteId" = Uuid, Path, description = "Site identifier"), super::query::ListParams),
    responses(
        (status = 200, description = "One page of billing credits", body = BillingCreditList),
        (status = 400, body = Problem, content_type = PROBLEM), (status = 401, body = Problem, content_type = PROBLEM),
        (status = 403, body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = []))
)]
pub async fn list(access: SiteAccess<Read>, req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let query = parse_list_query(&req)?;
    let page = state.store.list(access.site_id, &query).await?;
    Ok(HttpResponse::Ok().json(BillingCreditList {
        data: page.credits.iter().map(BillingCredit::from).collect(),
        meta: PageMeta::new(query.page, query.page_size, page.total),
    }))
}

#[utoipa::path(
    get, path = "/site/{siteId}/ahds/v1/billing-credit/{billingCreditId}", tag = "Billing Credit",
    summary = "Get a billing credit",
    params(("siteId" = Uuid, Path), ("billingCreditId" = Uuid, Path)),
    responses(
        (status = 200, description = "Billing Credit found", body = BillingCredit, headers(("ETag" = String))),
        (status = 400, body = Problem, content_type = PROBLEM), (status = 401, body = Problem, content_type = PROBLEM),
        (status = 403, body = Problem, content_type = PROBLEM), (status = 404, body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = []))
)]
pub async fn get_one(access: SiteAccess<Read>, req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let id = credit_id(&req)?;
    let credit = state.store.load(access.site_id, id).await?.filter(|c| !c.deleted).ok_or(ApiError::NotFound)?;
    Ok(credit_response(HttpResponse::Ok(), &credit))
}

#[utoipa::path(
    patch, path = "/site/{siteId}/ahds/v1/billing-credit/{billingCreditId}", tag = "Billing Credit",
    summary = "Change some fields of a billing credit",
    params(("siteId" = Uuid, Path), ("billingCreditId" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "ETag the credit must still have")),
    request_body = BillingCreditPatchBody,
    responses(
        (status = 200, description = "Billing Credit updated successfully", body = BillingCredit),
        (status = 400, body = Problem, content_type = PROBLEM), (status = 401, body = Problem, content_type = PROBLEM),
        (status = 403, body = Problem, content_type = PROBLEM), (status = 404, body = Problem, content_type = PROBLEM),
        (status = 412, body = Problem, content_type = PROBLEM), (status = 415, body = Problem, content_type = PROBLEM),
        (status = 422, body = Problem, content_type = PROBLEM),
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
    let committed = run_command(&state, &access, id, Command::Patch(body.value.into_patch()), if_match(&req)?).await?;
    Ok(credit_response(HttpResponse::Ok(), the_credit(&committed)?))
}

#[utoipa::path(
    put, path = "/site/{siteId}/ahds/v1/billing-credit/{billingCreditId}", tag = "Billing Credit",
    summary = "Replace a billing credit",
    params(("siteId" = Uuid, Path), ("billingCreditId" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "ETag the credit must still have")),
    request_body = BillingCreditBody,
    responses(
        (status = 200, description = "Billing Credit replaced successfully", body = BillingCredit),
        (status = 400, body = Problem, content_type = PROBLEM), (status = 401, body = Problem, content_type = PROBLEM),
        (status = 403, body = Problem, content_type = PROBLEM), (status = 404, body = Problem, content_type = PROBLEM),
        (status = 412, body = Problem, content_type = PROBLEM), (status = 415, body = Problem, content_type = PROBLEM),
        (status = 422, body = Problem, content_type = PROBLEM),
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
    let committed = run_command(&state, &access, id, Command::Replace(body.value.into_draft()), if_match(&req)?).await?;
    Ok(credit_response(HttpResponse::Ok(), the_credit(&committed)?))
}

#[utoipa::path(
    delete, path = "/site/{siteId}/ahds/v1/billing-credit/{billingCreditId}", tag = "Billing Credit",
    summary = "Delete a billing credit (a tombstone: the history stays for audit)",
    params(("siteId" = Uuid, Path), ("billingCreditId" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "ETag the credit must still have")),
    responses(
        (status = 204, description = "Billing Credit deleted"),
        (status = 400, body = Problem, content_type = PROBLEM), (status = 401, body = Problem, content_type = PROBLEM),
        (status = 403, body = Problem, content_type = PROBLEM), (status = 404, body = Problem, content_type = PROBLEM),
        (status = 412, body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = []))
)]
pub async fn delete(access: SiteAccess<Write>, req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let id = credit_id(&req)?;
    let committed = run_command(&state, &access, id, Command::Delete(StatusChange::default()), if_match(&req)?).await?;
    let credit = the_credit(&committed)?;
    debug_assert!(committed.events.iter().any(|e| matches!(e.event, Event::CreditDeleted(_))));
    Ok(HttpResponse::NoContent().insert_header((header::ETAG, etag(credit.version))).finish())
}
