//! Create, read, PATCH, PUT, DELETE: each write an append of events.

use ledger_domain::Event;
use ledger_store::Backend;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

ledger_store::backend_tests!(
    create_fills_defaults_and_returns_location_and_etag,
    monetary_amounts_round_trip_exactly,
    retried_create_returns_the_credit_and_another_body_conflicts,
    patch_changes_only_what_it_names,
    put_replaces_the_whole_credit,
    amount_changes_become_delta_events,
    stale_if_match_is_412_and_nothing_changes,
    delete_hides_the_credit_but_keeps_its_history,
);

async fn create_fills_defaults_and_returns_location_and_etag(backend: Backend) {
    let app = TestApp::start(backend).await;
    let response = app.post(&visits(5)).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["etag"], "\"1\"");
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let credit: Value = response.json().await.unwrap();
    let id = credit["billingCreditId"].as_str().unwrap();
    assert!(location.ends_with(id));
    assert_eq!(credit["isActive"], true);
    assert_eq!((credit["usedAmount"].clone(), credit["remainingAmount"].clone()), (json!(0), json!(5)));
    assert_eq!(credit["endDate"], Value::Null);
    assert_eq!(credit["startDate"], "2025-01-01T00:00:00Z");
    let fetched: Value = app.get(id).await.json().await.unwrap();
    assert_eq!(fetched, credit);
}

async fn monetary_amounts_round_trip_exactly(backend: Backend) {
    let app = TestApp::start(backend).await;
    let credit = app
        .create(json!({ "creditType": "monetary", "startDate": "2025-01-01T08:30:00+02:00", "totalAmount": 120.10,
                        "usedAmount": 0.35, "currency": { "code": "USD", "system": "urn:iso:std:iso:4217", "display": "US Dollar" } }))
        .await;
    let text = serde_json::to_string(&credit).unwrap();
    assert!(text.contains("\"totalAmount\":120.1"), "{text}");
    assert!(text.contains("\"remainingAmount\":119.75"), "{text}");
    assert_eq!(credit["startDate"], "2025-01-01T06:30:00Z");
}

async fn retried_create_returns_the_credit_and_another_body_conflicts(backend: Backend) {
    let app = TestApp::start(backend).await;
    let id = Uuid::new_v4();
    let mut body = visits(3);
    body["billingCreditId"] = json!(id);
    let first = app.create(body.clone()).await;
    let again = app.post(&body).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    body["totalAmount"] = json!(4);
    assert_problem(app.post(&body).await, 409, "", "").await;
    let stored = app.db.store().await.read_stream(app.site, id, 0, 10).await.unwrap();
    assert_eq!(stored.len(), 1, "the retry and the conflict wrote nothing");
}

async fn patch_changes_only_what_it_names(backend: Backend) {
    let app = TestApp::start(backend).await;
    let plan = Uuid::new_v4();
    // Raw text: a Rust 1.50 literal would reach the wire as 1.5.
    let body = format!(
        r#"{{"creditType":"quantity","startDate":"2025-01-01","totalAmount":5,"wellnessPlanId":"{plan}","extensions":{{"source":"engine","n":1.50}}}}"#
    );
    let response = app
        .request(Method::POST, &app.credits_url())
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let credit: Value = response.json().await.unwrap();
    let id = credit["billingCreditId"].as_str().unwrap();
    let patched: Value = app
        .request(Method::PATCH, &app.credit_url(id))
        .json(&json!({ "endDate": "2025-12-31", "appliedTo": { "visit": "v-1" } }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(patched["endDate"], "2025-12-31T00:00:00Z");
    assert_eq!(patched["appliedTo"], json!({ "visit": "v-1" }));
    assert_eq!(patched["wellnessPlanId"], json!(plan), "untouched");
    assert_eq!(patched["extensions"], credit["extensions"], "untouched");
    assert_eq!(
        serde_json::to_string(&patched["extensions"]).unwrap(),
        r#"{"n":1.50,"source":"engine"}"#,
        "kept as sent"
    );
    let cleared: Value = app
        .request(Method::PATCH, &app.credit_url(id))
        .json(&json!({ "wellnessPlanId": null }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cleared["wellnessPlanId"], Value::Null);
    assert_eq!(cleared["endDate"], "2025-12-31T00:00:00Z");
}

async fn put_replaces_the_whole_credit(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut body = visits(5);
    body["wellnessPlanId"] = json!(Uuid::new_v4());
    body["endDate"] = json!("2026-01-01");
    let credit = app.create(body).await;
    let id = credit["billingCreditId"].as_str().unwrap();
    let replaced: Value = app
        .request(Method::PUT, &app.credit_url(id))
        .json(&json!({ "creditType": "quantity", "startDate": "2025-02-01", "totalAmount": 7, "isActive": false }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(replaced["wellnessPlanId"], Value::Null, "PUT clears what it does not name");
    assert_eq!(replaced["endDate"], Value::Null);
    assert_eq!((replaced["totalAmount"].clone(), replaced["isActive"].clone()), (json!(7), json!(false)));
    assert_eq!(replaced["createdAt"], credit["createdAt"]);
    let mismatch = app
        .request(Method::PUT, &app.credit_url(id))
        .json(&json!({ "billingCreditId": Uuid::new_v4(), "creditType": "quantity", "startDate": "2025-02-01", "totalAmount": 7 }))
        .send()
        .await
        .unwrap();
    assert_problem(mismatch, 400, "billingCreditId", "path-mismatch").await;
}

async fn amount_changes_become_delta_events(backend: Backend) {
    let app = TestApp::start(backend).await;
    let credit = app.create(visits(10)).await;
    let id: Uuid = credit["billingCreditId"].as_str().unwrap().parse().unwrap();
    let patch = |body: Value| app.request(Method::PATCH, &app.credit_url(id)).json(&body).send();
    assert_eq!(patch(json!({ "usedAmount": 3 })).await.unwrap().status(), 200);
    let response =
        patch(json!({ "usedAmount": 5, "wastedAmount": 1, "totalAmount": 12, "remainingAmount": 6 })).await.unwrap();
    let credit: Value = response.json().await.unwrap();
    assert_eq!((credit["usedAmount"].clone(), credit["remainingAmount"].clone()), (json!(5), json!(6)));
    let events = app.db.store().await.read_stream(app.site, id, 0, 10).await.unwrap();
    let summary: Vec<String> = events
        .iter()
        .map(|e| match &e.event {
            Event::CreditUsed(u) => format!("used {}", u.amount),
            Event::CreditWasted(w) => format!("wasted {}", w.amount),
            Event::CreditTotalAdjusted(t) => format!("total {}", t.delta),
            other => other.event_type().to_string(),
        })
        .collect();
    assert_eq!(summary, ["CreditIssued", "used 3", "total 2", "used 2", "wasted 1"]);
    let wrong = patch(json!({ "usedAmount": 6, "remainingAmount": 6 })).await.unwrap();
    assert_problem(wrong, 422, "remainingAmount", "remaining-mismatch").await;
    assert_eq!(app.db.store().await.read_stream(app.site, id, 0, 10).await.unwrap().len(), 5);
}

async fn stale_if_match_is_412_and_nothing_changes(backend: Backend) {
    let app = TestApp::start(backend).await;
    let credit = app.create(visits(5)).await;
    let id = credit["billingCreditId"].as_str().unwrap();
    let ok = app
        .request(Method::PATCH, &app.credit_url(id))
        .header("If-Match", "\"1\"")
        .json(&json!({ "totalAmount": 6 }))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["etag"], "\"2\"");
    for method in [Method::PATCH, Method::PUT, Method::DELETE] {
        let stale = app
            .request(method.clone(), &app.credit_url(id))
            .header("If-Match", "\"1\"")
            .json(&visits(9))
            .send()
            .await
            .unwrap();
        assert_problem(stale, 412, "If-Match", "version-mismatch").await;
    }
    let now: Value = app.get(id).await.json().await.unwrap();
    assert_eq!(now["totalAmount"], 6);
}

async fn delete_hides_the_credit_but_keeps_its_history(backend: Backend) {
    let app = TestApp::start(backend).await;
    let credit = app.create(visits(5)).await;
    let id: Uuid = credit["billingCreditId"].as_str().unwrap().parse().unwrap();
    let deleted = app.request(Method::DELETE, &app.credit_url(id)).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    assert_problem(app.get(id).await, 404, "", "").await;
    let again = app.request(Method::DELETE, &app.credit_url(id)).send().await.unwrap();
    assert_problem(again, 404, "", "").await;
    let patch =
        app.request(Method::PATCH, &app.credit_url(id)).json(&json!({ "totalAmount": 1 })).send().await.unwrap();
    assert_problem(patch, 404, "", "").await;
    let list: Value = app.list("").await.json().await.unwrap();
    assert_eq!(list["meta"]["total"], 0);
    let history = app.db.store().await.read_stream(app.site, id, 0, 10).await.unwrap();
    assert_eq!(history.iter().map(|e| e.event.event_type()).collect::<Vec<_>>(), ["CreditIssued", "CreditDeleted"]);
}
