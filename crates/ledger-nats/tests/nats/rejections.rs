//! Refused commands are answered on the rejection subject, with their reason, and are
//! terminated: never redelivered, nothing written.

use std::time::Duration;

use ledger_store::testing::TestDatabase;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::Env;

fn issue(command_id: Uuid, credit: Uuid, total: u32) -> Value {
    json!({
        "commandId": command_id, "type": "issue", "billingCreditId": credit,
        "creditType": "quantity", "startDate": "2020-01-01", "totalAmount": total,
        "measurementUnit": {"code": "visit"}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_commands_are_answered_with_their_reason_and_never_redelivered() {
    let env = Env::new("rejections").await;
    let db = TestDatabase::postgres().await;
    let store = db.store().await;
    let mut settings = env.settings();
    settings.ack_wait = Duration::from_secs(1);
    settings.publish = false;
    let handle = ledger_nats::start(settings, store.clone()).await.expect("start");

    let site = Uuid::new_v4();
    let credit = Uuid::new_v4();
    let subject = env.command_subject(site);
    let issue_id = Uuid::new_v4();
    env.publish_all(vec![(
        subject.clone(),
        issue(issue_id, credit, 2).to_string().into_bytes(),
        Some(issue_id.to_string()),
    )])
    .await;
    env.wait_drained(Duration::from_secs(20)).await;
    assert_eq!(store.load(site, credit).await.unwrap().expect("issued").version, 1);

    // (commandId, subject, body, expected rule, expected field)
    type Case = (Option<Uuid>, String, String, &'static str, Option<&'static str>);
    let id = |_: ()| Uuid::new_v4();
    let mut cases: Vec<Case> = vec![];
    cases.push((None, subject.clone(), r#"{"commandId": "x", "type": "use","#.into(), "malformed-json", Some("body")));
    let c = id(());
    cases.push((
        Some(c),
        subject.clone(),
        json!({"commandId": c, "type": "spend", "billingCreditId": credit}).to_string(),
        "unknown-command-type",
        Some("type"),
    ));
    let c = id(());
    cases.push((
        Some(c),
        subject.clone(),
        json!({"commandId": c, "type": "use", "billingCreditId": credit, "amount": "1", "reference": "r"}).to_string(),
        "invalid-type",
        Some("amount"),
    ));
    let c = id(());
    cases.push((Some(c), subject.clone(), json!({"commandId": c, "type": "use", "billingCreditId": credit, "amount": 1, "reference": "r", "colour": "red"}).to_string(), "unknown-field", Some("colour")));
    cases.push((
        None,
        subject.clone(),
        json!({"type": "use", "billingCreditId": credit, "amount": 1, "reference": "r"}).to_string(),
        "required",
        Some("commandId"),
    ));
    let overspend = id(());
    cases.push((
        Some(overspend),
        subject.clone(),
        json!({"commandId": overspend, "type": "use", "billingCreditId": credit, "amount": 5, "reference": "r"})
            .to_string(),
        "insufficient-balance",
        Some("amount"),
    ));
    let c = id(());
    cases.push((
        Some(c),
        subject.clone(),
        json!({"commandId": c, "type": "use", "billingCreditId": Uuid::new_v4(), "amount": 1, "reference": "r"})
            .to_string(),
        "credit-not-found",
        None,
    ));
    let c = id(());
    cases.push((
        Some(c),
        subject.clone(),
        json!({"commandId": c, "type": "use", "billingCreditId": credit, "amount": 0.5, "reference": "r"}).to_string(),
        "amount-not-whole-units",
        Some("amount"),
    ));
    let c = id(());
    cases.push((
        Some(c),
        subject.clone(),
        json!({"commandId": c, "type": "reverse", "billingCreditId": credit, "eventId": Uuid::new_v4()}).to_string(),
        "event-not-reversible",
        Some("eventId"),
    ));
    let c = id(());
    cases.push((
        Some(c),
        subject.clone(),
        json!({"commandId": c, "type": "adjust", "billingCreditId": credit, "delta": 0}).to_string(),
        "adjustment-zero",
        Some("delta"),
    ));
    let c = id(());
    cases.push((Some(c), subject.clone(), issue(c, credit, 3).to_string(), "credit-already-exists", None));
    let c = id(());
    cases.push((Some(c), subject.clone(), json!({"commandId": c, "type": "consume", "wellnessPlanMembershipId": Uuid::new_v4(), "amount": 1, "creditType": "quantity", "measurementUnit": "visit", "reference": "inv-1"}).to_string(), "insufficient-balance", Some("amount")));
    let c = id(());
    let bad_site = format!("{}.commands.not-a-site", env.prefix());
    cases.push((
        Some(c),
        bad_site,
        json!({"commandId": c, "type": "expire", "billingCreditId": credit}).to_string(),
        "invalid-site-id",
        Some("subject"),
    ));

    let mut messages: Vec<(String, Vec<u8>, Option<String>)> = cases
        .iter()
        .map(|(c, subject, body, ..)| (subject.clone(), body.clone().into_bytes(), c.map(|c| c.to_string())))
        .collect();
    // The engine retrying a refused command (another message id): refused again, and
    // answered once (the rejection is deduplicated by commandId).
    let overspend_body = cases.iter().find(|c| c.0 == Some(overspend)).unwrap().2.clone();
    messages.push((subject.clone(), overspend_body.into_bytes(), None));
    // And a good command after them all: the intake goes on.
    let good = Uuid::new_v4();
    messages.push((
        subject.clone(),
        json!({"commandId": good, "type": "use", "billingCreditId": credit, "amount": 1, "reference": "visit-1"})
            .to_string()
            .into_bytes(),
        Some(good.to_string()),
    ));
    let published = 1 + messages.len() as u64;
    env.publish_all(messages).await;

    env.wait_drained(Duration::from_secs(20)).await;
    env.wait_count(&env.rejection_stream(), cases.len() as u64, Duration::from_secs(10)).await;
    let rejections = env.read_stream(&env.rejection_stream()).await;
    for (command_id, subject, body, rule, field) in &cases {
        let found = rejections
            .iter()
            .find(|(_, _, r)| match command_id {
                Some(c) if r["commandId"] != Value::Null => r["commandId"] == json!(c),
                _ => r["rule"] == json!(rule) && r["commandId"] == Value::Null,
            })
            .unwrap_or_else(|| panic!("no rejection for {body}: {rejections:#?}"));
        let (rejection_subject, _, r) = found;
        assert_eq!(r["rule"], json!(rule), "{body}: {r}");
        assert_eq!(r["field"], json!(field), "{body}: {r}");
        assert!(r["message"].as_str().is_some_and(|m| !m.is_empty()), "{r}");
        assert_eq!(r["deliveries"], json!(1), "{r}");
        if *rule == "invalid-site-id" {
            assert_eq!(r["siteId"], Value::Null);
            assert_eq!(rejection_subject, &format!("{}.rejections.not-a-site", env.prefix()));
        } else {
            assert_eq!(r["siteId"], json!(site), "{r}");
            assert_eq!(rejection_subject, &format!("{}.rejections.{site}", env.prefix()));
            assert!(subject.ends_with(&site.to_string()));
        }
        if *rule == "unknown-command-type" || *rule == "insufficient-balance" {
            assert!(r["type"].is_string(), "{r}");
        }
    }

    // Three ack waits later nothing came back: each message was delivered exactly once.
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let info = env.consumer_info().await;
    assert_eq!(info.num_redelivered, 0, "{info:?}");
    assert_eq!(info.num_ack_pending, 0, "{info:?}");
    assert_eq!(info.delivered.consumer_sequence, published, "one delivery per message: {info:?}");
    assert_eq!(env.stream_count(&env.rejection_stream()).await, cases.len() as u64);

    // The refusals wrote nothing; the good command was applied once.
    let credit_now = store.load(site, credit).await.unwrap().unwrap();
    assert_eq!(credit_now.version, 2);
    assert_eq!(credit_now.used_amount, 1.into());
    handle.shutdown().await.expect("graceful shutdown");
}
