//! Read-your-writes tokens: a write answers with `Ledger-Position`, a read takes it back as
//! `Read-After` (served by a read replica only once it has that event; see the binary's
//! read_replica drill for the replica itself). Without a replica the token is checked and
//! changes nothing.

use ledger_store::Backend;
use reqwest::{Method, Response};
use serde_json::{json, Value};

use crate::helpers::*;

ledger_store::backend_tests!(writes_carry_their_position_and_reads_take_it_back);

fn position(response: &Response) -> i64 {
    let header = response.headers().get("Ledger-Position").expect("a write that appended carries Ledger-Position");
    header.to_str().unwrap().parse().expect("Ledger-Position is an integer")
}

async fn writes_carry_their_position_and_reads_take_it_back(backend: Backend) {
    let app = TestApp::start(backend).await;
    let created = app.post(&visits(5)).await;
    assert_eq!(created.status(), 201);
    let first = position(&created);
    let credit: Value = created.json().await.unwrap();
    let id = credit["billingCreditId"].as_str().unwrap();

    let keyed = |key: &'static str| {
        app.request(Method::POST, &format!("{}/use", app.credit_url(id)))
            .header("Idempotency-Key", key)
            .json(&json!({ "amount": 1, "reference": "visit-1" }))
    };
    let used = keyed("use-once").send().await.unwrap();
    assert_eq!(used.status(), 200);
    let second = position(&used);
    assert!(second > first, "a later write has a later position ({first}, then {second})");
    // A retry gets the kept outcome, and the position of the events it kept.
    let retried = keyed("use-once").send().await.unwrap();
    assert_eq!(retried.headers()["Idempotent-Replayed"], "true");
    assert_eq!(position(&retried), second);

    let read_after = |path: String, token: &str| {
        app.request(Method::GET, &format!("{}/site/{}/ahds/v1/{path}", app.base, app.site))
            .header("Read-After", token)
            .send()
    };
    let token = second.to_string();
    for path in [
        "billing-credit".to_string(),
        format!("billing-credit/{id}/events"),
        "billing-credit-events".to_string(),
        format!("billing-credit-balance?wellnessPlanMembershipId={}", uuid::Uuid::new_v4()),
        format!("billing-credit-entries?wellnessPlanMembershipId={}", uuid::Uuid::new_v4()),
    ] {
        let response = read_after(path.clone(), &token).await.unwrap();
        assert_eq!(response.status(), 200, "{path} with Read-After");
        for bad in ["0", "-3", "soon", ""] {
            let refused = read_after(path.clone(), bad).await.unwrap();
            assert_problem(refused, 400, "Read-After", "invalid-read-after").await;
        }
    }
    let listed: Value = read_after("billing-credit".into(), &token).await.unwrap().json().await.unwrap();
    assert_eq!(listed["data"][0]["remainingAmount"], 4, "the read includes the use: {listed}");

    // A refused command appends nothing and carries no position.
    let refused = app
        .request(Method::POST, &format!("{}/use", app.credit_url(id)))
        .json(&json!({ "amount": 100, "reference": "visit-2" }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);
    assert!(refused.headers().get("Ledger-Position").is_none());
}

#[tokio::test]
async fn openapi_declares_read_after_on_the_reads_a_replica_may_serve() {
    let app = TestApp::start(Backend::Sqlite).await;
    let doc: Value = app.client.get(format!("{}/openapi.json", app.base)).send().await.unwrap().json().await.unwrap();
    for path in [
        "/site/{siteId}/ahds/v1/billing-credit",
        "/site/{siteId}/ahds/v1/billing-credit/{billingCreditId}/events",
        "/site/{siteId}/ahds/v1/billing-credit-events",
        "/site/{siteId}/ahds/v1/billing-credit-balance",
        "/site/{siteId}/ahds/v1/billing-credit-entries",
    ] {
        let params = doc["paths"][path]["get"]["parameters"].as_array().unwrap();
        assert!(params.iter().any(|p| p["name"] == "Read-After" && p["in"] == "header"), "{path} declares Read-After");
    }
}
