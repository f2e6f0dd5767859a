//! Health, readiness, metrics, the OpenAPI document and its docs page.

use ledger_store::Backend;
use serde_json::Value;

use crate::helpers::*;

ledger_store::backend_tests!(health_ready_metrics_openapi_docs);

async fn health_ready_metrics_openapi_docs(backend: Backend) {
    let app = TestApp::start(backend).await;
    let get = |path: &str| app.client.get(format!("{}{path}", app.base)).send();
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    assert_eq!(get("/readyz").await.unwrap().status(), 200);

    app.create(visits(2)).await;
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains(
            "http_requests_total{route=\"/site/{siteId}/ahds/v1/billing-credit\",method=\"POST\",status=\"201\"}"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("http_request_duration_seconds_bucket"), "{metrics}");
    assert!(metrics.contains("ledger_events_appended_total"), "{metrics}");

    let doc: Value = get("/openapi.json").await.unwrap().json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let path = &doc["paths"]["/site/{siteId}/ahds/v1/billing-credit/{billingCreditId}"];
    for method in ["get", "patch", "put", "delete"] {
        assert!(path[method].is_object(), "{method} documented");
    }
    let credits = &doc["paths"]["/site/{siteId}/ahds/v1/billing-credit"];
    let params: Vec<&str> =
        credits["get"]["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    for name in ["page", "pageSize", "sortBy", "sortOrder", "creditType", "isActive", "wellnessPlanMembershipId"] {
        assert!(params.contains(&name), "{name} in {params:?}");
    }
    assert!(doc["components"]["schemas"]["BillingCredit"]["properties"]["remainingAmount"].is_object());
    assert_eq!(doc["servers"][0]["url"], "/", "try-it-out calls the server that serves the document");
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let described = parameter["description"].as_str().is_some_and(|d| !d.is_empty());
                assert!(described, "{method} {path}: parameter {} has a description", parameter["name"]);
            }
            for (media, content) in operation["requestBody"]["content"].as_object().into_iter().flatten() {
                assert!(
                    content["examples"].is_object() || !content["example"].is_null(),
                    "{method} {path} {media}: an example"
                );
            }
        }
    }
    // A field that may be left out but never be null is not declared nullable.
    let patch = &doc["components"]["schemas"]["BillingCreditPatchBody"]["properties"];
    for field in ["creditType", "startDate", "isActive", "totalAmount", "usedAmount", "wastedAmount", "remainingAmount"]
    {
        assert!(patch[field]["type"].is_string(), "{field} is not nullable: {}", patch[field]);
    }
    assert_eq!(patch["endDate"]["type"], serde_json::json!(["string", "null"]), "null clears endDate");

    let docs = get("/docs").await.unwrap();
    assert_eq!(docs.status(), 200);
    let html = docs.text().await.unwrap();
    assert!(html.contains("/openapi.json") && !html.contains("https://cdn"), "self-contained docs page");

    let unknown = get("/nowhere").await.unwrap();
    assert_problem(unknown, 404, "", "").await;
}
