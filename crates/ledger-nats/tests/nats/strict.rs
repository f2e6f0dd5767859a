//! Strict input over NATS (issue 13): a command the REST API would refuse with a 400 is
//! answered on the rejection subject with the same rule and field, and writes nothing;
//! the largest input it accepts is stored, and its events are published.

use std::time::Duration;

use ledger_store::testing::TestDatabase;
use ledger_wire::limits::{FREE_FORM_BYTES_MAX, FREE_FORM_DEPTH_MAX, TEXT_CHARS_MAX};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::Env;

/// `{"n":{"n":…{}}}`, `levels` deep.
fn nested(levels: usize) -> Value {
    (1..levels).fold(json!({}), |inner, _| json!({ "n": inner }))
}

/// An object `levels` deep and exactly `bytes` long as compact JSON.
fn free_form(levels: usize, bytes: usize) -> Value {
    let mut object = nested(levels);
    object["number"] = serde_json::from_str("12345678901234567890.1230").unwrap();
    object["pad"] = json!("é\tline\n");
    let size = serde_json::to_string(&object).unwrap().len();
    object["pad"] = json!(format!("é\tline\n{}", "x".repeat(bytes - size)));
    assert_eq!(serde_json::to_string(&object).unwrap().len(), bytes);
    object
}

fn issue(credit: Uuid) -> Value {
    json!({
        "commandId": Uuid::new_v4(), "type": "issue", "billingCreditId": credit,
        "creditType": "quantity", "startDate": "2020-01-01", "totalAmount": 5,
        "measurementUnit": {"code": "visit"}, "wellnessPlanMembershipId": credit
    })
}

fn command(kind: &str, credit: Uuid, fields: Value) -> Value {
    let mut body = json!({ "commandId": Uuid::new_v4(), "type": kind, "billingCreditId": credit });
    for (k, v) in fields.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_input_is_rejected_with_the_rest_rule_and_field() {
    let env = Env::new("strict").await;
    let db = TestDatabase::postgres().await;
    let store = db.store().await;
    let mut settings = env.settings();
    settings.publish = false;
    let handle = ledger_nats::start(settings, store.clone()).await.expect("start");
    let site = Uuid::new_v4();
    let credit = Uuid::new_v4();
    let subject = env.command_subject(site);
    let first = issue(credit);
    env.publish_all(vec![(subject.clone(), first.to_string().into_bytes(), None)]).await;
    env.wait_drained(Duration::from_secs(20)).await;
    assert_eq!(store.load(site, credit).await.unwrap().expect("issued").version, 1);

    let long = "x".repeat(TEXT_CHARS_MAX + 1);
    let with_issue = |field: &str, value: Value| {
        let mut body = issue(Uuid::new_v4());
        body[field] = value;
        body
    };
    // (body, rule, field)
    let mut cases: Vec<(String, &str, String)> = vec![
        (with_issue("appliedTo", nested(FREE_FORM_DEPTH_MAX + 1)).to_string(), "too-deep", "appliedTo".into()),
        // Past serde_json's recursion limit for the whole message: still this rule.
        (with_issue("extensions", nested(200)).to_string(), "too-deep", "extensions".into()),
        (with_issue("startDate", json!("+10000-01-01")).to_string(), "invalid-value", "startDate".into()),
        (with_issue("endDate", json!("2016-12-31T23:59:60Z")).to_string(), "invalid-value", "endDate".into()),
        (
            with_issue("currency", json!({ "code": "US\u{0}D" })).to_string(),
            "control-character",
            "currency.code".into(),
        ),
    ];
    let mut on = |kind: &str, fields: Value, rule: &'static str, field: &str| {
        cases.push((command(kind, credit, fields).to_string(), rule, field.to_string()))
    };
    let mut replace = issue(credit);
    replace["expiry"] = free_form(1, FREE_FORM_BYTES_MAX + 1);
    replace["type"] = json!("replace");
    on("replace", replace, "too-large", "expiry");
    on("patch", json!({ "availableTo": nested(FREE_FORM_DEPTH_MAX + 1) }), "too-deep", "availableTo");
    on("patch", json!({ "extensions": { "a": ["ok", "\u{0}"] } }), "control-character", "extensions.a[1]");
    on("patch", json!({ "startDate": "-2025-01-01" }), "invalid-value", "startDate");
    for field in ["creditType", "totalAmount", "startDate", "isActive", "usedAmount", "wastedAmount", "remainingAmount"]
    {
        on("patch", json!({ field: null }), "not-nullable", field);
    }
    on("use", json!({ "amount": 1, "reference": "visit\u{0}" }), "control-character", "reference");
    on("use", json!({ "amount": 1, "reference": "v", "note": long }), "too-long", "note");
    on("use", json!({ "amount": 1, "reference": "v", "occurredAt": "0000-01-01" }), "invalid-value", "occurredAt");
    on("use", json!({ "amount": 1, "reference": "v", "actor": "engine\u{0}" }), "control-character", "actor");
    on("waste", json!({ "amount": 1, "reason": "\u{1b}[2J" }), "control-character", "reason");
    on("adjust", json!({ "delta": 1, "reason": long }), "too-long", "reason");
    on("deactivate", json!({ "reason": "a\u{0}" }), "control-character", "reason");
    let inexact = command("use", credit, json!({ "reference": "v" })).to_string().replacen(
        '{',
        r#"{"amount":0.99999999999999999999999999999e0,"#,
        1,
    );
    cases.push((inexact, "invalid-value", "amount".into()));
    let consume = json!({
        "commandId": Uuid::new_v4(), "type": "consume", "wellnessPlanMembershipId": credit, "amount": 1,
        "creditType": "quantity", "measurementUnit": "vi\u{0}sit", "reference": "inv-1"
    });
    cases.push((consume.to_string(), "control-character", "measurementUnit".into()));

    let messages = cases.iter().map(|(body, ..)| (subject.clone(), body.clone().into_bytes(), None)).collect();
    env.publish_all(messages).await;
    env.wait_drained(Duration::from_secs(30)).await;
    env.wait_count(&env.rejection_stream(), cases.len() as u64, Duration::from_secs(10)).await;
    let rejections = env.read_stream(&env.rejection_stream()).await;
    for (body, rule, field) in &cases {
        // Read off the text: a body nested past serde_json's limit does not parse.
        let at = body.find(r#""commandId":""#).expect("a commandId") + 13;
        let command_id = json!(body[at..at + 36]);
        let (_, _, r) = rejections
            .iter()
            .find(|(_, _, r)| r["commandId"] == command_id)
            .unwrap_or_else(|| panic!("no rejection for {rule} {field}: {rejections:#?}"));
        assert_eq!((r["rule"].as_str(), r["field"].as_str()), (Some(*rule), Some(field.as_str())), "{r}");
    }
    let now = store.load(site, credit).await.unwrap().unwrap();
    assert_eq!((now.version, now.used_amount), (1, 0.into()), "nothing was written");
    handle.shutdown().await.expect("graceful shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_free_form_objects_are_stored_and_published() {
    let env = Env::new("strict-largest").await;
    let db = TestDatabase::postgres().await;
    let store = db.store().await;
    let handle = ledger_nats::start(env.settings(), store.clone()).await.expect("start");
    let site = Uuid::new_v4();
    let credit = Uuid::new_v4();
    let subject = env.command_subject(site);
    let largest = free_form(FREE_FORM_DEPTH_MAX, FREE_FORM_BYTES_MAX);
    let deep = free_form(FREE_FORM_DEPTH_MAX, 14_000);
    let mut first = issue(credit);
    first["appliedTo"] = largest.clone();
    first["availableTo"] = deep.clone();
    first["expiry"] = deep.clone();
    first["extensions"] = deep.clone();
    let patch = command("patch", credit, json!({ "appliedTo": deep, "extensions": largest }));
    let messages = [first, patch].iter().map(|body| (subject.clone(), body.to_string().into_bytes(), None)).collect();
    env.publish_all(messages).await;
    env.wait_drained(Duration::from_secs(20)).await;
    assert_eq!(env.stream_count(&env.rejection_stream()).await, 0);

    env.wait_count(&env.event_stream(), 2, Duration::from_secs(120)).await;
    let published = env.read_stream(&env.event_stream()).await;
    let types: Vec<&str> = published.iter().map(|(_, _, e)| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["CreditIssued", "CreditDetailsChanged"]);
    let issued = &published[0].2["payload"]["details"];
    assert_eq!((&issued["appliedTo"], &issued["extensions"]), (&largest, &deep));
    assert!(published[1].2["payload"].to_string().len() > FREE_FORM_BYTES_MAX, "{}", published[1].2);
    let stored = store.load(site, credit).await.unwrap().unwrap();
    assert_eq!(stored.version, 2);
    assert_eq!(stored.details.extensions.map(Value::Object), Some(largest));
    assert_eq!(stored.details.applied_to.map(Value::Object), Some(deep));
    handle.shutdown().await.expect("graceful shutdown");
}
