//! Every route of the service.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use ledger_domain::Credit;
use uuid::Uuid;

use crate::dto::BillingCredit;
use crate::problem::ApiError;

pub mod alerts;
pub mod balance;
pub mod consistency;
pub mod credits;
pub mod entries;
pub mod ledger;
pub mod ops;
pub mod pages;
pub mod problems;
pub mod query;
pub mod verify;
pub mod write;

pub const CREDITS_PATH: &str = "/site/{siteId}/ahds/v1/billing-credit";
pub const CREDIT_PATH: &str = "/site/{siteId}/ahds/v1/billing-credit/{billingCreditId}";

pub fn configure(cfg: &mut web::ServiceConfig) {
    // Before the `{billingCreditId}` resource, which would otherwise claim "consume".
    cfg.service(web::resource("/site/{siteId}/ahds/v1/billing-credit/consume").route(web::post().to(ledger::consume)));
    cfg.service(web::resource(format!("{CREDIT_PATH}/use")).route(web::post().to(ledger::use_credit)))
        .service(web::resource(format!("{CREDIT_PATH}/waste")).route(web::post().to(ledger::waste)))
        .service(web::resource(format!("{CREDIT_PATH}/expire")).route(web::post().to(ledger::expire)))
        .service(web::resource(format!("{CREDIT_PATH}/reverse")).route(web::post().to(ledger::reverse)));
    cfg.service(web::resource(format!("{CREDIT_PATH}/events")).route(web::get().to(ledger::history)))
        .service(web::resource(verify::VERIFY_PATH).route(web::get().to(verify::verify_credit)))
        .service(web::resource("/site/{siteId}/ahds/v1/billing-credit-events").route(web::get().to(ledger::site_feed)))
        .service(web::resource(balance::BALANCE_PATH).route(web::get().to(balance::member_balance)))
        .service(web::resource(entries::ENTRIES_PATH).route(web::get().to(entries::member_statement)));
    cfg.service(
        web::resource(CREDITS_PATH)
            .name("credits")
            .route(web::post().to(credits::create))
            .route(web::get().to(credits::list)),
    )
    .service(
        web::resource(CREDIT_PATH)
            .name("credit")
            .route(web::get().to(credits::get_one))
            .route(web::patch().to(credits::patch))
            .route(web::put().to(credits::replace))
            .route(web::delete().to(credits::delete)),
    );
    alerts::configure(cfg);
    ops::configure(cfg);
    problems::configure(cfg);
}

/// The `{billingCreditId}` path segment as a UUID, or a 400 naming it.
pub fn credit_id(req: &HttpRequest) -> Result<Uuid, ApiError> {
    let raw = req.match_info().get("billingCreditId").unwrap_or_default();
    Uuid::parse_str(raw)
        .map_err(|_| ApiError::bad_field("billingCreditId", "invalid-uuid", format!("{raw:?} is not a UUID")))
}

/// The strong ETag of a credit: its stream version.
pub fn etag_text(version: u64) -> String {
    format!("\"{version}\"")
}

pub fn etag(version: u64) -> HeaderValue {
    HeaderValue::from_str(&etag_text(version)).expect("digits are a valid header")
}

/// The version an `If-Match` header demands, if any. `*` demands nothing.
pub fn if_match(req: &HttpRequest) -> Result<Option<u64>, ApiError> {
    let Some(value) = req.headers().get(header::IF_MATCH) else { return Ok(None) };
    let text = value.to_str().unwrap_or_default().trim();
    if text == "*" {
        return Ok(None);
    }
    text.trim_start_matches("W/").trim_matches('"').parse().map(Some).map_err(|_| {
        ApiError::bad_field("If-Match", "invalid-etag", format!("{text:?} is not an ETag of this API (\"<version>\")"))
    })
}

/// 200/201 with the credit as body and its version as ETag.
pub fn credit_response(mut builder: actix_web::HttpResponseBuilder, credit: &Credit) -> HttpResponse {
    builder.insert_header((header::ETAG, etag(credit.version))).json(BillingCredit::from(credit))
}
