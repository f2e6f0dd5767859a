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

use proptest::prelude::*;

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

/// The balance lines as the test computes them from credits: unit → (total, used, wasted, count).
type Sums = BTreeMap<String, (Decimal, Decimal, Decimal, u32)>;

fn sums_of_credits(credits: &[Value], at: DateTime<Utc>) -> Sums {
    let mut sums = Sums::new();
    for c in credits {
        let instant = |field: &str| c[field].as_str().map(|t| DateTime::parse_from_rfc3339(t).unwrap());
        let ended = instant("endDate").is_some_and(|end| end <= at);
        let started = instant("startDate").is_some_and(|start| start <= at);
        if c["isActive"] != true || c["expired"] == true || ended || !started {
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

/// How a generated credit's window relates to the time of the test.
#[derive(Debug, Clone, Copy)]
enum Window {
    Open,
    /// Ended before the test ran.
    Ended,
    /// Ends this many days from now (inside or outside the default 30-day expiry window).
    EndsIn(i64),
    /// Starts after the test ran.
    NotStarted,
}

#[derive(Debug, Clone)]
struct CreditSpec {
    member: usize,
    total: u32,
    unit: &'static str,
    window: Window,
}

/// One generated step; credits are named by their index in the plan.
#[derive(Debug, Clone)]
enum Step {
    Use(usize, u32),
    Waste(usize, u32),
    Expire(usize),
    SetActive(usize, bool),
    /// PATCH totalAmount: a CreditTotalAdjusted (or a refusal below what is spent).
    SetTotal(usize, u32),
    Delete(usize),
    /// Remember this instant, to ask the balance `asOf` it.
    Checkpoint,
}

#[derive(Debug, Clone)]
struct Plan {
    members: usize,
    credits: Vec<CreditSpec>,
    steps: Vec<Step>,
}

const PLAN_MEMBERS_MAX: usize = 3;
const PLAN_CREDITS_MAX: usize = 8;
const PLAN_STEPS_MAX: usize = 30;

fn plan() -> impl Strategy<Value = Plan> {
    let window = prop_oneof![
        3 => Just(Window::Open),
        1 => Just(Window::Ended),
        2 => (1i64..60).prop_map(Window::EndsIn),
        1 => Just(Window::NotStarted),
    ];
    let credit = (0..PLAN_MEMBERS_MAX, 0u32..8, prop::sample::select(vec!["visit", "exam", "USD"]), window)
        .prop_map(|(member, total, unit, window)| CreditSpec { member, total, unit, window });
    proptest::collection::vec(credit, 1..=PLAN_CREDITS_MAX).prop_flat_map(|credits| {
        let n = credits.len();
        let step = prop_oneof![
            4 => (0..n, 1u32..4).prop_map(|(c, a)| Step::Use(c, a)),
            2 => (0..n, 1u32..3).prop_map(|(c, a)| Step::Waste(c, a)),
            1 => (0..n).prop_map(Step::Expire),
            2 => (0..n, any::<bool>()).prop_map(|(c, on)| Step::SetActive(c, on)),
            2 => (0..n, 0u32..10).prop_map(|(c, t)| Step::SetTotal(c, t)),
            1 => (0..n).prop_map(Step::Delete),
            2 => Just(Step::Checkpoint),
        ];
        let members = credits.iter().map(|c| c.member + 1).max().unwrap_or(1);
        proptest::collection::vec(step, 0..=PLAN_STEPS_MAX).prop_map(move |steps| Plan {
            members,
            credits: credits.clone(),
            steps,
        })
    })
}

fn spec_body(member: Uuid, spec: &CreditSpec) -> Value {
    let mut body = member_credit(member, spec.total, spec.unit);
    let day = |days: i64| (Utc::now() + chrono::Duration::days(days)).format("%Y-%m-%d").to_string();
    match spec.window {
        Window::Open => {}
        Window::Ended => body["endDate"] = json!("2025-06-01"),
        Window::EndsIn(days) => body["endDate"] = json!(day(days)),
        Window::NotStarted => body["startDate"] = json!("2999-01-01"),
    }
    body
}

/// Applies a plan through the API to fresh members, then checks each member's balance
/// against the sum over their credits, now and at every checkpoint.
async fn check_plan(app: &TestApp, plan: &Plan) -> Result<(), TestCaseError> {
    let members: Vec<Uuid> = (0..plan.members).map(|_| Uuid::new_v4()).collect();
    let mut ids = Vec::new();
    for spec in &plan.credits {
        ids.push(create(app, spec_body(members[spec.member], spec)).await);
    }
    let mut checkpoints = Vec::new();
    for (i, step) in plan.steps.iter().enumerate() {
        let status = match step {
            Step::Use(c, amount) => {
                op(app, &ids[*c], "use", json!({ "amount": amount, "reference": format!("r{i}") })).await
            }
            Step::Waste(c, amount) => op(app, &ids[*c], "waste", json!({ "amount": amount, "reason": "missed" })).await,
            Step::Expire(c) => op(app, &ids[*c], "expire", json!({})).await,
            Step::SetActive(c, on) => patch(app, &ids[*c], json!({ "isActive": on })).await,
            Step::SetTotal(c, total) => patch(app, &ids[*c], json!({ "totalAmount": total })).await,
            Step::Delete(c) => {
                app.request(Method::DELETE, &app.credit_url(&ids[*c])).send().await.unwrap().status().as_u16()
            }
            Step::Checkpoint => {
                // Instants strictly between two commits, on both sides of the clock's grain.
                tokio::time::sleep(Duration::from_millis(2)).await;
                checkpoints.push(Utc::now());
                tokio::time::sleep(Duration::from_millis(2)).await;
                continue;
            }
        };
        // A deleted credit answers 404; a command the credit's state refuses, 409 or 422.
        prop_assert!([200, 204, 404, 409, 422].contains(&status), "step {i} {step:?}: {status}");
    }

    for (m, member) in members.iter().enumerate() {
        let owned: Vec<&String> =
            plan.credits.iter().zip(&ids).filter(|(s, _)| s.member == m).map(|(_, id)| id).collect();
        let now = credits_as_of(app, &owned, None).await;
        let expected = sums_of_credits(&now, Utc::now());
        let got = sums_of_balance(&balance(app, &format!("wellnessPlanMembershipId={member}")).await);
        prop_assert_eq!(got, expected, "member {}, now", m);
        for at in &checkpoints {
            let at_text = at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            let then = credits_as_of(app, &owned, Some(&at_text)).await;
            let expected = sums_of_credits(&then, *at);
            let got =
                sums_of_balance(&balance(app, &format!("wellnessPlanMembershipId={member}&asOf={at_text}")).await);
            prop_assert_eq!(got, expected, "member {}, asOf {}", m, at_text);
        }
    }
    Ok(())
}

async fn patch(app: &TestApp, id: &str, body: Value) -> u16 {
    app.request(Method::PATCH, &app.credit_url(id)).json(&body).send().await.unwrap().status().as_u16()
}

/// The credits as the API shows them one by one, now or `asOf`; a credit that did not
/// exist then (or is deleted now) is left out.
async fn credits_as_of(app: &TestApp, ids: &[&String], as_of: Option<&str>) -> Vec<Value> {
    let mut credits = Vec::new();
    for id in ids {
        let url = match as_of {
            Some(at) => format!("{}?asOf={at}", app.credit_url(id)),
            None => app.credit_url(id),
        };
        let response = app.request(Method::GET, &url).send().await.unwrap();
        match response.status().as_u16() {
            200 => credits.push(response.json::<Value>().await.unwrap()),
            404 => {}
            other => panic!("GET {url}: {other}"),
        }
    }
    credits
}

/// Property (issue 14): whatever commands a member's credits receive, their balance equals
/// the sum over the credits, now and at any earlier instant. Each case runs on fresh
/// members of one app; proptest shrinks a failing plan to a small one.
async fn balance_agrees_with_the_credits_after_random_commands(backend: Backend) {
    const CASES: u32 = 24;
    let app = TestApp::start(backend).await;
    let config = ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let handle = tokio::runtime::Handle::current();
    let result = tokio::task::block_in_place(|| runner.run(&plan(), |plan| handle.block_on(check_plan(&app, &plan))));
    if let Err(failure) = result {
        panic!("{failure}");
    }
}
