//! The pages served by the binary: the API explorer, the console, the problem types.
//! Every asset is embedded, typed, cached as intended and under a CSP with no inline script.

use ledger_http::routes::pages::{policy_for, CONTENT_SECURITY_POLICY, EXPLORER_CONTENT_SECURITY_POLICY, PAGES};
use ledger_http::rules::{RULES, STATUS_TYPES};
use ledger_store::Backend;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

ledger_store::backend_tests!(every_page_is_embedded_typed_and_under_the_csp, every_problem_type_resolves_to_its_rules);

async fn every_page_is_embedded_typed_and_under_the_csp(backend: Backend) {
    let app = TestApp::start(backend).await;
    for policy in [CONTENT_SECURITY_POLICY, EXPLORER_CONTENT_SECURITY_POLICY] {
        assert!(!policy.contains("unsafe-eval"));
        assert!(policy.contains("script-src 'self';"), "no inline script");
    }
    assert!(!CONTENT_SECURITY_POLICY.contains("unsafe-inline"), "the console has no inline style either");
    for page in PAGES {
        let response = app.client.get(format!("{}{}", app.base, page.path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{}", page.path);
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], page.content_type, "{}", page.path);
        assert_eq!(headers["content-security-policy"], policy_for(page.path), "{}", page.path);
        let console = page.path.starts_with("/console");
        assert!(!console || policy_for(page.path) == CONTENT_SECURITY_POLICY, "{}", page.path);
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let vendored = page.path.contains("/vendor/");
        assert_eq!(headers["cache-control"], if vendored { "public, max-age=31536000, immutable" } else { "no-cache" });
        let body = response.text().await.unwrap();
        assert_eq!(body.len(), page.body.len(), "{}", page.path);
        if page.content_type.starts_with("text/html") {
            for (at, _) in body.match_indices("<script") {
                let tag = &body[at..at + body[at..].find('>').unwrap()];
                assert!(tag.contains(" src=\"/"), "no inline script in {}: {tag}", page.path);
            }
            assert!(!body.contains("http://") && !body.contains("https://"), "no third-party URL in {}", page.path);
        }
    }
    let docs = app.client.get(format!("{}/docs", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(docs.contains("swagger-ui-bundle.js") && docs.contains("/docs/assets/docs-init.js"));
}

async fn every_problem_type_resolves_to_its_rules(backend: Backend) {
    let app = TestApp::start(backend).await;
    let id = app.create(visits(1)).await["billingCreditId"].as_str().unwrap().to_string();
    // A business rule (422), a field rule (400) and a missing credit (404), as the API returns them.
    let refusals = [
        app.request(Method::POST, &format!("{}/use", app.credit_url(&id)))
            .json(&json!({ "amount": 5, "reference": "v" }))
            .send(),
        app.request(Method::POST, &app.credits_url()).json(&json!({ "creditType": 1 })).send(),
        app.request(Method::GET, &app.credit_url(uuid::Uuid::new_v4())).send(),
    ];
    let mut types = Vec::new();
    for refusal in refusals {
        let problem: Value = refusal.await.unwrap().json().await.unwrap();
        types.push(problem["type"].as_str().unwrap().to_string());
    }
    assert_eq!(types, ["/problems/insufficient-balance", "/problems/400", "/problems/404"]);
    for kind in types {
        let page = app.client.get(format!("{}{kind}", app.base)).send().await.unwrap();
        assert_eq!(page.status(), 200, "{kind} resolves");
        assert_eq!(page.headers()["content-security-policy"], CONTENT_SECURITY_POLICY);
        assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
        let html = page.text().await.unwrap();
        for rule in STATUS_TYPES.iter().chain(RULES) {
            assert!(html.contains(&format!("<tr id=\"{}\">", rule.name)), "{} listed on {kind}", rule.name);
        }
    }
    assert_problem(app.client.get(format!("{}/problems/no-such-rule", app.base)).send().await.unwrap(), 404, "", "")
        .await;
}
