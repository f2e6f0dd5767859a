//! The OpenAPI 3.1 document, generated from the handlers and DTOs.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::dto::*;
use crate::problem::{FieldError, Problem};
use crate::routes::{credits, ledger};

#[derive(OpenApi)]
#[openapi(
    info(title = "AHDS Store API — Billing Credit ledger", version = "1.0",
         description = "Event-sourced ledger of wellness-plan billing credits. Every change is an immutable event; these endpoints serve the projections."),
    servers((url = "http://localhost:8083", description = "Local Development")),
    paths(credits::create, credits::list, credits::get_one, credits::patch, credits::replace, credits::delete,
          ledger::use_credit, ledger::waste, ledger::expire, ledger::reverse, ledger::consume, ledger::history, ledger::site_feed),
    components(schemas(BillingCredit, BillingCreditBody, BillingCreditPatchBody, BillingCreditList, PageMeta, CodingDto, Problem, FieldError,
        UseBody, WasteBody, ExpireBody, ReverseBody, ConsumeBody, CodeOrCoding, LedgerEvent, OperationResult, AllocationDto, ConsumeResult, EventPage, FeedSlice)),
    modifiers(&BearerAuth),
    tags((name = "Billing Credit", description = "Wellness-plan billing credits (the seed API)"),
         (name = "Ledger", description = "Spending, writing off, expiring and reversing credits"),
         (name = "Audit", description = "The history behind every balance"))
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}
