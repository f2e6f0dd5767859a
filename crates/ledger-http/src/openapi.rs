//! The OpenAPI 3.1 document, generated from the handlers and DTOs.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ObjectBuilder, RefOr, Required, Type};
use utoipa::{Modify, OpenApi};

use crate::dto::*;
use crate::openapi_examples::Explained;
use crate::problem::{FieldError, Problem};
use crate::routes::{alerts, balance, credits, entries, ledger, verify};

#[derive(OpenApi)]
#[openapi(
    info(title = "AHDS Store API — Billing Credit ledger", version = "1.0",
         description = "Event-sourced ledger of wellness-plan billing credits. Every change is an immutable event; these endpoints serve the projections."),
    servers((url = "/", description = "The server that serves this document")),
    paths(credits::create, credits::list, credits::get_one, credits::patch, credits::replace, credits::delete,
          ledger::use_credit, ledger::waste, ledger::expire, ledger::reverse, ledger::consume, ledger::history, ledger::site_feed, verify::verify_credit, balance::member_balance, entries::member_statement,
          alerts::create, alerts::list, alerts::get_one, alerts::delete, alerts::rotate_secret, alerts::deliveries, alerts::redeliver, alerts::get_settings, alerts::put_settings),
    components(schemas(BillingCredit, BillingCreditBody, BillingCreditPatchBody, BillingCreditList, PageMeta, CodingDto, Problem, FieldError,
        UseBody, WasteBody, ExpireBody, ReverseBody, ConsumeBody, CodeOrCoding, LedgerEvent, OperationResult, AllocationDto, ConsumeResult, EventPage, FeedSlice, MemberBalance, BalanceLineDto, EntryDto, EntryPageDto, EntryPageMeta, CreditVerificationDto, MismatchDto,
        WebhookBody, WebhookDto, WebhookWithSecret, WebhookList, DeliveryDto, DeliveryList, AlertSettingsBody, AlertSettingsDto)),
    modifiers(&BearerAuth, &IdempotencyKeys, &Explained),
    tags((name = "Billing Credit", description = "Wellness-plan billing credits (the seed API)"),
         (name = "Ledger", description = "Spending, writing off, expiring and reversing credits"),
         (name = "Audit", description = "The history behind every balance"),
         (name = "Balance", description = "What a member has left, and what happened to it"),
         (name = "Alerts", description = "Balance alerts pushed to webhooks: endpoints, delivery log, thresholds"))
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

/// Declares `Idempotency-Key` on every write (POST, PUT, PATCH, DELETE) and the
/// `Idempotent-Replayed` and `Ledger-Position` headers on its answers, in one place:
/// `perform` honours the key and sets the position on every write, so no route can forget
/// to say so.
struct IdempotencyKeys;

impl Modify for IdempotencyKeys {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            // The alert administration API stores no Idempotency-Key: its writes are
            // configuration, repeated harmlessly or refused (409) by their own rules.
            if path.contains("billing-credit-webhooks") || path.contains("billing-credit-alert-settings") {
                continue;
            }
            for operation in [&mut item.post, &mut item.put, &mut item.patch, &mut item.delete].into_iter().flatten() {
                declare_idempotency(operation);
                declare_ledger_position(operation);
            }
        }
    }
}

fn declare_idempotency(operation: &mut Operation) {
    let string = || ObjectBuilder::new().schema_type(Type::String);
    let parameters = operation.parameters.get_or_insert_with(Vec::new);
    parameters.retain(|p| !p.name.eq_ignore_ascii_case("Idempotency-Key"));
    parameters.push(
        ParameterBuilder::new()
            .name("Idempotency-Key")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(format!(
                "1 to {} visible ASCII characters, unique per request. A retry with the same key and the same \
                 body (compared as canonical JSON) gets the first outcome again, refusals included, with \
                 `Idempotent-Replayed: true`; the same key with a different body is a 409.",
                crate::routes::write::IDEMPOTENCY_KEY_MAX_LEN
            )))
            .schema(Some(string().min_length(Some(1)).max_length(Some(crate::routes::write::IDEMPOTENCY_KEY_MAX_LEN))))
            .build(),
    );
    let replayed = HeaderBuilder::new()
        .schema(string().enum_values(Some(["true"])))
        .description(Some("Present when this is the kept outcome of an earlier request with the same Idempotency-Key"))
        .build();
    for response in operation.responses.responses.values_mut() {
        if let RefOr::T(response) = response {
            response.headers.insert("Idempotent-Replayed".into(), replayed.clone());
        }
    }
}

/// `Ledger-Position` on a write's successful answers: the token for `Read-After`.
fn declare_ledger_position(operation: &mut Operation) {
    let position = HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)))
        .description(Some(
            "The position of the last event this write appended (absent when it appended none). Send it back as \
             `Read-After` on a read to get an answer that includes this write, even from a read replica.",
        ))
        .build();
    for (status, response) in operation.responses.responses.iter_mut() {
        if let (true, RefOr::T(response)) = (status.starts_with('2'), response) {
            response.headers.insert(crate::routes::consistency::LEDGER_POSITION_HEADER.into(), position.clone());
        }
    }
}
