//! Bad input gets a clear problem+json (field and rule) and changes nothing; tokens
//! and sites are enforced on every endpoint.

use ledger_store::Backend;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

ledger_store::backend_tests!(
    malformed_bodies_are_400_with_the_field,
    business_rule_violations_are_422_with_the_rule,
    oversized_and_non_json_bodies,
    bad_path_and_query_values_are_400,
    every_endpoint_needs_a_valid_token,
    every_endpoint_refuses_other_sites_and_missing_scopes,
);

async fn malformed_bodies_are_400_with_the_field(backend: Backend) {
    let app = TestApp::start(backend).await;
    let raw = |body: &str| {
        app.request(Method::POST, &app.credits_url())
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    assert_problem(raw("{\"creditType\": ").await.unwrap(), 400, "body", "malformed-json").await;
    let cases = [
        (json!({ "startDate": "2025-01-01", "totalAmount": 1 }), "creditType", "required"),
        (
            json!({ "creditType": "quantity", "startDate": "2025-01-01", "totalAmount": "5" }),
            "totalAmount",
            "invalid-type",
        ),
        (
            json!({ "creditType": "quantity", "startDate": "2025-01-01", "totalAmount": 5, "colour": "red" }),
            "colour",
            "unknown-field",
        ),
        (json!({ "creditType": "visits", "startDate": "2025-01-01", "totalAmount": 5 }), "creditType", "invalid-value"),
        (
            json!({ "creditType": "quantity", "startDate": "01/02/2025", "totalAmount": 5 }),
            "startDate",
            "invalid-value",
        ),
        (
            json!({ "creditType": "quantity", "startDate": "2025-01-01", "totalAmount": 5, "wellnessPlanId": "nope" }),
            "wellnessPlanId",
            "invalid-value",
        ),
        (
            json!({ "creditType": "quantity", "startDate": "2025-01-01", "totalAmount": 5, "currency": { "code": 5 } }),
            "currency.code",
            "invalid-type",
        ),
        (
            json!({ "creditType": "quantity", "startDate": "2025-01-01", "totalAmount": 5, "isActive": "yes" }),
            "isActive",
            "invalid-type",
        ),
    ];
    for (body, field, rule) in cases {
        assert_problem(app.post(&body).await, 400, field, rule).await;
    }
    let list: Value = app.list("").await.json().await.unwrap();
    assert_eq!(list["meta"]["total"], 0, "nothing was written");
}

async fn business_rule_violations_are_422_with_the_rule(backend: Backend) {
    let app = TestApp::start(backend).await;
    let cases = [
        (
            json!({ "creditType": "quantity", "startDate": "2025-01-01", "totalAmount": -1 }),
            "totalAmount",
            "amount-negative",
        ),
        (
            json!({ "creditType": "quantity", "startDate": "2025-01-01", "totalAmount": 1.5 }),
            "totalAmount",
            "amount-not-whole-units",
        ),
        (
            json!({ "creditType": "quantity", "startDate": "2025-01-01", "totalAmount": 5, "remainingAmount": 4 }),
            "remainingAmount",
            "remaining-mismatch",
        ),
        (
            json!({ "creditType": "quantity", "startDate": "2025-01-01", "totalAmount": 5, "usedAmount": 4, "wastedAmount": 2 }),
            "usedAmount",
            "used-plus-wasted-exceeds-total",
        ),
        (
            json!({ "creditType": "monetary", "startDate": "2025-01-01", "totalAmount": 5 }),
            "currency",
            "currency-required",
        ),
        (
            json!({ "creditType": "monetary", "startDate": "2025-01-01", "totalAmount": 5.001, "currency": { "code": "USD" } }),
            "totalAmount",
            "amount-finer-than-minor-unit",
        ),
        (
            json!({ "creditType": "quantity", "startDate": "2025-01-02", "endDate": "2025-01-01", "totalAmount": 5 }),
            "endDate",
            "end-before-start",
        ),
    ];
    for (body, field, rule) in cases {
        assert_problem(app.post(&body).await, 422, field, rule).await;
    }
    let list: Value = app.list("").await.json().await.unwrap();
    assert_eq!(list["meta"]["total"], 0, "nothing was written");
}

async fn oversized_and_non_json_bodies(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut huge = visits(1);
    huge["extensions"] = json!({ "blob": "x".repeat(100_000) });
    assert_problem(app.post(&huge).await, 413, "", "").await;
    let text = app
        .request(Method::POST, &app.credits_url())
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_problem(text, 415, "", "").await;
    let credit = app.create(visits(1)).await;
    let id = credit["billingCreditId"].as_str().unwrap();
    let form = app.request(Method::PATCH, &app.credit_url(id)).form(&[("totalAmount", "3")]).send().await.unwrap();
    assert_problem(form, 415, "", "").await;
}

async fn bad_path_and_query_values_are_400(backend: Backend) {
    let app = TestApp::start(backend).await;
    assert_problem(app.get("not-a-uuid").await, 400, "billingCreditId", "invalid-uuid").await;
    let bad_site =
        app.request(Method::GET, &format!("{}/site/nope/ahds/v1/billing-credit", app.base)).send().await.unwrap();
    // The token is checked first (valid here), then the site id.
    assert_problem(bad_site, 400, "siteId", "invalid-uuid").await;
    for (query, field, rule) in [
        ("page=-1", "page", "range"),
        ("page=x", "page", "range"),
        ("pageSize=0", "pageSize", "range"),
        ("pageSize=101", "pageSize", "range"),
        ("sortBy=colour", "sortBy", "one-of"),
        ("sortOrder=up", "sortOrder", "one-of"),
        ("creditType=visits", "creditType", "one-of"),
        ("isActive=1", "isActive", "boolean"),
        ("wellnessPlanId=x", "wellnessPlanId", "invalid-uuid"),
        ("colour=red", "colour", "unknown-parameter"),
        ("page=1&page=2", "page", "repeated"),
    ] {
        assert_problem(app.list(query).await, 400, field, rule).await;
    }
}

/// Every endpoint, as (method, path suffix, body).
fn endpoints(id: Uuid) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (Method::POST, String::new(), Some(visits(1))),
        (Method::GET, String::new(), None),
        (Method::GET, format!("/{id}"), None),
        (Method::PATCH, format!("/{id}"), Some(json!({ "totalAmount": 2 }))),
        (Method::PUT, format!("/{id}"), Some(visits(3))),
        (Method::DELETE, format!("/{id}"), None),
    ]
}

async fn every_endpoint_needs_a_valid_token(backend: Backend) {
    let app = TestApp::start(backend).await;
    let credit = app.create(visits(5)).await;
    let id: Uuid = credit["billingCreditId"].as_str().unwrap().parse().unwrap();
    let site = app.site.to_string();
    let expired = token_for(&[&site], ALL_SCOPES, -3600);
    let forged = {
        let mut parts: Vec<String> = token_for(&["*"], ALL_SCOPES, 3600).split('.').map(String::from).collect();
        parts[2] = "c2lnbmF0dXJl".into();
        parts.join(".")
    };
    for (method, suffix, body) in endpoints(id) {
        let url = format!("{}{suffix}", app.credits_url());
        for auth in [None, Some(expired.clone()), Some(forged.clone()), Some("garbage".to_string())] {
            let mut request = app.client.request(method.clone(), &url);
            if let Some(token) = &auth {
                request = request.bearer_auth(token);
            }
            if let Some(body) = &body {
                request = request.json(body);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
            assert_problem(response, 401, "", "").await;
        }
    }
    assert_eq!(app.get(id).await.json::<Value>().await.unwrap(), credit, "nothing changed");
}

async fn every_endpoint_refuses_other_sites_and_missing_scopes(backend: Backend) {
    let app = TestApp::start(backend).await;
    let credit = app.create(visits(5)).await;
    let id: Uuid = credit["billingCreditId"].as_str().unwrap().parse().unwrap();
    let other_site = Uuid::new_v4().to_string();
    let site = app.site.to_string();
    let wrong_site = token_for(&[&other_site], ALL_SCOPES, 3600);
    let read_only = token_for(&[&site], "billing-credit:read", 3600);
    let write_only = token_for(&[&site], "billing-credit:write", 3600);
    for (method, suffix, body) in endpoints(id) {
        let url = format!("{}{suffix}", app.credits_url());
        let is_read = method == Method::GET;
        let lacking_scope = if is_read { &write_only } else { &read_only };
        for token in [&wrong_site, lacking_scope] {
            let mut request = app.client.request(method.clone(), &url).bearer_auth(token);
            if let Some(body) = &body {
                request = request.json(body);
            }
            assert_problem(request.send().await.unwrap(), 403, "", "").await;
        }
    }
    // A token for another site never sees this site's credits, even by id.
    let other_app_url = format!("{}/site/{other_site}/ahds/v1/billing-credit", app.base);
    let theirs = app.client.get(format!("{other_app_url}/{id}")).bearer_auth(&wrong_site).send().await.unwrap();
    assert_problem(theirs, 404, "", "").await;
    let list: Value =
        app.client.get(&other_app_url).bearer_auth(&wrong_site).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["meta"]["total"], 0);
    assert_eq!(app.get(id).await.json::<Value>().await.unwrap(), credit, "nothing changed");
}
