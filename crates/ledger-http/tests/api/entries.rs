//! The member statement through HTTP: its entries and their signs, filters, cursor pages
//! that neither repeat nor skip while new events arrive, and its refusals.

use ledger_store::Backend;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

ledger_store::backend_tests!(
    statement_lists_every_movement_newest_first,
    statement_pages_are_stable_and_refusals_named,
);

fn entries_url(app: &TestApp, query: &str) -> String {
    format!("{}/site/{}/ahds/v1/billing-credit-entries?{query}", app.base, app.site)
}

async fn entries(app: &TestApp, query: &str) -> Value {
    let response = app.request(Method::GET, &entries_url(app, query)).send().await.unwrap();
    assert_eq!(response.status(), 200, "{query}");
    response.json().await.unwrap()
}

async fn credit_of(app: &TestApp, member: Uuid, total: u32) -> String {
    let mut body = visits(total);
    body["wellnessPlanMembershipId"] = json!(member);
    app.create(body).await["billingCreditId"].as_str().unwrap().to_string()
}

async fn op(app: &TestApp, id: &str, operation: &str, body: Value) -> Value {
    let url = format!("{}/{operation}", app.credit_url(id));
    let response = app.request(Method::POST, &url).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200, "{operation}");
    response.json().await.unwrap()
}

/// (type, credit, amount, remainingAfter) of each entry of a page.
fn lines(page: &Value) -> Vec<(String, String, Value, Value)> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let text = |k: &str| e[k].as_str().unwrap().to_string();
            (text("type"), text("billingCreditId"), e["amount"].clone(), e["remainingAfter"].clone())
        })
        .collect()
}

async fn statement_lists_every_movement_newest_first(backend: Backend) {
    let app = TestApp::start(backend).await;
    let member = Uuid::new_v4();
    let a = credit_of(&app, member, 5).await;
    let b = credit_of(&app, member, 3).await;
    let used = op(&app, &a, "use", json!({ "amount": 2, "reference": "visit-1", "note": "cleaning" })).await;
    let use_event = used["events"][0]["eventId"].as_str().unwrap().to_string();
    op(&app, &b, "waste", json!({ "amount": 1, "reason": "missed" })).await;
    op(&app, &a, "reverse", json!({ "eventId": use_event, "amount": 1, "reason": "cancelled" })).await;
    let status = app.request(Method::PATCH, &app.credit_url(&a)).json(&json!({ "isActive": false })).send().await;
    assert_eq!(status.unwrap().status(), 200, "a status change moves no amount: no entry");
    op(&app, &b, "expire", json!({})).await;
    let other = credit_of(&app, Uuid::new_v4(), 9).await;
    op(&app, &other, "use", json!({ "amount": 1, "reference": "visit-1" })).await;

    let all = entries(&app, &format!("wellnessPlanMembershipId={member}")).await;
    let s = |v: &str| v.to_string();
    assert_eq!(
        lines(&all),
        vec![
            (s("expired"), b.clone(), json!(-2), json!(0)),
            (s("reversed"), a.clone(), json!(1), json!(4)),
            (s("wasted"), b.clone(), json!(-1), json!(2)),
            (s("used"), a.clone(), json!(-2), json!(3)),
            (s("issued"), b.clone(), json!(3), json!(3)),
            (s("issued"), a.clone(), json!(5), json!(5)),
        ],
        "{all}"
    );
    assert_eq!(all["meta"], json!({ "nextCursor": null, "hasMore": false }));
    let use_entry = &all["data"][3];
    assert_eq!(use_entry["eventId"], json!(use_event));
    assert_eq!((&use_entry["reference"], &use_entry["note"]), (&json!("visit-1"), &json!("cleaning")));
    assert_eq!(use_entry["actor"], "tester");
    assert!(use_entry["recordedAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(all["data"][1]["reason"], "cancelled");

    let spent = entries(&app, &format!("wellnessPlanMembershipId={member}&type=used&type=wasted")).await;
    assert_eq!(lines(&spent).iter().map(|l| l.0.as_str()).collect::<Vec<_>>(), ["wasted", "used"]);
    let of_a = entries(&app, &format!("wellnessPlanMembershipId={member}&billingCreditId={a}")).await;
    assert_eq!(of_a["data"].as_array().unwrap().len(), 3);
    let by_reference = entries(&app, &format!("wellnessPlanMembershipId={member}&reference=visit-1")).await;
    assert_eq!(by_reference["data"].as_array().unwrap().len(), 1, "only this member's use: {by_reference}");
    let later = entries(&app, &format!("wellnessPlanMembershipId={member}&recordedFrom=2999-01-01")).await;
    assert_eq!(later["data"], json!([]));
}

async fn statement_pages_are_stable_and_refusals_named(backend: Backend) {
    let app = TestApp::start(backend).await;
    let member = Uuid::new_v4();
    let a = credit_of(&app, member, 9).await;
    for i in 0..5 {
        op(&app, &a, "use", json!({ "amount": 1, "reference": format!("visit-{i}") })).await;
    }
    let everything = lines(&entries(&app, &format!("wellnessPlanMembershipId={member}")).await);
    assert_eq!(everything.len(), 6);

    let mut paged = Vec::new();
    let mut query = format!("wellnessPlanMembershipId={member}&limit=2");
    loop {
        let page = entries(&app, &query).await;
        paged.extend(lines(&page));
        // A new movement arrives between pages: it belongs before the first page, not in these.
        op(&app, &a, "use", json!({ "amount": 1, "reference": "while-paging" })).await;
        match page["meta"]["nextCursor"].as_str() {
            Some(cursor) => {
                assert_eq!(page["meta"]["hasMore"], true);
                query = format!("wellnessPlanMembershipId={member}&limit=2&cursor={cursor}");
            }
            None => break,
        }
    }
    assert_eq!(paged, everything, "pages neither repeat nor skip an entry");

    let refused = |query: String| {
        let app = &app;
        async move { app.request(Method::GET, &entries_url(app, &query)).send().await.unwrap() }
    };
    assert_problem(refused(String::new()).await, 400, "wellnessPlanMembershipId", "required").await;
    let m = format!("wellnessPlanMembershipId={member}");
    assert_problem(refused(format!("{m}&{m}")).await, 400, "wellnessPlanMembershipId", "repeated").await;
    assert_problem(refused(format!("{m}&type=deleted")).await, 400, "type", "one-of").await;
    assert_problem(refused(format!("{m}&cursor=x")).await, 400, "cursor", "invalid-cursor").await;
    assert_problem(refused(format!("{m}&limit=0")).await, 400, "limit", "range").await;
    assert_problem(refused(format!("{m}&limit=101")).await, 400, "limit", "range").await;
    assert_problem(refused(format!("{m}&recordedTo=%2B10000-01-01")).await, 400, "recordedTo", "invalid-instant").await;
    let other_site = format!("{}/site/{}/ahds/v1/billing-credit-entries?{m}", app.base, Uuid::new_v4());
    assert_eq!(app.request(Method::GET, &other_site).send().await.unwrap().status(), 403);
}
