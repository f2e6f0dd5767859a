//! The console signs in, opens a credit the test wrote, shows exactly the API's amounts
//! in its timeline and chart, and verifies it: ok, then not ok once a row is tampered with.

use chrono::Timelike;
use ledger_store::testing::{overwrite_payload, stored_payload};
use ledger_store::Backend;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;
use crate::webdriver::{Browser, ENTER, TAB};

/// The window the console must be readable at, and a phone's width.
const DESKTOP: (u32, u32) = (1280, 800);
const PHONE: (u32, u32) = (390, 844);
const MEMBER: &str = "9a0f6c1e-2b3d-4e5f-8a9b-0c1d2e3f4a5b";

/// Opens the console, pastes the token and takes the site it grants, with the keyboard only.
async fn sign_in(app: &TestApp) -> Browser {
    let browser = Browser::start(DESKTOP.0, DESKTOP.1).await;
    browser.goto(&format!("{}/console", app.base)).await;
    assert_eq!(browser.unlabelled_controls().await, Vec::<String>::new(), "every control of the sign-in has a label");
    let token = browser.find("#token").await;
    browser.type_into(&token, &app.token).await;
    browser.keys(&token, TAB).await;
    let submit = browser.active().await;
    assert_eq!(browser.text(&submit).await, "Read the token", "Tab reaches the button");
    browser.keys(&submit, ENTER).await;
    browser.find("#site-form:not([hidden])").await;
    let site = browser.active().await;
    assert_eq!(browser.property(&site, "id").await, "site", "the site choice has the focus");
    assert_eq!(browser.property(&site, "value").await, app.site.to_string(), "the token's site is offered");
    browser.keys(&site, TAB).await;
    browser.keys(&browser.active().await, ENTER).await;
    browser.find("#nav:not([hidden])").await;
    browser
}

/// Sets a datetime-local input to an instant (in the browser's time zone).
async fn set_instant(browser: &Browser, css: &str, iso: &str) {
    let script = "const d = new Date(arguments[1]); \
        document.querySelector(arguments[0]).value = new Date(d - d.getTimezoneOffset() * 60000).toISOString().slice(0, 19);";
    browser.script(script, vec![json!(css), json!(iso)]).await;
}

async fn op(app: &TestApp, id: &str, operation: &str, body: Value) -> Value {
    let response =
        app.request(Method::POST, &format!("{}/{operation}", app.credit_url(id))).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200, "{operation}");
    response.json().await.unwrap()
}

async fn api_get(app: &TestApp, url: &str) -> Value {
    let response = app.request(Method::GET, url).send().await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    response.json().await.unwrap()
}

/// A credit with one event of each kind the issue names: issue, use, waste, reverse.
async fn written_credit(app: &TestApp) -> (String, Uuid) {
    let id = app
        .create(json!({ "creditType": "quantity", "startDate": "2025-01-01", "totalAmount": 10,
        "measurementUnit": { "code": "visit" }, "wellnessPlanMembershipId": MEMBER }))
        .await["billingCreditId"]
        .as_str()
        .unwrap()
        .to_string();
    let used = op(app, &id, "use", json!({ "amount": 3, "reference": "visit-42" })).await;
    let use_event: Uuid = used["events"][0]["eventId"].as_str().unwrap().parse().unwrap();
    op(app, &id, "waste", json!({ "amount": 2, "reason": "missed appointment" })).await;
    op(app, &id, "reverse", json!({ "eventId": use_event, "amount": 1, "reason": "visit cancelled" })).await;
    (id, use_event)
}

/// The JSON text of an amount as the API wrote it (1, 2.5).
fn amount(v: &Value) -> String {
    v.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_a_credit_as_the_api_does_and_verifies_it() {
    let app = TestApp::start(Backend::Sqlite).await;
    let (id, use_event) = written_credit(&app).await;
    let events = api_get(&app, &format!("{}/events?pageSize=100", app.credit_url(&id))).await;
    let events = events["data"].as_array().unwrap().clone();
    assert_eq!(events.len(), 4);
    let credit = api_get(&app, &app.credit_url(&id)).await;

    let browser = sign_in(&app).await;
    let token_in_url = browser.script("return location.href;", vec![]).await;
    assert!(!token_in_url.as_str().unwrap().contains(&app.token), "the token is never in a URL");
    let stored = browser.script("return [sessionStorage.length, localStorage.length];", vec![]).await;
    assert_eq!(stored, json!([2, 0]), "the token is in session storage only");

    // Search lists it; opening it shows the timeline.
    assert_eq!(browser.unlabelled_controls().await, Vec::<String>::new(), "every control of the search has a label");
    browser.click(&browser.find("#credit-search button[type=submit]").await).await;
    browser.wait_text("#credit-results", "the credit", |t| t.contains(&id)).await;
    browser.click(&browser.find(&format!("#credit-results a[href='#credit/{id}']")).await).await;
    let rows = browser.wait_count("#timeline tbody tr", 4).await;
    for (row, event) in rows.iter().zip(&events) {
        let cells = browser.within(row, "td").await;
        let mut texts = Vec::new();
        for cell in &cells {
            texts.push(browser.text(cell).await);
        }
        assert_eq!(texts[0], event["version"].to_string());
        assert_eq!(texts[1], event["type"].as_str().unwrap());
        assert_eq!(texts[2], amount(&event["amount"]), "the amount of {}", event["type"]);
        assert_eq!(texts[3], event["actor"].as_str().unwrap());
        for key in ["reason", "reference"] {
            if let Some(text) = event[key].as_str() {
                assert!(texts[4].contains(text), "{key} {text} in {:?}", texts[4]);
            }
        }
        assert_eq!(texts[5], event["recordedAt"].as_str().unwrap());
        assert_eq!(texts[6], event["occurredAt"].as_str().unwrap());
        let hash = browser.within(row, "code.hash").await;
        assert_eq!(browser.attribute(&hash[0], "title").await, event["hash"].as_str().unwrap());
    }
    let points = browser.wait_count("#balance-chart g.point", 4).await;
    let last = points.last().unwrap();
    for (attribute, field) in
        [("total", "totalAmount"), ("used", "usedAmount"), ("wasted", "wastedAmount"), ("remaining", "remainingAmount")]
    {
        assert_eq!(browser.attribute(last, &format!("data-{attribute}")).await, amount(&credit[field]), "{field}");
    }
    assert_eq!(amount(&credit["remainingAmount"]), "6", "10 issued, 3 used, 2 wasted, 1 use reversed");

    assert_eq!(browser.unlabelled_controls().await, Vec::<String>::new(), "every control of a credit has a label");
    browser.click(&browser.find("#verify").await).await;
    browser.wait_text("#verify-result", "OK", |t| t.starts_with("OK")).await;
    println!("screenshot {}", browser.screenshot("console-credit").await.display());
    println!("screenshot {}", browser.full_page_screenshot("console-credit-full").await.display());

    // Tamper with the stored use (SQLite, its trigger stepped around), then verify again.
    let mut payload: Value = serde_json::from_str(&stored_payload(&app.db, use_event).await).unwrap();
    payload["amount"] = if payload["amount"].is_string() { json!("1") } else { json!(1) };
    overwrite_payload(&app.db, use_event, &payload.to_string()).await;
    browser.click(&browser.find("#verify").await).await;
    let verdict = browser.wait_text("#verify-result", "NOT OK", |t| t.starts_with("NOT OK")).await;
    assert!(verdict.contains(&use_event.to_string()), "names the tampered event: {verdict}");
    println!("screenshot {}", browser.screenshot("console-verify-not-ok").await.display());

    for url in browser.loaded_urls().await {
        assert!(url.starts_with(&app.base), "no third-party request: {url}");
    }
    let severe = browser.severe_console_messages().await;
    assert!(severe.is_empty(), "no CSP violation, failed load or script error: {severe:#?}");
    let mut browser = browser;
    browser.set_window(PHONE.0, PHONE.1).await;
    browser.find("#timeline").await;
    println!("screenshot {}", browser.full_page_screenshot("console-phone").await.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_as_of_the_member_an_export_and_the_live_tail() {
    let app = TestApp::start(Backend::Sqlite).await;
    let created = app
        .create(json!({ "creditType": "quantity", "startDate": "2025-01-01", "totalAmount": 5,
            "measurementUnit": { "code": "visit" }, "wellnessPlanMembershipId": MEMBER }))
        .await;
    let id = created["billingCreditId"].as_str().unwrap().to_string();
    // The next whole second after the issue: the credit as of then has used nothing.
    let issued: chrono::DateTime<chrono::Utc> = created["createdAt"].as_str().unwrap().parse().unwrap();
    let then = issued.with_nanosecond(0).unwrap() + chrono::Duration::seconds(1);
    tokio::time::sleep((then - chrono::Utc::now()).to_std().unwrap_or_default() + std::time::Duration::from_millis(50))
        .await;
    op(&app, &id, "use", json!({ "amount": 2, "reference": "visit-7" })).await;

    let browser = sign_in(&app).await;
    browser.goto(&format!("{}/console#credit/{id}", app.base)).await;
    browser.wait_text("#credit-state [data-field=remaining]", "3 now", |t| t == "3").await;
    set_instant(&browser, "#as-of-instant", &then.to_rfc3339()).await;
    browser.click(&browser.find("#as-of button[type=submit]").await).await;
    browser.wait_text("#credit-state h3", "as of", |t| t.starts_with("As of")).await;
    browser.wait_text("#credit-state [data-field=remaining]", "5 then", |t| t == "5").await;

    // The member: one balance line, two statement entries.
    browser.click(&browser.find("#nav [data-view=member]").await).await;
    browser.type_into(&browser.find("#member-id").await, MEMBER).await;
    browser.click(&browser.find("#member-form button[type=submit]").await).await;
    let tables = browser.wait_count("#member-results table", 2).await;
    let balance = browser.within(&tables[0], "tbody tr td").await;
    assert_eq!(browser.text(&balance[5]).await, "3", "remaining on the balance line");
    assert_eq!(browser.within(&tables[1], "tbody tr").await.len(), 2, "issued and used");
    println!("screenshot {}", browser.full_page_screenshot("console-member").await.display());
    assert_eq!(
        browser.unlabelled_controls().await,
        Vec::<String>::new(),
        "every control of the member view has a label"
    );

    // Export everything recorded this hour as JSON lines.
    browser.click(&browser.find("#nav [data-view=feed]").await).await;
    let now = chrono::Utc::now();
    set_instant(&browser, "#export-from", &(now - chrono::Duration::hours(1)).to_rfc3339()).await;
    set_instant(&browser, "#export-to", &(now + chrono::Duration::hours(1)).to_rfc3339()).await;
    browser.click(&browser.find("#export-form button[type=submit]").await).await;
    let link = browser.find("#export-link:not([hidden])").await;
    assert_eq!(browser.attribute(&link, "download").await, "site-events.jsonl");
    assert!(browser.property(&link, "href").await.starts_with("blob:"), "a download made in the page");
    let lines = browser.text(&browser.find("#export-preview").await).await;
    let types: Vec<String> = lines
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(types, ["CreditIssued", "CreditUsed"]);

    // The live tail shows an event committed after it started.
    browser.click(&browser.find("#tail-toggle").await).await;
    browser.wait_text("#tail-status", "live", |t| t.starts_with("Live")).await;
    op(&app, &id, "waste", json!({ "amount": 1, "reason": "no-show" })).await;
    browser.wait_text("#tail li", "the waste", |t| t.contains("CreditWasted") && t.contains(&id)).await;
    println!("screenshot {}", browser.full_page_screenshot("console-feed").await.display());
    assert_eq!(browser.unlabelled_controls().await, Vec::<String>::new(), "every control of the feed has a label");
    browser.click(&browser.find("#tail-toggle").await).await;
    let severe = browser.severe_console_messages().await;
    assert!(severe.is_empty(), "no CSP violation, failed load or script error: {severe:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_the_server_refuses_returns_to_sign_in() {
    let app = TestApp::start(Backend::Sqlite).await;
    let claims = ledger_http::auth::Claims {
        sub: "mallory".into(),
        exp: chrono::Utc::now().timestamp() + 600,
        iat: None,
        nbf: None,
        sites: vec![app.site.to_string()],
        scope: ALL_SCOPES.into(),
    };
    let forged = ledger_http::auth::mint_hs256(b"not-the-server-secret-not-the-server-secret", &claims);
    let browser = Browser::start(DESKTOP.0, DESKTOP.1).await;
    browser.goto(&format!("{}/console", app.base)).await;
    browser.type_into(&browser.find("#token").await, &forged).await;
    browser.click(&browser.find("#sign-in-form button[type=submit]").await).await;
    browser.click(&browser.find("#site-form:not([hidden]) button[type=submit]").await).await;
    browser.click(&browser.find("#credit-search button[type=submit]").await).await;
    browser.wait_text("#sign-in-status", "refused", |t| t.contains("refused the token")).await;
    browser.find("#nav[hidden]").await;
    let stored = browser.script("return sessionStorage.length;", vec![]).await;
    assert_eq!(stored, json!(0), "the refused token is forgotten");
}
