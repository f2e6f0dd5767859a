//! A stored event that cannot be read back costs only its own credit's history: the
//! reads that need it answer 500 naming the event; the credit itself (its projection),
//! the list and every other credit keep working; the site feed serves up to it.
//! A statement the database refuses is a 500 (a retry cannot help); a busy database is
//! a 503 with Retry-After.

use ledger_store::testing::overwrite_payload;
use ledger_store::Backend;
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::Connection;

use crate::helpers::*;

ledger_store::backend_tests!(
    an_unreadable_event_is_named_and_spares_the_rest,
    a_database_refusal_is_a_500_and_a_busy_database_a_503,
);

async fn an_unreadable_event_is_named_and_spares_the_rest(backend: Backend) {
    let app = TestApp::start(backend).await;
    let sound = app.create(visits(5)).await["billingCreditId"].as_str().unwrap().to_string();
    let damaged = app.create(visits(5)).await["billingCreditId"].as_str().unwrap().to_string();
    for id in [&damaged, &sound] {
        let used = app
            .request(Method::POST, &format!("{}/use", app.credit_url(id)))
            .json(&json!({ "amount": 1, "reference": "visit-1" }))
            .send()
            .await
            .unwrap();
        assert_eq!(used.status(), 200);
    }
    let store = app.db.store().await;
    let history = store.read_stream(app.site, damaged.parse().unwrap(), 0, 10).await.unwrap();
    let broken = history[1].event_id.to_string();
    overwrite_payload(&app.db, history[1].event_id, r#"{"amount": "1", "reference": null, "note": null, "colour": 1}"#)
        .await;

    let named = |problem: &Value| {
        assert_eq!(problem["title"], "Stored data is corrupt", "{problem}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(&broken) && detail.contains(&damaged), "names the event and credit: {detail}");
    };
    let events = app.request(Method::GET, &format!("{}/events", app.credit_url(&damaged))).send().await.unwrap();
    named(&assert_problem(events, 500, "", "").await);
    let now = (chrono::Utc::now() + chrono::Duration::seconds(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let as_of = app.request(Method::GET, &format!("{}?asOf={now}", app.credit_url(&damaged))).send().await.unwrap();
    named(&assert_problem(as_of, 500, "", "").await);

    // The damaged credit's projection, the list and the other credit read as before.
    assert_eq!(app.get(&damaged).await.status(), 200);
    let list: Value = app.list("pageSize=10").await.json().await.unwrap();
    assert_eq!(list["meta"]["total"], 2);
    assert_eq!(app.get(&sound).await.status(), 200);
    let sound_events = app.request(Method::GET, &format!("{}/events", app.credit_url(&sound))).send().await.unwrap();
    assert_eq!(sound_events.status(), 200);

    // The site feed serves the events before the unreadable one, then names it.
    let feed_url = format!("{}/site/{}/ahds/v1/billing-credit-events", app.base, app.site);
    // Postgres holds back events while an older transaction of a parallel test is open.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while store.feed(Some(app.site), ledger_store::FeedCursor::START, 100).await.unwrap().events.len() < 4 {
        assert!(std::time::Instant::now() < deadline, "the feed never showed the 4 events");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let first: Value =
        app.request(Method::GET, &format!("{feed_url}?limit=100")).send().await.unwrap().json().await.unwrap();
    assert_eq!(first["data"].as_array().unwrap().len(), 2, "the two issues come first: {first}");
    let next = first["next"].as_str().unwrap();
    let stuck = app.request(Method::GET, &format!("{feed_url}?after={next}")).send().await.unwrap();
    named(&assert_problem(stuck, 500, "", "").await);
}

async fn a_database_refusal_is_a_500_and_a_busy_database_a_503(backend: Backend) {
    let app = TestApp::start(backend).await;
    let id = app.create(visits(5)).await["billingCreditId"].as_str().unwrap().to_string();
    let spend = |reference: &str| {
        app.request(Method::POST, &format!("{}/use", app.credit_url(&id)))
            .json(&json!({ "amount": 1, "reference": reference }))
            .send()
    };
    // A rule of the database's own, unknown to the service: no event may mention "poison".
    ledger_store::testing::refuse_payloads_mentioning(&app.db, "poison").await;
    let refused = spend("poison-1").await.unwrap();
    assert!(!refused.headers().contains_key("retry-after"), "retrying cannot help");
    assert_problem(refused, 500, "", "").await;
    assert_eq!(spend("visit-1").await.unwrap().status(), 200);

    if backend == Backend::Sqlite {
        // Another process holds the write lock longer than the store waits for it.
        let mut holder = sqlx::SqliteConnection::connect(&app.db.url).await.unwrap();
        sqlx::query("BEGIN IMMEDIATE").execute(&mut holder).await.unwrap();
        let busy = spend("visit-2").await.unwrap();
        sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
        assert!(busy.headers().contains_key("retry-after"));
        assert_problem(busy, 503, "", "").await;
        assert_eq!(spend("visit-2").await.unwrap().status(), 200, "applies once the lock is free");
    }
}
