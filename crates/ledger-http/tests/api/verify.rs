//! GET …/{id}/verify: the server recomputes one credit's chain and projection.

use ledger_store::testing::{overwrite_payload, stored_payload};
use ledger_store::Backend;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

ledger_store::backend_tests!(verify_says_ok_then_names_the_tampered_event, verify_needs_the_audit_scope,);

async fn verify(app: &TestApp, id: &str) -> reqwest::Response {
    app.request(Method::GET, &format!("{}/verify", app.credit_url(id))).send().await.unwrap()
}

async fn verify_says_ok_then_names_the_tampered_event(backend: Backend) {
    let app = TestApp::start(backend).await;
    let id = app.create(visits(5)).await["billingCreditId"].as_str().unwrap().to_string();
    let other = app.create(visits(3)).await["billingCreditId"].as_str().unwrap().to_string();
    let used: Value = app
        .request(Method::POST, &format!("{}/use", app.credit_url(&id)))
        .json(&json!({ "amount": 2, "reference": "visit-1" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let use_event: Uuid = used["events"][0]["eventId"].as_str().unwrap().parse().unwrap();

    let ok: Value = verify(&app, &id).await.json().await.unwrap();
    assert_eq!(ok["ok"], true, "{ok}");
    assert_eq!(ok["eventsChecked"], 2);
    assert_eq!(ok["firstMismatch"], Value::Null);

    let mut payload: Value = serde_json::from_str(&stored_payload(&app.db, use_event).await).unwrap();
    payload["amount"] = if payload["amount"].is_string() { json!("1") } else { json!(1) };
    overwrite_payload(&app.db, use_event, &payload.to_string()).await;

    let bad: Value = verify(&app, &id).await.json().await.unwrap();
    assert_eq!(bad["ok"], false, "{bad}");
    assert_eq!(bad["firstMismatch"]["eventId"], use_event.to_string());
    assert_eq!(bad["firstMismatch"]["version"], 2);
    assert!(bad["firstMismatch"]["finding"].as_str().unwrap().contains("changed after it was written"), "{bad}");
    let untouched: Value = verify(&app, &other).await.json().await.unwrap();
    assert_eq!(untouched["ok"], true, "another credit is untouched: {untouched}");
    assert_problem(verify(&app, &Uuid::new_v4().to_string()).await, 404, "", "").await;
}

async fn verify_needs_the_audit_scope(backend: Backend) {
    let app = TestApp::start(backend).await;
    let id = app.create(visits(1)).await["billingCreditId"].as_str().unwrap().to_string();
    let reader = token_for(&[&app.site.to_string()], "billing-credit:read billing-credit:write", 600);
    let response = app.client.get(format!("{}/verify", app.credit_url(&id))).bearer_auth(reader).send().await.unwrap();
    assert_eq!(response.status(), 403);
}
