//! Balance alerts on NATS: derived by the alerter into the outbox, published by the
//! alert publisher on `{prefix}.alerts.{siteId}.{kind}` with Nats-Msg-Id = alertId.

use std::time::{Duration, Instant};

use chrono::Utc;
use ledger_store::alerts::AlertPolicy;
use ledger_store::testing::TestDatabase;
use serde_json::json;
use uuid::Uuid;

use crate::common::Env;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_depleted_balance_is_published_once_on_its_alert_subject() {
    let env = Env::new("alerts").await;
    let db = TestDatabase::postgres().await;
    let store = db.store().await;
    let policy = AlertPolicy { nats: true, ..AlertPolicy::default() };
    store.derive_alerts(&policy, Utc::now(), 10).await.unwrap(); // the checkpoint starts here
    let mut settings = env.settings();
    settings.alerts = true;
    settings.publish = false;
    let _handle = ledger_nats::start(settings, store.clone()).await.expect("start");

    let (site, credit, member) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let subject = env.command_subject(site);
    let (issue, spend) = (Uuid::new_v4(), Uuid::new_v4());
    env.publish_all(vec![
        (
            subject.clone(),
            json!({
                "commandId": issue, "type": "issue", "billingCreditId": credit, "creditType": "quantity",
                "startDate": "2020-01-01", "totalAmount": 3, "measurementUnit": {"code": "visit"},
                "wellnessPlanMembershipId": member
            })
            .to_string()
            .into_bytes(),
            Some(issue.to_string()),
        ),
        (
            subject,
            json!({"commandId": spend, "type": "use", "billingCreditId": credit, "amount": 3, "reference": "r"})
                .to_string()
                .into_bytes(),
            Some(spend.to_string()),
        ),
    ])
    .await;
    env.wait_drained(Duration::from_secs(20)).await;

    // The alerter runs in the service's process; here the test steps it until the feed
    // (which lags behind open transactions of the shared server) has given both events.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut alerts = 0;
    while alerts < 2 {
        alerts += store.derive_alerts(&policy, Utc::now(), 500).await.unwrap().alerts;
        assert!(Instant::now() < deadline, "{alerts} of 2 alerts derived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    env.wait_count(&env.alert_stream(), 2, Duration::from_secs(20)).await;
    let messages = env.read_stream(&env.alert_stream()).await;
    let mut kinds = vec![];
    for (subject, msg_id, body) in &messages {
        let kind = body["kind"].as_str().unwrap();
        assert_eq!(subject, &format!("{}.alerts.{site}.{kind}", env.prefix()));
        assert_eq!(msg_id.as_deref(), body["alertId"].as_str(), "Nats-Msg-Id is the alert id");
        assert_eq!((&body["wellnessPlanMembershipId"], &body["remainingAmount"]), (&json!(member), &json!(0)));
        kinds.push(kind.to_string());
    }
    kinds.sort();
    assert_eq!(kinds, ["depleted", "low"]);

    // Nothing more: the rows are delivered, and a re-run of the alerter derives nothing.
    assert_eq!(store.derive_alerts(&policy, Utc::now(), 500).await.unwrap().alerts, 0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(env.stream_count(&env.alert_stream()).await, 2);
}
