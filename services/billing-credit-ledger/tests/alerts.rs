//! Webhook alerts from the real binary: a replica killed (SIGKILL) in the middle of a
//! delivery loses nothing, and two replicas on one database deliver each alert once.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use ledger_http::alerts::testing::{Reply, WebhookReceiver};
use ledger_store::testing::TestDatabase;
use serde_json::{json, Value};
use support::*;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(30);

/// Short timings: attempts time out after 1 s, so a dead replica's claim (timeout + 2 s
/// lease margin) is taken over 3 s after it was made.
const FAST: &[(&str, &str)] = &[
    ("ALERT_POLL_INTERVAL_MS", "50"),
    ("WEBHOOK_TIMEOUT_MS", "1000"),
    ("WEBHOOK_BACKOFF_BASE_MS", "100"),
    ("WEBHOOK_BACKOFF_MAX_MS", "500"),
];

fn token() -> String {
    mint_token(&["billing-credit:read", "billing-credit:write", "billing-credit:admin"])
}

async fn register(service: &Service, token: &str, url: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{}/site/{SITE}/ahds/v1/billing-credit-webhooks", service.base))
        .bearer_auth(token)
        .json(&json!({ "url": url }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json::<Value>().await.unwrap()["webhookId"].as_str().unwrap().to_string()
}

/// A member's credit of `total` visits, all of it used: a low and a depleted alert.
async fn deplete(service: &Service, token: &str, total: u32) {
    let client = reqwest::Client::new();
    let body = json!({
        "creditType": "quantity", "startDate": "2025-01-01", "totalAmount": total,
        "measurementUnit": { "code": "visit" }, "wellnessPlanMembershipId": Uuid::new_v4()
    });
    let response = client.post(service.credits_url()).bearer_auth(token).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 201);
    let id = response.json::<Value>().await.unwrap()["billingCreditId"].as_str().unwrap().to_string();
    let response = client
        .post(format!("{}/{id}/use", service.credits_url()))
        .bearer_auth(token)
        .json(&json!({ "amount": total, "reference": "visit" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

async fn delivery_log(service: &Service, token: &str, webhook: &str) -> Vec<Value> {
    let url = format!("{}/site/{SITE}/ahds/v1/billing-credit-webhooks/{webhook}/deliveries?pageSize=100", service.base);
    let response = reqwest::Client::new().get(url).bearer_auth(token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["data"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_during_delivery_loses_no_alert() {
    let db = TestDatabase::postgres().await;
    let token = token();
    let receiver = WebhookReceiver::start().await;
    receiver.set_reply(Reply::Hang); // the first attempts never get an answer
    let service = start(&db.url, FAST).await;
    let webhook = register(&service, &token, &receiver.url).await;
    deplete(&service, &token, 2).await;
    let in_flight = receiver.wait_for(2, WAIT).await;
    let first_ids: BTreeSet<Uuid> = in_flight.iter().map(|r| r.delivery_id()).collect();
    assert_eq!(first_ids.len(), 2);

    // SIGKILL while both requests wait for their answer: nothing is recorded.
    drop(service);
    let before_restart = receiver.switch_reply(Reply::Status(200));
    let service = start(&db.url, FAST).await;
    let deadline = Instant::now() + WAIT;
    let log = loop {
        let log = delivery_log(&service, &token, &webhook).await;
        if log.len() == 2 && log.iter().all(|d| d["status"] == "delivered") {
            break log;
        }
        assert!(Instant::now() < deadline, "not delivered after the restart: {log:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after: Vec<Uuid> = receiver.received()[before_restart..].iter().map(|r| r.delivery_id()).collect();
    assert_eq!(after.len(), 2, "one successful attempt each after the restart: {after:?}");
    assert_eq!(after.into_iter().collect::<BTreeSet<_>>(), first_ids, "sent again under the same delivery ids");
    for entry in &log {
        assert_eq!(entry["lastStatusCode"], 200, "{entry}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_deliver_each_alert_once() {
    const MEMBERS: usize = 10;
    let db = TestDatabase::postgres().await;
    let token = token();
    let receiver = WebhookReceiver::start().await;
    let first = start(&db.url, FAST).await;
    let second = start(&db.url, FAST).await;
    let webhook = register(&first, &token, &receiver.url).await;
    for i in 0..MEMBERS {
        // Spread over both replicas' APIs; both run the alerter and the worker.
        let service = if i % 2 == 0 { &first } else { &second };
        deplete(service, &token, 1 + i as u32 % 3).await;
    }
    let expected = 2 * MEMBERS;
    let got = receiver.wait_for(expected, WAIT).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got_after = receiver.received();
    assert_eq!(got_after.len(), expected, "{} requests for {expected} alerts", got_after.len());
    let deliveries: BTreeSet<Uuid> = got.iter().map(|r| r.delivery_id()).collect();
    let alerts: BTreeSet<String> = got.iter().map(|r| r.json()["alertId"].as_str().unwrap().to_string()).collect();
    assert_eq!((deliveries.len(), alerts.len()), (expected, expected), "each alert derived and delivered once");
    let log = delivery_log(&second, &token, &webhook).await;
    assert_eq!(log.len(), expected);
    assert!(log.iter().all(|d| d["status"] == "delivered" && d["attempts"] == 1), "{log:#?}");
}
