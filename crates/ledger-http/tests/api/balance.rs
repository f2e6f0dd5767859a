//! The member balance read model through HTTP: what it sums, its filters and `asOf`, its
//! refusals, and that it agrees with the credits after random commands.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ledger_store::Backend;
use reqwest::Method;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

ledger_store::backend_tests!(
    balance_sums_a_members_spendable_credits,
    balance_refuses_what_it_cannot_answer,
    balance_agrees_with_the_credits_after_random_commands,
);

fn d(v: &Value) -> Decimal {
    v.to_string().parse().unwrap_or_else(|_| panic!("{v} is not a number"))
}

fn balance_url(app: &TestApp, query: &str) -> String {
    format!("{}/site/{}/ahds/v1/billing-credit-balance?{query}", app.base, app.site)
}

async fn balance(app: &TestApp, query: &str) -> Value {
    let response = app.request(Method::GET, &balance_url(app, query)).send().await.unwrap();
    assert_eq!(response.status(), 200, "{query}");
    response.json().await.unwrap()
}

fn member_credit(member: Uuid, total: u32, unit: &str) -> Value {
    let mut body = visits(total);
    body["wellnessPlanMembershipId"] = json!(member);
    if unit == "USD" {
        body["creditType"] = json!("monetary");
        body["currency"] = json!({ "code": "USD" });
    } else {
        body["measurementUnit"] = json!({ "code": unit });
    }
    body
}

async fn create(app: &TestApp, body: Value) -> String {
    app.create(body).await["billingCreditId"].as_str().unwrap().to_string()
}

async fn op(app: &TestApp, id: &str, operation: &str, body: Value) -> u16 {
    let url = format!("{}/{operation}", app.credit_url(id));
    app.request(Method::POST, &url).json(&body).send().await.unwrap().status().as_u16()
}

async fn balance_sums_a_members_spendable_credits(backend: Backend) {
    let app = TestApp::start(backend).await;
    let member = Uuid::new_v4();
    let open_ended = create(&app, member_credit(member, 5, "visit")).await;
    let ending_soon = Utc::now() + chrono::Duration::days(10);
    let mut soon = member_credit(member, 3, "visit");
    soon["endDate"] = json!(ending_soon.format("%Y-%m-%d").to_string());
    create(&app, soon).await;
    create(&app, member_credit(member, 100, "USD")).await;
    let mut inactive = member_credit(member, 2, "visit");
    inactive["isActive"] = json!(false);
    create(&app, inactive).await;
    let expired = create(&app, member_credit(member, 4, "visit")).await;
    assert_eq!(op(&app, &expired, "expire", json!({})).await, 200);
    let deleted = create(&app, member_credit(member, 1, "visit")).await;
    assert_eq!(app.request(Method::DELETE, &app.credit_url(&deleted)).send().await.unwrap().status(), 204);
    create(&app, member_credit(Uuid::new_v4(), 50, "visit")).await; // another member's
    let mut not_yet = member_credit(member, 7, "visit");
    not_yet["startDate"] = json!("2999-01-01");
    create(&app, not_yet).await;

    let deleted_later = create(&app, member_credit(member, 2, "visit")).await;

    tokio::time::sleep(Duration::from_millis(5)).await;
    let before_use = Utc::now();
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(op(&app, &open_ended, "use", json!({ "amount": 2, "reference": "visit-1" })).await, 200);
    assert_eq!(app.request(Method::DELETE, &app.credit_url(&deleted_later)).send().await.unwrap().status(), 204);

    let now = balance(&app, &format!("wellnessPlanMembershipId={member}")).await;
    assert_eq!(now["wellnessPlanMembershipId"], json!(member));
    assert_eq!(now["expiringWithinDays"], 30);
    let lines = now["data"].as_array().unwrap();
    assert_eq!(lines.len(), 2, "one line per type and unit: {now}");
    let (usd, visit) = (&lines[0], &lines[1]);
    assert_eq!(
        (&usd["creditType"], &usd["unit"], &usd["remainingAmount"]),
        (&json!("monetary"), &json!("USD"), &json!(100))
    );
    assert_eq!(visit["creditType"], "quantity");
    assert_eq!(visit["unit"], "visit");
    assert_eq!(visit["totalAmount"], 8, "inactive, expired, deleted, unstarted and others' credits do not count");
    assert_eq!(visit["usedAmount"], 2);
    assert_eq!(visit["wastedAmount"], 0);
    assert_eq!(visit["remainingAmount"], 6);
    assert_eq!(visit["creditCount"], 2);
    assert_eq!(visit["expiringAmount"], 3, "the credit ending in 10 days");
    assert_eq!(visit["nextExpiry"], format!("{}T00:00:00Z", ending_soon.format("%Y-%m-%d")));

    let week = balance(&app, &format!("wellnessPlanMembershipId={member}&expiringWithinDays=5")).await;
    assert_eq!(week["data"][1]["expiringAmount"], 0);
    let dollars = balance(&app, &format!("wellnessPlanMembershipId={member}&currency=USD")).await;
    assert_eq!(dollars["data"].as_array().unwrap().len(), 1);
    assert_eq!(dollars["data"][0]["unit"], "USD");
    let visits_only = balance(&app, &format!("wellnessPlanMembershipId={member}&creditType=quantity")).await;
    assert_eq!(visits_only["data"].as_array().unwrap().len(), 1);
    let other_plan =
        balance(&app, &format!("wellnessPlanMembershipId={member}&wellnessPlanId={}", Uuid::new_v4())).await;
    assert_eq!(other_plan["data"], json!([]));

    let as_of = before_use.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let then = balance(&app, &format!("wellnessPlanMembershipId={member}&asOf={as_of}")).await;
    assert_eq!(then["asOf"], as_of);
    assert_eq!(then["data"][1]["remainingAmount"], 10, "before the use and the later deletion: {then}");
    assert_eq!(then["data"][1]["usedAmount"], 0);
    assert_eq!(then["data"][1]["creditCount"], 3, "a credit deleted since still counts as of before");
}

async fn balance_refuses_what_it_cannot_answer(backend: Backend) {
    let app = TestApp::start(backend).await;
    let member = Uuid::new_v4();
    let refused = |query: String| {
        let app = &app;
        async move { app.request(Method::GET, &balance_url(app, &query)).send().await.unwrap() }
    };
    assert_problem(refused(String::new()).await, 400, "wellnessPlanMembershipId", "required").await;
    assert_problem(refused("wellnessPlanMembershipId=x".into()).await, 400, "wellnessPlanMembershipId", "invalid-uuid")
        .await;
    let twice = format!("wellnessPlanMembershipId={member}&wellnessPlanMembershipId={member}");
    assert_problem(refused(twice).await, 400, "wellnessPlanMembershipId", "repeated").await;
    let both = format!("wellnessPlanMembershipId={member}&currency=USD&measurementUnit=visit");
    assert_problem(refused(both).await, 400, "measurementUnit", "exclusive").await;
    let bad_instant = format!("wellnessPlanMembershipId={member}&asOf=%2B10000-01-01");
    assert_problem(refused(bad_instant).await, 400, "asOf", "invalid-instant").await;
    let window = format!("wellnessPlanMembershipId={member}&expiringWithinDays=99999");
    assert_problem(refused(window).await, 400, "expiringWithinDays", "range").await;
    assert_problem(
        refused(format!("wellnessPlanMembershipId={member}&colour=red")).await,
        400,
        "colour",
        "unknown-parameter",
    )
    .await;
    let other_site = format!(
        "{}/site/{}/ahds/v1/billing-credit-balance?wellnessPlanMembershipId={member}",
        app.base,
        Uuid::new_v4()
    );
    assert_eq!(app.request(Method::GET, &other_site).send().await.unwrap().status(), 403);
}

/// A small deterministic generator, so a failure names the seed that reproduces it.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// The balance lines as the test computes them from credits: unit → (total, used, wasted, count).
type Sums = BTreeMap<String, (Decimal, Decimal, Decimal, u32)>;

fn sums_of_credits(credits: &[Value], at: DateTime<Utc>) -> Sums {
    let mut sums = Sums::new();
    for c in credits {
        let ended = c["endDate"].as_str().is_some_and(|end| DateTime::parse_from_rfc3339(end).unwrap() <= at);
        if c["isActive"] != true || c["expired"] == true || ended {
            continue;
        }
        let unit = c["measurementUnit"]["code"].as_str().or(c["currency"]["code"].as_str()).unwrap().to_string();
        let line = sums.entry(unit).or_default();
        line.0 += d(&c["totalAmount"]);
        line.1 += d(&c["usedAmount"]);
        line.2 += d(&c["wastedAmount"]);
        line.3 += 1;
    }
    sums
}

fn sums_of_balance(balance: &Value) -> Sums {
    let mut sums = Sums::new();
    for line in balance["data"].as_array().unwrap() {
        assert_eq!(
            d(&line["remainingAmount"]),
            d(&line["totalAmount"]) - d(&line["usedAmount"]) - d(&line["wastedAmount"])
        );
        let count = line["creditCount"].as_u64().unwrap() as u32;
        let sums_line = (d(&line["totalAmount"]), d(&line["usedAmount"]), d(&line["wastedAmount"]), count);
        sums.insert(line["unit"].as_str().unwrap().to_string(), sums_line);
    }
    sums
}

async fn balance_agrees_with_the_credits_after_random_commands(backend: Backend) {
    const SEED: u64 = 0x5eed_ba1a;
    const MEMBERS: usize = 3;
    const COMMANDS: usize = 45;
    const CHECKPOINT_EVERY: usize = 15;
    let app = TestApp::start(backend).await;
    let mut rng = Lcg(SEED);
    let mut members = Vec::new();
    let mut credits: Vec<(usize, String)> = Vec::new();
    for m in 0..MEMBERS {
        let member = Uuid::new_v4();
        for (total, unit) in [(6, "visit"), (4, "visit"), (50, "USD"), (3, "exam")] {
            credits.push((m, create(&app, member_credit(member, total, unit)).await));
        }
        let mut ended = member_credit(member, 9, "visit");
        ended["endDate"] = json!("2025-06-01");
        credits.push((m, create(&app, ended).await));
        members.push(member);
    }

    let mut checkpoints = Vec::new();
    for i in 0..COMMANDS {
        let (_, id) = &credits[rng.below(credits.len() as u64) as usize];
        let amount = 1 + rng.below(2);
        let status = match rng.below(5) {
            0 | 1 => op(&app, id, "use", json!({ "amount": amount, "reference": format!("r{i}") })).await,
            2 => op(&app, id, "waste", json!({ "amount": amount, "reason": "missed" })).await,
            3 => {
                let active = rng.below(2) == 0;
                let url = app.credit_url(id);
                app.request(Method::PATCH, &url)
                    .json(&json!({ "isActive": active }))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }
            _ => op(&app, id, "expire", json!({})).await,
        };
        assert!([200, 409, 422].contains(&status), "seed {SEED:#x}, command {i}: {status}");
        if (i + 1) % CHECKPOINT_EVERY == 0 {
            tokio::time::sleep(Duration::from_millis(3)).await;
            checkpoints.push(Utc::now());
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    }

    for (m, member) in members.iter().enumerate() {
        let ids: Vec<&String> = credits.iter().filter(|(owner, _)| *owner == m).map(|(_, id)| id).collect();
        let mut now = Vec::new();
        for id in &ids {
            now.push(app.get(id).await.json::<Value>().await.unwrap());
        }
        let expected = sums_of_credits(&now, Utc::now());
        let got = sums_of_balance(&balance(&app, &format!("wellnessPlanMembershipId={member}")).await);
        assert_eq!(got, expected, "seed {SEED:#x}, member {m}, now");
        for at in &checkpoints {
            let at_text = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let mut then = Vec::new();
            for id in &ids {
                let url = format!("{}?asOf={at_text}", app.credit_url(id));
                then.push(app.request(Method::GET, &url).send().await.unwrap().json::<Value>().await.unwrap());
            }
            let expected = sums_of_credits(&then, *at);
            let got =
                sums_of_balance(&balance(&app, &format!("wellnessPlanMembershipId={member}&asOf={at_text}")).await);
            assert_eq!(got, expected, "seed {SEED:#x}, member {m}, asOf {at_text}");
        }
    }
}
