//! The seed's own example bodies, sent as written, get the seed's responses.

use ledger_store::Backend;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

ledger_store::backend_tests!(seed_examples_round_trip);

const SEED_ID: &str = "123e4567-e89b-12d3-a456-426614174000";

fn seed_create_body() -> Value {
    json!({
        "appliedTo": {}, "availableTo": {}, "billingCreditId": SEED_ID, "creditType": "quantity",
        "endDate": "2025-01-01", "expiry": {}, "extensions": {}, "isActive": true, "remainingAmount": 0,
        "startDate": "2025-01-01", "totalAmount": 0, "usedAmount": 0, "wastedAmount": 0,
        "wellnessPlanBenefitId": SEED_ID, "wellnessPlanId": SEED_ID, "wellnessPlanMembershipCycleId": SEED_ID,
        "wellnessPlanMembershipId": SEED_ID, "wellnessPlanMembershipStatusPeriodId": SEED_ID,
        "amountType": { "code": "string", "system": "string", "display": "string" },
        "creditCategory": { "code": "string", "system": "string", "display": "string" },
        "currency": { "code": "string", "system": "string", "display": "string" },
        "measurementUnit": { "code": "string", "system": "string", "display": "string" }
    })
}

/// The seed's response, but for the timestamps the server sets.
fn seed_response() -> Value {
    json!({ "appliedTo": {}, "availableTo": {}, "billingCreditId": SEED_ID, "createdAt": "2025-01-01T00:00:00.000Z",
        "creditType": "quantity", "endDate": "2025-01-01T00:00:00Z", "expiry": {}, "extensions": {}, "isActive": true,
        "remainingAmount": 0, "startDate": "2025-01-01T00:00:00Z", "totalAmount": 0, "updatedAt": "2025-01-01T00:00:00.000Z",
        "usedAmount": 0, "wastedAmount": 0, "wellnessPlanBenefitId": SEED_ID, "wellnessPlanId": SEED_ID,
        "wellnessPlanMembershipCycleId": SEED_ID, "wellnessPlanMembershipId": SEED_ID,
        "wellnessPlanMembershipStatusPeriodId": SEED_ID,
        "amountType": { "code": "string", "system": "string", "display": "string" },
        "creditCategory": { "code": "string", "system": "string", "display": "string" },
        "currency": { "code": "string", "system": "string", "display": "string" },
        "measurementUnit": { "code": "string", "system": "string", "display": "string" } })
}

/// The read-only fields the ledger shows beyond the seed's, each with its value for a
/// fresh credit: a client that reads only the seed's fields sees exactly the seed.
const EXTRA_FIELDS: [(&str, bool); 1] = [("expired", false)];

/// Compares with the seed, checking the server-set timestamps only for their format and
/// the documented extras only for their value.
fn assert_like_seed(mut got: Value) {
    for (key, fresh) in EXTRA_FIELDS {
        assert_eq!(got.as_object_mut().unwrap().remove(key), Some(json!(fresh)), "{key}");
    }
    for key in ["createdAt", "updatedAt"] {
        let stamp = got[key].as_str().unwrap().to_string();
        assert!(chrono::DateTime::parse_from_rfc3339(&stamp).is_ok() && stamp.ends_with('Z'), "{key}: {stamp}");
        assert_eq!(stamp.len(), "2025-01-01T00:00:00.000Z".len(), "{key} has milliseconds: {stamp}");
        got[key] = json!("2025-01-01T00:00:00.000Z");
    }
    assert_eq!(got, seed_response());
}

async fn seed_examples_round_trip(backend: Backend) {
    let app = TestApp::start(backend).await;
    let created = app.post(&seed_create_body()).await;
    assert_eq!(created.status(), 201);
    assert_like_seed(created.json().await.unwrap());

    let found = app.get(SEED_ID).await;
    assert_eq!(found.status(), 200);
    assert_like_seed(found.json().await.unwrap());

    let mut update = seed_create_body();
    update.as_object_mut().unwrap().remove("billingCreditId");
    for method in [Method::PATCH, Method::PUT] {
        let response = app.request(method.clone(), &app.credit_url(SEED_ID)).json(&update).send().await.unwrap();
        assert_eq!(response.status(), 200, "{method}");
        assert_like_seed(response.json().await.unwrap());
    }

    let list: Value = app
        .list("page=0&pageSize=10&sortBy=createdAt&sortOrder=asc&creditType=quantity&isActive=true&wellnessPlanBenefitId=123e4567-e89b-12d3-a456-426614174000&wellnessPlanId=123e4567-e89b-12d3-a456-426614174000&wellnessPlanMembershipCycleId=123e4567-e89b-12d3-a456-426614174000&wellnessPlanMembershipId=123e4567-e89b-12d3-a456-426614174000&wellnessPlanMembershipStatusPeriodId=123e4567-e89b-12d3-a456-426614174000")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        list["meta"],
        json!({ "page": 0, "pageSize": 10, "total": 1, "totalPages": 1, "hasNext": false, "hasPrevious": false })
    );
    assert_like_seed(list["data"][0].clone());

    let deleted = app.request(Method::DELETE, &app.credit_url(SEED_ID)).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(app.get(SEED_ID).await.status(), 404);
}
