//! The ledger operations through HTTP: use, waste, expire, reverse, consume,
//! Idempotency-Key, history and asOf.

use std::collections::HashMap;

use ledger_store::Backend;
use reqwest::{Method, Response};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

ledger_store::backend_tests!(
    use_waste_expire_reverse_and_their_refusals,
    fifty_concurrent_consumes_never_overspend,
    consume_pays_soonest_ending_first_and_refuses_whole,
    idempotency_key_replays_the_first_response,
    a_retry_while_the_first_attempt_runs_waits_for_it,
    history_pages_and_as_of_rebuilds_the_past,
    site_feed_pages_through_every_event,
);

fn d(v: &Value) -> Decimal {
    v.to_string().parse().unwrap()
}

async fn op(app: &TestApp, id: &str, operation: &str, body: Value) -> Response {
    app.request(Method::POST, &format!("{}/{operation}", app.credit_url(id))).json(&body).send().await.unwrap()
}

async fn credit_id(app: &TestApp, body: Value) -> String {
    app.create(body).await["billingCreditId"].as_str().unwrap().to_string()
}

async fn use_waste_expire_reverse_and_their_refusals(backend: Backend) {
    let app = TestApp::start(backend).await;
    let id = credit_id(&app, visits(5)).await;

    let used = op(&app, &id, "use", json!({ "amount": 2, "reference": "visit-1", "note": "cleaning" })).await;
    assert_eq!(used.status(), 200);
    assert_eq!(used.headers()["etag"], "\"2\"");
    let used: Value = used.json().await.unwrap();
    assert_eq!(used["billingCredit"]["usedAmount"], 2);
    assert_eq!(used["billingCredit"]["expired"], false, "a live credit says so");
    assert_eq!(used["events"][0]["type"], "CreditUsed");
    assert_eq!(used["events"][0]["reference"], "visit-1");
    assert_eq!(used["events"][0]["actor"], "tester");
    let use_event = used["events"][0]["eventId"].as_str().unwrap().to_string();

    assert_problem(
        op(&app, &id, "use", json!({ "amount": 4, "reference": "v" })).await,
        422,
        "amount",
        "insufficient-balance",
    )
    .await;
    assert_problem(
        op(&app, &id, "use", json!({ "amount": 0, "reference": "v" })).await,
        422,
        "amount",
        "amount-not-positive",
    )
    .await;
    assert_problem(op(&app, &id, "use", json!({ "amount": 1 })).await, 400, "reference", "required").await;
    assert_problem(
        op(&app, &id, "use", json!({ "amount": 1, "reference": "v", "occurredAt": "2099-01-01" })).await,
        400,
        "occurredAt",
        "occurred-at-in-future",
    )
    .await;
    assert_problem(
        op(&app, &id, "use", json!({ "amount": 1, "reference": "v", "occurredAt": "2024-12-31" })).await,
        422,
        "",
        "credit-not-started",
    )
    .await;
    assert_problem(
        op(&app, &Uuid::new_v4().to_string(), "use", json!({ "amount": 1, "reference": "v" })).await,
        404,
        "",
        "",
    )
    .await;

    let wasted: Value = op(&app, &id, "waste", json!({ "amount": 1, "reason": "no-show" })).await.json().await.unwrap();
    assert_eq!(wasted["billingCredit"]["wastedAmount"], 1);
    assert_problem(op(&app, &id, "waste", json!({ "amount": 1 })).await, 400, "reason", "required").await;

    let partial = op(&app, &id, "reverse", json!({ "eventId": use_event, "amount": 1 })).await;
    let partial: Value = partial.json().await.unwrap();
    assert_eq!(partial["billingCredit"]["usedAmount"], 1);
    assert_eq!(partial["events"][0]["type"], "CreditUseReversed");
    assert_eq!(partial["events"][0]["reverses"], json!(use_event));
    assert_problem(
        op(&app, &id, "reverse", json!({ "eventId": use_event, "amount": 2 })).await,
        422,
        "amount",
        "reversal-exceeds-movement",
    )
    .await;
    assert_problem(
        op(&app, &id, "reverse", json!({ "eventId": Uuid::new_v4() })).await,
        422,
        "eventId",
        "event-not-reversible",
    )
    .await;
    // What is left of the use is restored from its events (the stored credit does not
    // carry it): the rest of it can be reversed once, and then nothing more.
    let rest: Value = op(&app, &id, "reverse", json!({ "eventId": use_event })).await.json().await.unwrap();
    assert_eq!(rest["events"][0]["amount"], 1, "{rest}");
    assert_eq!(rest["billingCredit"]["usedAmount"], 0);
    assert_problem(
        op(&app, &id, "reverse", json!({ "eventId": use_event })).await,
        422,
        "eventId",
        "event-not-reversible",
    )
    .await;
    let again: Value = op(&app, &id, "use", json!({ "amount": 1, "reference": "visit-2" })).await.json().await.unwrap();
    assert_eq!(again["billingCredit"]["usedAmount"], 1, "as before the full reversal: {again}");

    let stale = app
        .request(Method::POST, &format!("{}/use", app.credit_url(&id)))
        .header("If-Match", "\"2\"")
        .json(&json!({ "amount": 1, "reference": "v" }))
        .send()
        .await
        .unwrap();
    assert_problem(stale, 412, "If-Match", "version-mismatch").await;

    let expired: Value = op(&app, &id, "expire", json!({ "reason": "cycle ended" })).await.json().await.unwrap();
    assert_eq!(expired["billingCredit"]["remainingAmount"], 0);
    assert_eq!(expired["billingCredit"]["wastedAmount"], 4);
    assert_eq!(expired["billingCredit"]["expired"], true);
    let read: Value = app.get(&id).await.json().await.unwrap();
    assert_eq!(read["expired"], true, "an expired credit is told from a live one by its body: {read}");
    assert_eq!(read["isActive"], true, "expiry is not deactivation");
    assert_eq!(expired["events"][0]["amount"], 3);
    assert_problem(op(&app, &id, "expire", json!({})).await, 409, "", "").await;
    assert_problem(op(&app, &id, "use", json!({ "amount": 1, "reference": "v" })).await, 422, "", "credit-expired")
        .await;

    let mut inactive = visits(2);
    inactive["isActive"] = json!(false);
    let sleeping = credit_id(&app, inactive).await;
    assert_problem(
        op(&app, &sleeping, "use", json!({ "amount": 1, "reference": "v" })).await,
        422,
        "",
        "credit-inactive",
    )
    .await;
    let mut ended = visits(2);
    ended["endDate"] = json!("2025-02-01");
    let over = credit_id(&app, ended).await;
    assert_problem(op(&app, &over, "use", json!({ "amount": 1, "reference": "v" })).await, 422, "", "credit-ended")
        .await;
}

/// Three credits of one member: 4 visits ending soon, 3 ending later, 5 with no end.
async fn member_with_three_credits(app: &TestApp) -> (Uuid, [String; 3]) {
    let member = Uuid::new_v4();
    let make = |total: u32, end: Option<&str>| {
        let mut body = visits(total);
        body["wellnessPlanMembershipId"] = json!(member);
        body["measurementUnit"] = json!({ "code": "visit" });
        if let Some(end) = end {
            body["endDate"] = json!(end);
        }
        body
    };
    let no_end = credit_id(app, make(5, None)).await;
    let later = credit_id(app, make(3, Some("2031-01-01"))).await;
    let soon = credit_id(app, make(4, Some("2030-01-01"))).await;
    (member, [soon, later, no_end])
}

fn consume_body(member: Uuid, amount: u32) -> Value {
    json!({ "wellnessPlanMembershipId": member, "amount": amount, "creditType": "quantity",
            "measurementUnit": "visit", "reference": "invoice-1" })
}

async fn consume(app: &TestApp, body: &Value, key: Option<&str>) -> Response {
    let mut request = app.request(Method::POST, &format!("{}/consume", app.credits_url())).json(body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    request.send().await.unwrap()
}

async fn consume_pays_soonest_ending_first_and_refuses_whole(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (member, [soon, later, no_end]) = member_with_three_credits(&app).await;
    let result: Value = consume(&app, &consume_body(member, 6), None).await.json().await.unwrap();
    assert_eq!(result["allocatedAmount"], 6);
    let paid: Vec<(String, Value)> = result["allocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["billingCreditId"].as_str().unwrap().to_string(), a["amount"].clone()))
        .collect();
    assert_eq!(paid, vec![(soon.clone(), json!(4)), (later.clone(), json!(2))]);

    let too_much = consume(&app, &consume_body(member, 7), None).await;
    assert_problem(too_much, 422, "amount", "insufficient-balance").await;
    // The unit as the credit writes it (a coding) is the same as its bare code.
    let mut partial = consume_body(member, 7);
    partial["allowPartial"] = json!(true);
    partial["measurementUnit"] = json!({ "code": "visit" });
    let mut no_code = partial.clone();
    no_code["measurementUnit"] = json!({ "display": "Visit" });
    assert_problem(consume(&app, &no_code, None).await, 400, "measurementUnit.code", "required").await;
    let partial: Value = consume(&app, &partial, None).await.json().await.unwrap();
    assert_eq!(partial["allocatedAmount"], 6);
    for id in [&soon, &later, &no_end] {
        let credit: Value = app.get(id).await.json().await.unwrap();
        assert_eq!(credit["remainingAmount"], 0, "{id}");
    }
    let mut money = consume_body(member, 1);
    money["creditType"] = json!("monetary");
    assert_problem(consume(&app, &money, None).await, 400, "currency", "required").await;
    money["measurementUnit"] = Value::Null;
    money["currency"] = json!({ "code": "USD", "display": "US dollar" });
    assert_problem(consume(&app, &money, None).await, 422, "amount", "insufficient-balance").await;
}

async fn fifty_concurrent_consumes_never_overspend(backend: Backend) {
    let app = std::sync::Arc::new(TestApp::start(backend).await);
    let (member, ids) = member_with_three_credits(&app).await;
    let available = 12;
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                let amount = 1 + (i % 2);
                let response = consume(&app, &consume_body(member, amount), None).await;
                (amount, response.status().as_u16(), response.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut spent = Decimal::ZERO;
    for task in tasks {
        let (amount, status, body) = task.await.unwrap();
        match status {
            200 => {
                assert_eq!(d(&body["allocatedAmount"]), Decimal::from(amount), "accepted means fully allocated");
                spent += d(&body["allocatedAmount"]);
            }
            422 => assert_eq!(body["errors"][0]["rule"], "insufficient-balance"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(spent <= Decimal::from(available));
    let mut used = Decimal::ZERO;
    for id in &ids {
        let credit: Value = app.get(id).await.json().await.unwrap();
        used += d(&credit["usedAmount"]);
    }
    assert_eq!(used, spent, "the projection holds exactly what was accepted; refusals wrote nothing");
    let store = app.db.store().await;
    let mut used_events = Decimal::ZERO;
    for id in &ids {
        for e in store.read_stream(app.site, id.parse().unwrap(), 0, 1000).await.unwrap() {
            if let ledger_domain::Event::CreditUsed(u) = e.event {
                used_events += u.amount;
            }
        }
    }
    assert_eq!(used_events, spent, "and so do the events");
}

async fn idempotency_key_replays_the_first_response(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (member, ids) = member_with_three_credits(&app).await;
    let body = consume_body(member, 5);
    let first = consume(&app, &body, Some("consume-1")).await;
    assert_eq!(first.status(), 200);
    assert!(!first.headers().contains_key("idempotent-replayed"), "a first answer is not a replay");
    let first: Value = first.json().await.unwrap();
    let again = consume(&app, &body, Some("consume-1")).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first, "same status and body");
    let other_body = consume_body(member, 1);
    assert_problem(consume(&app, &other_body, Some("consume-1")).await, 409, "", "").await;

    let store = app.db.store().await;
    let mut events = 0;
    for id in &ids {
        events += store.read_stream(app.site, id.parse().unwrap(), 0, 100).await.unwrap().len();
    }
    assert_eq!(events, 3 + 2, "three issues and one consume over two credits, once");

    // A refusal is kept too: the retry answers 422 even though the balance allows it by then.
    let credit = credit_id(&app, visits(1)).await;
    let refused = app
        .request(Method::POST, &format!("{}/use", app.credit_url(&credit)))
        .header("Idempotency-Key", "use-2")
        .json(&json!({ "amount": 2, "reference": "v" }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);
    let patch =
        app.request(Method::PATCH, &app.credit_url(&credit)).json(&json!({ "totalAmount": 5 })).send().await.unwrap();
    assert_eq!(patch.status(), 200);
    let retried = app
        .request(Method::POST, &format!("{}/use", app.credit_url(&credit)))
        .header("Idempotency-Key", "use-2")
        .json(&json!({ "amount": 2, "reference": "v" }))
        .send()
        .await
        .unwrap();
    assert_eq!(retried.status(), 422);
    assert_eq!(retried.headers()["content-type"], "application/problem+json");
    assert_eq!(retried.headers()["idempotent-replayed"], "true", "a kept refusal says so too");

    // Keys are per site: the same key on another site is another request.
    let other_site = Uuid::new_v4();
    let token = token_for(&[&other_site.to_string()], ALL_SCOPES, 3600);
    let url = format!("{}/site/{other_site}/ahds/v1/billing-credit", app.base);
    let there = app
        .client
        .post(&url)
        .bearer_auth(&token)
        .header("Idempotency-Key", "consume-1")
        .json(&visits(1))
        .send()
        .await
        .unwrap();
    assert_eq!(there.status(), 201);
}

async fn a_retry_while_the_first_attempt_runs_waits_for_it(backend: Backend) {
    let app = std::sync::Arc::new(TestApp::start(backend).await);
    let (member, _) = member_with_three_credits(&app).await;
    let body = consume_body(member, 3);
    let attempts: Vec<_> = (0..8)
        .map(|_| {
            let (app, body) = (app.clone(), body.clone());
            tokio::spawn(async move {
                let response = consume(&app, &body, Some("in-flight")).await;
                (response.status().as_u16(), response.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut bodies = Vec::new();
    for a in attempts {
        let (status, body) = a.await.unwrap();
        assert_eq!(status, 200, "{body}");
        bodies.push(body);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "every attempt got the first response");
    let list: Value = app.list(&format!("wellnessPlanMembershipId={member}")).await.json().await.unwrap();
    let used: Decimal = list["data"].as_array().unwrap().iter().map(|c| d(&c["usedAmount"])).sum();
    assert_eq!(used, Decimal::from(3), "applied once");
}

async fn history_pages_and_as_of_rebuilds_the_past(backend: Backend) {
    let app = TestApp::start(backend).await;
    let id = credit_id(&app, visits(10)).await;
    let mut snapshots: Vec<(String, Value)> = Vec::new();
    let snapshot = |credit: Value| (credit["updatedAt"].as_str().unwrap().to_string(), credit);
    snapshots.push(snapshot(app.get(&id).await.json().await.unwrap()));
    for (operation, body) in [
        ("use", json!({ "amount": 3, "reference": "v1" })),
        ("waste", json!({ "amount": 1, "reason": "no-show" })),
        ("use", json!({ "amount": 2, "reference": "v2" })),
    ] {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let result: Value = op(&app, &id, operation, body).await.json().await.unwrap();
        snapshots.push(snapshot(result["billingCredit"].clone()));
    }
    for (at, expected) in &snapshots {
        let then: Value = app
            .request(Method::GET, &format!("{}?asOf={at}", app.credit_url(&id)))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(&then, expected, "as of {at}");
    }
    let before =
        app.request(Method::GET, &format!("{}?asOf=2020-01-01T00:00:00Z", app.credit_url(&id))).send().await.unwrap();
    assert_problem(before, 404, "", "").await;
    let bad = app.request(Method::GET, &format!("{}?asOf=yesterday", app.credit_url(&id))).send().await.unwrap();
    assert_problem(bad, 400, "asOf", "invalid-instant").await;

    let events_url = format!("{}/events", app.credit_url(&id));
    let page: Value = app
        .request(Method::GET, &format!("{events_url}?page=1&pageSize=3"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["meta"]["total"], 4);
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    assert_eq!(page["data"][0]["type"], "CreditUsed");
    assert_eq!(page["data"][0]["version"], 4);
    assert_eq!(page["data"][0]["amount"], 2);
    let read_only = token_for(&[&app.site.to_string()], "billing-credit:read", 3600);
    let denied = app.client.get(&events_url).bearer_auth(read_only).send().await.unwrap();
    assert_problem(denied, 403, "", "").await;
}

async fn site_feed_pages_through_every_event(backend: Backend) {
    let app = TestApp::start(backend).await;
    let a = credit_id(&app, visits(3)).await;
    let b = credit_id(&app, visits(3)).await;
    op(&app, &a, "use", json!({ "amount": 1, "reference": "v" })).await;
    op(&app, &b, "use", json!({ "amount": 1, "reference": "v" })).await;
    let mut seen: HashMap<String, u32> = HashMap::new();
    let mut after = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while seen.len() < 4 {
        assert!(std::time::Instant::now() < deadline, "feed stalled at {}", seen.len());
        let query = if after.is_empty() { "limit=1".to_string() } else { format!("limit=1&after={after}") };
        let url = format!("{}/site/{}/ahds/v1/billing-credit-events?{query}", app.base, app.site);
        let slice: Value = app.request(Method::GET, &url).send().await.unwrap().json().await.unwrap();
        for e in slice["data"].as_array().unwrap() {
            *seen.entry(e["eventId"].as_str().unwrap().to_string()).or_default() += 1;
        }
        after = slice["next"].as_str().unwrap().to_string();
    }
    assert!(seen.values().all(|n| *n == 1));
    let bad = app
        .request(Method::GET, &format!("{}/site/{}/ahds/v1/billing-credit-events?after=zzz", app.base, app.site))
        .send()
        .await
        .unwrap();
    assert_problem(bad, 400, "after", "invalid-cursor").await;
}
