//! What the generated OpenAPI document says beyond the types, in one place: a
//! description for every parameter the handlers leave undescribed (by name), and an
//! example for every request body (by its schema). `/docs` shows both; a test checks
//! that no parameter or body is left without.

use serde_json::{json, Value};
use utoipa::openapi::example::ExampleBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::RefOr;
use utoipa::Modify;

/// Descriptions of the parameters many operations share.
const PARAMETERS: &[(&str, &str)] = &[
    ("siteId", "The site (tenant) the data belongs to; the token's `sites` claim must grant it (or be `*`)."),
    ("billingCreditId", "The credit's id (a UUID): the one given at creation, or generated then."),
    ("webhookId", "The webhook endpoint's id (a UUID), as its creation returned it."),
    ("deliveryId", "The delivery's id (a UUID), as the endpoint's delivery log lists it."),
    (
        "If-Match",
        "`\"<version>\"`, the ETag of an earlier read: the write applies only while the credit is at that version, \
         otherwise 412 (`version-mismatch`). Absent or `*`: unconditional.",
    ),
    ("isActive", "Only active (`true`) or only inactive (`false`) credits."),
    ("wellnessPlanId", "Only credits of this wellness plan."),
    ("wellnessPlanBenefitId", "Only credits of this wellness-plan benefit."),
    ("wellnessPlanMembershipId", "Only credits of this membership (the member)."),
    ("wellnessPlanMembershipCycleId", "Only credits of this membership cycle."),
    ("wellnessPlanMembershipStatusPeriodId", "Only credits of this membership status period."),
];

const MEMBER: &str = "9a0f6c1e-2b3d-4e5f-8a9b-0c1d2e3f4a5b";

/// An example body per request schema.
fn body_example(schema: &str) -> Option<Value> {
    Some(match schema {
        "BillingCreditBody" => json!({
            "creditType": "quantity", "startDate": "2025-01-01", "endDate": "2030-01-01", "totalAmount": 3,
            "wellnessPlanMembershipId": MEMBER,
            "measurementUnit": { "code": "visit", "system": "urn:heydonto:units", "display": "Visit" }
        }),
        "BillingCreditPatchBody" => json!({ "usedAmount": 1, "endDate": "2031-01-01" }),
        "UseBody" => json!({ "amount": 1, "reference": "visit-2025-0042", "note": "cleaning" }),
        "WasteBody" => json!({ "amount": 1, "reason": "missed appointment" }),
        "ExpireBody" => json!({ "reason": "cycle ended" }),
        "ReverseBody" => {
            json!({ "eventId": "0b9f8a1e-7c6d-4e5f-9a8b-1c2d3e4f5a6b", "amount": 1, "reason": "visit cancelled" })
        }
        "ConsumeBody" => json!({
            "wellnessPlanMembershipId": MEMBER, "amount": 4, "creditType": "quantity",
            "measurementUnit": "visit", "reference": "invoice-7781"
        }),
        "WebhookBody" => json!({ "url": "https://example.com/ledger-alerts", "description": "front desk alerts" }),
        "AlertSettingsBody" => {
            json!({ "lowThreshold": 1, "lowThresholds": { "visit": 1, "USD": 25 }, "expiringWithinDays": 30 })
        }
        _ => return None,
    })
}

pub struct Explained;

impl Modify for Explained {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete];
            for operation in operations.into_iter().flatten() {
                describe_parameters(operation);
                add_body_example(operation);
            }
        }
    }
}

fn describe_parameters(operation: &mut Operation) {
    for parameter in operation.parameters.iter_mut().flatten() {
        if parameter.description.as_deref().is_none_or(str::is_empty) {
            if let Some((_, text)) = PARAMETERS.iter().find(|(name, _)| *name == parameter.name) {
                parameter.description = Some((*text).to_string());
            }
        }
    }
}

fn add_body_example(operation: &mut Operation) {
    let Some(body) = operation.request_body.as_mut() else { return };
    for content in body.content.values_mut() {
        let Some(RefOr::Ref(reference)) = content.schema.as_ref() else { continue };
        let name = reference.ref_location.rsplit('/').next().unwrap_or_default().to_string();
        if content.examples.is_empty() && content.example.is_none() {
            if let Some(value) = body_example(&name) {
                let example = ExampleBuilder::new().summary(format!("A {name}")).value(Some(value)).build();
                content.examples.insert("example".into(), RefOr::T(example));
            }
        }
    }
}
