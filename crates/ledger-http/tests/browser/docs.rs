//! The API explorer: Swagger UI served from the binary, Authorize with a Bearer token,
//! and try-it-out runs a GET against the running server and shows 200.

use ledger_store::Backend;
use serde_json::json;

use crate::helpers::*;
use crate::webdriver::Browser;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_explorer_authorizes_and_tries_a_get() {
    let app = TestApp::start(Backend::Sqlite).await;
    let id = app.create(visits(5)).await["billingCreditId"].as_str().unwrap().to_string();
    let browser = Browser::start(1280, 800).await;
    browser.goto(&format!("{}/docs", app.base)).await;

    browser.click(&browser.find(".btn.authorize").await).await;
    browser.type_into(&browser.find(".auth-container input").await, &app.token).await;
    browser.click(&browser.find(".auth-container .btn.modal-btn.auth").await).await;
    browser.click(&browser.find(".btn-done").await).await;

    // GET one credit: its operation, Try it out, the two path parameters, Execute.
    let operation = browser.find("#operations-Billing_Credit-get_one").await;
    browser.click(&browser.within(&operation, ".opblock-summary-control").await[0]).await;
    browser.click(&browser.find("#operations-Billing_Credit-get_one .try-out__btn").await).await;
    let site = browser.find("#operations-Billing_Credit-get_one tr[data-param-name='siteId'] input").await;
    browser.type_into(&site, &app.site.to_string()).await;
    let credit = browser.find("#operations-Billing_Credit-get_one tr[data-param-name='billingCreditId'] input").await;
    browser.type_into(&credit, &id).await;
    browser.click(&browser.find("#operations-Billing_Credit-get_one .btn.execute").await).await;
    browser
        .wait_text("#operations-Billing_Credit-get_one .live-responses-table tbody .response-col_status", "200", |t| {
            t.trim() == "200"
        })
        .await;
    browser
        .wait_text(
            "#operations-Billing_Credit-get_one .live-responses-table tbody .response-col_description",
            "the credit",
            |t| t.contains(&id),
        )
        .await;
    browser
        .script("document.querySelector('#operations-Billing_Credit-get_one .btn-group').scrollIntoView();", vec![])
        .await;
    println!("screenshot {}", browser.screenshot("docs-try-it-out").await.display());
    for url in browser.loaded_urls().await {
        assert!(url.starts_with(&app.base), "no third-party request: {url}");
    }
    let severe = browser.severe_console_messages().await;
    assert!(severe.is_empty(), "no CSP violation, failed load or script error: {severe:#?}");
    let stored = browser.script("return localStorage.length;", vec![]).await;
    assert_eq!(stored, json!(0), "the token is not persisted");
}
