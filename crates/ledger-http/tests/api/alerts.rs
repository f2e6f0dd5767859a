//! Balance alerts end to end, in process: the real app, the alerter and the webhook
//! worker over a real store, and a real HTTP receiver that records what it gets.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger_http::alerts::signature::SignatureError;
use ledger_http::alerts::testing::{free_port, ReceivedWebhook, Reply, WebhookReceiver};
use ledger_http::alerts::{self, Alerting, AlertingSettings};
use ledger_http::auth::Authenticator;
use ledger_http::AppState;
use ledger_store::alerts::AlertPolicy;
use ledger_store::testing::TestDatabase;
use ledger_store::{Backend, EventStore};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

ledger_store::backend_tests!(
    an_alert_fires_once_per_crossing_and_rearms_above_the_threshold,
    a_receiver_down_then_up_gets_each_delivery_once_after_retries,
    signatures_detect_tampering_and_follow_the_rotated_secret,
    webhook_administration_validates_and_bounds_its_input,
    deleting_an_endpoint_fails_its_pending_deliveries,
    a_credit_ending_within_the_window_is_announced_once,
    moving_a_credit_to_another_member_alerts_the_former_one,
    a_line_whose_last_credit_expires_is_depleted,
);

const WAIT: Duration = Duration::from_secs(20);
const ADMIN: &str = "billing-credit:read billing-credit:write billing-credit:admin";

struct AlertApp {
    app: TestApp,
    admin: String,
    _alerting: Alerting,
}

fn fast_settings() -> AlertingSettings {
    AlertingSettings {
        policy: AlertPolicy { retry_horizon: chrono::Duration::minutes(5), ..AlertPolicy::default() },
        poll_interval: Duration::from_millis(50),
        expiring_scan_interval: Duration::from_secs(3600),
        webhook_timeout: Duration::from_millis(1_000),
        backoff_base: Duration::from_millis(100),
        backoff_max: Duration::from_millis(400),
    }
}

impl AlertApp {
    async fn start(backend: Backend) -> Self {
        Self::start_with(backend, fast_settings()).await
    }

    async fn start_with(backend: Backend, settings: AlertingSettings) -> Self {
        let db = TestDatabase::new(backend).await;
        let store: Arc<dyn EventStore> = db.store().await;
        // The alerter's first step places its checkpoint at the feed's end; taken here,
        // before any credit exists, so every event of the test is after it.
        store.derive_alerts(&settings.policy, chrono::Utc::now(), 10).await.unwrap();
        let base =
            ledger_http::spawn(AppState { store: store.clone(), auth: Authenticator::hs256(SECRET), replica: None })
                .unwrap();
        let site = Uuid::new_v4();
        let token = token_for(&[&site.to_string()], ALL_SCOPES, 3600);
        let admin = token_for(&[&site.to_string()], ADMIN, 3600);
        let alerting = alerts::spawn(store, settings);
        AlertApp { app: TestApp { base, site, token, client: reqwest::Client::new(), db }, admin, _alerting: alerting }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/site/{}/ahds/v1/{path}", self.app.base, self.app.site)
    }

    async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.app.client.request(method, self.url(path)).bearer_auth(&self.admin);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
    }

    /// Registers `url`; returns (webhookId, secret).
    async fn register(&self, url: &str) -> (String, String) {
        let (status, body) = self.admin(Method::POST, "billing-credit-webhooks", Some(json!({ "url": url }))).await;
        assert_eq!(status, 201, "{body}");
        (body["webhookId"].as_str().unwrap().into(), body["secret"].as_str().unwrap().into())
    }

    async fn credit(&self, member: Uuid, total: u32) -> String {
        let mut body = visits(total);
        body["wellnessPlanMembershipId"] = json!(member);
        body["measurementUnit"] = json!({ "code": "visit" });
        self.app.create(body).await["billingCreditId"].as_str().unwrap().to_string()
    }

    async fn use_credit(&self, id: &str, amount: u32) {
        let url = format!("{}/use", self.app.credit_url(id));
        let response = self
            .app
            .request(Method::POST, &url)
            .json(&json!({ "amount": amount, "reference": "visit" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
    }

    async fn deliveries(&self, webhook: &str) -> Vec<Value> {
        let path = format!("billing-credit-webhooks/{webhook}/deliveries?pageSize=100");
        let (status, body) = self.admin(Method::GET, &path, None).await;
        assert_eq!(status, 200, "{body}");
        body["data"].as_array().unwrap().clone()
    }

    /// Waits until the endpoint's log satisfies `done`; returns it.
    async fn wait_log(&self, webhook: &str, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + WAIT;
        loop {
            let log = self.deliveries(webhook).await;
            if done(&log) {
                return log;
            }
            assert!(Instant::now() < deadline, "{what} not seen within {WAIT:?}: {log:#?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn kinds(received: &[ReceivedWebhook]) -> Vec<String> {
    let mut kinds: Vec<String> = received.iter().map(|r| r.json()["kind"].as_str().unwrap().to_string()).collect();
    kinds.sort();
    kinds
}

/// Long enough for the alerter (polling every 50 ms) to have seen every event written
/// before it, and for an unwanted alert to have been delivered.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(800)).await;
}

async fn an_alert_fires_once_per_crossing_and_rearms_above_the_threshold(backend: Backend) {
    let a = AlertApp::start(backend).await;
    let receiver = WebhookReceiver::start().await;
    let (webhook, secret) = a.register(&receiver.url).await;
    let (status, body) =
        a.admin(Method::PUT, "billing-credit-alert-settings", Some(json!({ "lowThresholds": { "visit": 2 } }))).await;
    assert_eq!((status, &body["lowThresholds"]["visit"]), (200, &json!(2)), "{body}");
    let member = Uuid::new_v4();
    let credit = a.credit(member, 5).await;
    settle().await;
    assert!(receiver.received().is_empty(), "5 visits left is above the threshold");

    a.use_credit(&credit, 3).await; // 2 left: low
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(kinds(&got), ["low"]);
    let low = got[0].json();
    assert_eq!(low["wellnessPlanMembershipId"], json!(member));
    assert_eq!((&low["creditType"], &low["unit"]), (&json!("quantity"), &json!("visit")));
    assert_eq!((&low["remainingAmount"], &low["lowThreshold"]), (&json!(2), &json!(2)));
    assert_eq!(low["siteId"], json!(a.app.site));

    a.use_credit(&credit, 1).await; // 1 left: still low, no second alert
    settle().await;
    assert_eq!(receiver.received().len(), 1, "no alert while the line stays below the threshold");

    a.use_credit(&credit, 1).await; // 0 left: depleted
    let got = receiver.wait_for(2, WAIT).await;
    assert_eq!(kinds(&got), ["depleted", "low"]);

    // Back above the threshold re-arms both; spending it all fires both again.
    let more = a.credit(member, 4).await;
    settle().await;
    assert_eq!(receiver.received().len(), 2, "going back up raises nothing");
    a.use_credit(&more, 4).await;
    let got = receiver.wait_for(4, WAIT).await;
    settle().await;
    let got_after = receiver.received();
    assert_eq!(got_after.len(), 4, "{:?}", kinds(&got_after));
    assert_eq!(kinds(&got), ["depleted", "depleted", "low", "low"]);

    for request in &got {
        assert_eq!(request.verify(&secret), Ok(()), "every delivery is signed with the endpoint's secret");
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(request.path, "/hooks");
        assert_eq!(
            request.header("ledger-timestamp").unwrap(),
            request.header("ledger-signature").unwrap()[2..].split(',').next().unwrap()
        );
    }
    let alert_ids: std::collections::BTreeSet<String> = got.iter().map(|r| r.json()["alertId"].to_string()).collect();
    assert_eq!(alert_ids.len(), 4, "each crossing is its own alert");

    let log = a
        .wait_log(&webhook, "four delivered", |log| log.len() == 4 && log.iter().all(|d| d["status"] == "delivered"))
        .await;
    for entry in &log {
        assert_eq!((&entry["attempts"], &entry["lastStatusCode"]), (&json!(1), &json!(200)), "{entry}");
        assert!(entry["deliveredAt"].is_string() && entry["nextAttemptAt"].is_null(), "{entry}");
    }
    let delivered: BTreeMap<String, String> =
        got.iter().map(|r| (r.delivery_id().to_string(), r.json()["alertId"].as_str().unwrap().to_string())).collect();
    for entry in &log {
        assert_eq!(
            delivered.get(entry["deliveryId"].as_str().unwrap()),
            entry["alertId"].as_str().map(String::from).as_ref()
        );
    }
}

async fn a_receiver_down_then_up_gets_each_delivery_once_after_retries(backend: Backend) {
    let a = AlertApp::start(backend).await;
    let port = free_port();
    let (webhook, secret) = a.register(&format!("http://127.0.0.1:{port}/hooks")).await;
    let member = Uuid::new_v4();
    let credit = a.credit(member, 1).await;
    a.use_credit(&credit, 1).await; // 0 left: low and depleted

    // Nothing listens: attempts fail and are retried.
    let log = a
        .wait_log(&webhook, "two failed attempts each", |log| {
            log.len() == 2 && log.iter().all(|d| d["attempts"].as_u64() >= Some(2))
        })
        .await;
    for entry in &log {
        assert_eq!(entry["status"], "pending", "{entry}");
        assert!(entry["lastError"].as_str().unwrap().contains("cannot reach"), "{entry}");
        assert!(entry["lastStatusCode"].is_null() && entry["nextAttemptAt"].is_string(), "{entry}");
    }

    // Up, answering 503 first: still retried, now with the status recorded.
    let receiver = WebhookReceiver::start_on(port).await;
    receiver.set_reply(Reply::Status(503));
    a.wait_log(&webhook, "a 503 recorded", |log| log.iter().all(|d| d["lastStatusCode"] == 503)).await;
    let before = receiver.switch_reply(Reply::Status(204));
    let log = a.wait_log(&webhook, "both delivered", |log| log.iter().all(|d| d["status"] == "delivered")).await;
    settle().await;

    // Exactly one success per delivery, under the id it was retried with.
    let got = receiver.received();
    let mut answered_204: Vec<Uuid> = got[before..].iter().map(ReceivedWebhook::delivery_id).collect();
    answered_204.sort();
    let mut logged: Vec<Uuid> = log.iter().map(|d| d["deliveryId"].as_str().unwrap().parse().unwrap()).collect();
    logged.sort();
    assert_eq!(answered_204, logged, "one 2xx each, then nothing more");
    for entry in &a.deliveries(&webhook).await {
        assert_eq!((&entry["status"], &entry["lastStatusCode"]), (&json!("delivered"), &json!(204)), "{entry}");
        assert!(entry["attempts"].as_u64().unwrap() >= 4, "2 unreachable, at least one 503, one 204: {entry}");
        let id: Uuid = entry["deliveryId"].as_str().unwrap().parse().unwrap();
        assert!(got[..before].iter().any(|r| r.delivery_id() == id), "the 503 answered the same delivery id");
    }
    for request in &got {
        assert_eq!(request.verify(&secret), Ok(()));
    }
}

async fn signatures_detect_tampering_and_follow_the_rotated_secret(backend: Backend) {
    let a = AlertApp::start(backend).await;
    let receiver = WebhookReceiver::start().await;
    let (webhook, secret) = a.register(&receiver.url).await;
    let member = Uuid::new_v4();
    let credit = a.credit(member, 2).await;
    a.use_credit(&credit, 2).await;
    let got = receiver.wait_for(2, WAIT).await;
    let request = &got[0];
    assert_eq!(request.verify(&secret), Ok(()));

    let mut tampered = request.clone();
    tampered.body = String::from_utf8(tampered.body).unwrap().replace("\"kind\"", "\"kind\" ").into_bytes();
    assert_eq!(tampered.verify(&secret), Err(SignatureError::Mismatch), "a changed body is detected");
    assert_eq!(request.verify("whsec_not-the-secret"), Err(SignatureError::Mismatch), "a wrong secret is detected");
    let mut forged = request.clone();
    for (name, value) in forged.headers.iter_mut() {
        if name == "ledger-signature" {
            let t = value.split(',').next().unwrap().to_string();
            *value = format!("{t},v1={}", "0".repeat(64));
        }
    }
    assert_eq!(forged.verify(&secret), Err(SignatureError::Mismatch), "a forged signature is detected");
    let mut other_id = request.clone();
    for (name, value) in other_id.headers.iter_mut() {
        if name == "ledger-delivery-id" {
            *value = Uuid::new_v4().to_string();
        }
    }
    assert_eq!(other_id.verify(&secret), Err(SignatureError::Mismatch), "the delivery id is signed too");

    // Rotation: a new secret, shown once; later deliveries are signed with it only.
    let (status, rotated) =
        a.admin(Method::POST, &format!("billing-credit-webhooks/{webhook}/rotate-secret"), None).await;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    let (_, listed) = a.admin(Method::GET, &format!("billing-credit-webhooks/{webhook}"), None).await;
    assert!(listed.get("secret").is_none(), "a read never shows the secret: {listed}");

    // Redelivery: a new delivery of the same alert, signed with the new secret.
    let delivery_id = request.delivery_id();
    let path = format!("billing-credit-webhooks/{webhook}/deliveries/{delivery_id}/redeliver");
    let (status, again) = a.admin(Method::POST, &path, None).await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(again["alertId"], request.json()["alertId"]);
    assert_ne!(again["deliveryId"], json!(delivery_id));
    let got = receiver.wait_for(3, WAIT).await;
    let redelivered = got.iter().find(|r| json!(r.delivery_id()) == again["deliveryId"]).expect("redelivered");
    assert_eq!(redelivered.verify(new_secret), Ok(()));
    assert_eq!(redelivered.verify(&secret), Err(SignatureError::Mismatch), "the old secret no longer signs");
    assert_eq!(redelivered.body, request.body, "the same alert");
}

async fn webhook_administration_validates_and_bounds_its_input(backend: Backend) {
    let a = AlertApp::start(backend).await;
    for (url, rule) in [
        ("ftp://example.com/x", "invalid-url"),
        ("not a url", "invalid-url"),
        ("https://u:p@example.com/", "invalid-url"),
    ] {
        let response = a
            .app
            .client
            .post(a.url("billing-credit-webhooks"))
            .bearer_auth(&a.admin)
            .json(&json!({ "url": url }))
            .send()
            .await
            .unwrap();
        assert_problem(response, 400, "url", rule).await;
    }
    // Without the admin scope: 403.
    let response = a.app.request(Method::GET, &a.url("billing-credit-webhooks")).send().await.unwrap();
    assert_problem(response, 403, "", "").await;

    let mut ids = vec![];
    for i in 0..ledger_store::alerts::WEBHOOK_ENDPOINTS_PER_SITE_MAX {
        ids.push(a.register(&format!("https://example.com/hook/{i}")).await.0);
    }
    let (status, body) =
        a.admin(Method::POST, "billing-credit-webhooks", Some(json!({ "url": "https://example.com/one-more" }))).await;
    assert_eq!(status, 409, "{body}");
    let (status, list) = a.admin(Method::GET, "billing-credit-webhooks?page=1&pageSize=15", None).await;
    assert_eq!(status, 200);
    assert_eq!(list["data"].as_array().unwrap().len(), 5);
    assert_eq!((&list["meta"]["total"], &list["meta"]["page"]), (&json!(20), &json!(1)));
    assert!(list["data"].as_array().unwrap().iter().all(|w| w.get("secret").is_none()));

    let (status, _) = a.admin(Method::DELETE, &format!("billing-credit-webhooks/{}", ids[0]), None).await;
    assert_eq!(status, 204);
    let (status, _) = a.admin(Method::GET, &format!("billing-credit-webhooks/{}", ids[0]), None).await;
    assert_eq!(status, 404);
    let (status, _) = a.admin(Method::DELETE, &format!("billing-credit-webhooks/{}", ids[0]), None).await;
    assert_eq!(status, 404);
    a.register("https://example.com/room-again").await;

    let (status, body) =
        a.admin(Method::PUT, "billing-credit-alert-settings", Some(json!({ "lowThreshold": -1 }))).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) =
        a.admin(Method::PUT, "billing-credit-alert-settings", Some(json!({ "expiringWithinDays": 9999 }))).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = a.admin(Method::GET, "billing-credit-alert-settings", None).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({ "lowThreshold": 1, "lowThresholds": {}, "expiringWithinDays": 30, "customized": false }));
    let (status, body) = a
        .admin(
            Method::PUT,
            "billing-credit-alert-settings",
            Some(json!({ "lowThreshold": 2.5, "lowThresholds": { "USD": 25 }, "expiringWithinDays": 7 })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = a.admin(Method::GET, "billing-credit-alert-settings", None).await;
    assert_eq!(
        body,
        json!({ "lowThreshold": 2.5, "lowThresholds": { "USD": 25 }, "expiringWithinDays": 7, "customized": true })
    );
}

async fn deleting_an_endpoint_fails_its_pending_deliveries(backend: Backend) {
    let a = AlertApp::start(backend).await;
    let (webhook, _) = a.register(&format!("http://127.0.0.1:{}/hooks", free_port())).await;
    let credit = a.credit(Uuid::new_v4(), 1).await;
    a.use_credit(&credit, 1).await;
    a.wait_log(&webhook, "failed attempts", |log| {
        log.len() == 2 && log.iter().all(|d| d["attempts"].as_u64() >= Some(1))
    })
    .await;
    let (status, _) = a.admin(Method::DELETE, &format!("billing-credit-webhooks/{webhook}"), None).await;
    assert_eq!(status, 204);
    // The log outlives the endpoint; nothing of it is pending any more.
    let log = a.deliveries(&webhook).await;
    assert_eq!(log.len(), 2);
    for entry in &log {
        assert_eq!(
            (&entry["status"], &entry["lastError"]),
            (&json!("failed"), &json!("the endpoint was deleted")),
            "{entry}"
        );
    }
    let delivery = log[0]["deliveryId"].as_str().unwrap();
    let path = format!("billing-credit-webhooks/{webhook}/deliveries/{delivery}/redeliver");
    assert_eq!(a.admin(Method::POST, &path, None).await.0, 404, "a deleted endpoint gets no redelivery");
}

async fn a_credit_ending_within_the_window_is_announced_once(backend: Backend) {
    let settings = AlertingSettings { expiring_scan_interval: Duration::from_millis(100), ..fast_settings() };
    let a = AlertApp::start_with(backend, settings).await;
    let receiver = WebhookReceiver::start().await;
    let (_, secret) = a.register(&receiver.url).await;
    let (status, _) =
        a.admin(Method::PUT, "billing-credit-alert-settings", Some(json!({ "expiringWithinDays": 7 }))).await;
    assert_eq!(status, 200);
    let member = Uuid::new_v4();
    let day = |days: i64| (chrono::Utc::now() + chrono::Duration::days(days)).format("%Y-%m-%d").to_string();
    for (end, total) in [(day(5), 3), (day(20), 4)] {
        let mut body = visits(total);
        body["wellnessPlanMembershipId"] = json!(member);
        body["measurementUnit"] = json!({ "code": "visit" });
        body["endDate"] = json!(end);
        a.app.create(body).await;
    }
    let got = receiver.wait_for(1, WAIT).await;
    settle().await;
    let got_after = receiver.received();
    assert_eq!(got_after.len(), 1, "only the credit ending within 7 days, once: {:?}", kinds(&got_after));
    let alert = got[0].json();
    assert_eq!(
        (&alert["kind"], &alert["remainingAmount"], &alert["expiringWithinDays"]),
        (&json!("expiring"), &json!(3), &json!(7))
    );
    assert!(alert["endDate"].as_str().unwrap().starts_with(&day(5)), "{alert}");
    assert_eq!(alert["wellnessPlanMembershipId"], json!(member));
    assert_eq!(got[0].verify(&secret), Ok(()));
}

async fn moving_a_credit_to_another_member_alerts_the_former_one(backend: Backend) {
    let a = AlertApp::start(backend).await;
    let receiver = WebhookReceiver::start().await;
    a.register(&receiver.url).await;
    let (former, new) = (Uuid::new_v4(), Uuid::new_v4());
    let moved = a.credit(former, 3).await;
    a.credit(former, 1).await; // 4 visits: above the threshold of 1
    settle().await;
    assert!(receiver.received().is_empty());

    let response = a
        .app
        .request(Method::PATCH, &a.app.credit_url(&moved))
        .json(&json!({ "wellnessPlanMembershipId": new }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let got = receiver.wait_for(1, WAIT).await;
    settle().await;
    assert_eq!(receiver.received().len(), 1, "{:?}", kinds(&receiver.received()));
    let alert = got[0].json();
    assert_eq!((&alert["kind"], &alert["remainingAmount"]), (&json!("low"), &json!(1)));
    assert_eq!(alert["wellnessPlanMembershipId"], json!(former), "the member the credit left");
}

async fn a_line_whose_last_credit_expires_is_depleted(backend: Backend) {
    let a = AlertApp::start(backend).await;
    let receiver = WebhookReceiver::start().await;
    a.register(&receiver.url).await;
    let member = Uuid::new_v4();
    let credit = a.credit(member, 3).await;
    let inactive = {
        let mut body = visits(2);
        body["wellnessPlanMembershipId"] = json!(member);
        body["measurementUnit"] = json!({ "code": "visit" });
        body["isActive"] = json!(false);
        a.app.create(body).await
    };
    assert_eq!(inactive["isActive"], json!(false));
    settle().await;
    assert!(receiver.received().is_empty(), "an inactive credit joins no line, and raises nothing");

    let url = format!("{}/expire", a.app.credit_url(&credit));
    let response = a.app.request(Method::POST, &url).json(&json!({})).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let got = receiver.wait_for(2, WAIT).await;
    settle().await;
    assert_eq!(receiver.received().len(), 2);
    assert_eq!(kinds(&got), ["depleted", "low"], "3 visits written off: the line is at 0");
    assert!(got.iter().all(|r| r.json()["remainingAmount"] == json!(0) && r.json()["unit"] == json!("visit")));
}
