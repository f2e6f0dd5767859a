//! Strict input (issue 13): whatever a caller sends, the ledger either stores it so it
//! reads back unchanged everywhere, or refuses it with a 400 naming the field and the
//! rule, and changes nothing.

use std::time::{Duration, Instant};

use ledger_store::Backend;
use ledger_wire::limits::{FREE_FORM_BYTES_MAX, FREE_FORM_DEPTH_MAX, TEXT_CHARS_MAX};
use reqwest::{Method, Response};
use serde_json::{json, Value};

use crate::helpers::*;

ledger_store::backend_tests!(
    free_form_objects_past_their_bounds_are_refused,
    the_largest_and_deepest_free_form_objects_read_back_everywhere,
    dates_need_a_four_digit_year_and_no_leap_second,
    control_characters_and_overlong_text_are_refused,
    amounts_that_cannot_be_held_exactly_are_refused_in_any_notation,
    patch_cannot_null_a_field_every_credit_has,
    repeated_query_parameters_are_refused_everywhere,
    idempotent_retries_match_on_the_canonical_body,
);

pub const FREE_FORM: [&str; 4] = ["appliedTo", "availableTo", "expiry", "extensions"];

/// `{"n":{"n":…{}}}`, `levels` deep.
pub fn nested(levels: usize) -> Value {
    (1..levels).fold(json!({}), |inner, _| json!({ "n": inner }))
}

/// An object `levels` deep and exactly `bytes` long as compact JSON, with prose, a
/// non-ASCII text and numbers whose text must survive.
pub fn free_form(levels: usize, bytes: usize) -> Value {
    let mut object = nested(levels);
    object["number"] = serde_json::from_str("12345678901234567890.1230").unwrap();
    object["list"] = json!([1, "two", null, true, { "three": [] }]);
    let prefix = "é ✓\tline\nbreak ";
    object["pad"] = json!(prefix);
    let size = serde_json::to_string(&object).unwrap().len();
    object["pad"] = json!(format!("{prefix}{}", "x".repeat(bytes - size)));
    assert_eq!(serde_json::to_string(&object).unwrap().len(), bytes);
    object
}

async fn send_raw(app: &TestApp, method: Method, url: &str, body: &str) -> Response {
    app.request(method, url).header("content-type", "application/json").body(body.to_string()).send().await.unwrap()
}

async fn get_url(app: &TestApp, url: &str) -> Response {
    app.request(Method::GET, url).send().await.unwrap()
}

async fn operation(app: &TestApp, id: &str, name: &str, body: &Value) -> Response {
    app.request(Method::POST, &format!("{}/{name}", app.credit_url(id))).json(body).send().await.unwrap()
}

fn with(mut body: Value, field: &str, value: Value) -> Value {
    body[field] = value;
    body
}

/// Checks the credit is still at `version`, as `expected`.
async fn unchanged(app: &TestApp, id: &str, version: u64, expected: &Value) {
    let response = app.get(id).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], format!("\"{version}\""));
    assert_eq!(&response.json::<Value>().await.unwrap(), expected, "nothing changed");
}

async fn free_form_objects_past_their_bounds_are_refused(backend: Backend) {
    let app = TestApp::start(backend).await;
    let credit = app.create(visits(5)).await;
    let id = credit["billingCreditId"].as_str().unwrap().to_string();
    // Deep enough for the stored event to have been unreadable (serde_json stops at 128).
    let far_too_deep = nested(200);
    let cases = [
        (nested(FREE_FORM_DEPTH_MAX + 1), "too-deep", FREE_FORM_DEPTH_MAX.to_string()),
        (far_too_deep, "too-deep", FREE_FORM_DEPTH_MAX.to_string()),
        (free_form(1, FREE_FORM_BYTES_MAX + 1), "too-large", FREE_FORM_BYTES_MAX.to_string()),
    ];
    for field in FREE_FORM {
        for (value, rule, limit) in &cases {
            let create = app.post(&with(visits(5), field, value.clone())).await;
            let problem = assert_problem(create, 400, field, rule).await;
            assert!(problem["detail"].as_str().unwrap().contains(limit.as_str()), "{problem}");
            let put = app.request(Method::PUT, &app.credit_url(&id)).json(&with(visits(5), field, value.clone()));
            assert_problem(put.send().await.unwrap(), 400, field, rule).await;
            let patch = app.request(Method::PATCH, &app.credit_url(&id)).json(&json!({ field: value }));
            assert_problem(patch.send().await.unwrap(), 400, field, rule).await;
        }
        // Postgres cannot store a NUL; no control character but layout is kept.
        let nul_in_key = json!({ "ok": 1, "a\u{0}": 1 });
        let problem = assert_problem(
            app.post(&with(visits(5), field, nul_in_key)).await,
            400,
            &format!("{field}.a\\u{{0}}"),
            "control-character",
        )
        .await;
        assert!(problem["detail"].as_str().unwrap().contains("U+0000"), "{problem}");
        let nul_in_text = json!({ "a": { "b": ["fine", "not\u{0}fine"] } });
        let patch = app.request(Method::PATCH, &app.credit_url(&id)).json(&json!({ field: nul_in_text }));
        assert_problem(patch.send().await.unwrap(), 400, &format!("{field}.a.b[1]"), "control-character").await;
        let escape = json!({ "x": "\u{1b}[31m" });
        let put = app.request(Method::PUT, &app.credit_url(&id)).json(&with(visits(5), field, escape));
        assert_problem(put.send().await.unwrap(), 400, &format!("{field}.x"), "control-character").await;
    }
    unchanged(&app, &id, 1, &credit).await;
    let list: Value = app.list("").await.json().await.unwrap();
    assert_eq!(list["meta"]["total"], 1, "nothing was created");
}

/// The feed's events of `id`, read until `n` of them are there (on Postgres the feed
/// waits for transactions of parallel tests to end).
async fn feed_events_of(app: &TestApp, id: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let url = format!("{}/site/{}/ahds/v1/billing-credit-events?limit=1000", app.base, app.site);
        let response = get_url(app, &url).await;
        assert_eq!(response.status(), 200);
        let slice: Value = response.json().await.unwrap();
        let events: Vec<Value> =
            slice["data"].as_array().unwrap().iter().filter(|e| e["billingCreditId"] == id).cloned().collect();
        if events.len() >= n || Instant::now() > deadline {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn the_largest_and_deepest_free_form_objects_read_back_everywhere(backend: Backend) {
    let app = TestApp::start(backend).await;
    // One object at both bounds; the others deep and large too, as far as the 64 KiB
    // request body allows (four objects at 16 KiB each would not fit in one body).
    let largest = free_form(FREE_FORM_DEPTH_MAX, FREE_FORM_BYTES_MAX);
    let deep_and_large = free_form(FREE_FORM_DEPTH_MAX, 14_000);
    let mut body = visits(5);
    body["appliedTo"] = largest.clone();
    body["availableTo"] = deep_and_large.clone();
    body["expiry"] = deep_and_large.clone();
    body["extensions"] = deep_and_large.clone();
    let created = app.create(body).await;
    let id = created["billingCreditId"].as_str().unwrap().to_string();
    // A PATCH moves the largest object to another field: a CreditDetailsChanged holding it.
    let patch = json!({ "appliedTo": deep_and_large, "extensions": largest });
    let patched = app.request(Method::PATCH, &app.credit_url(&id)).json(&patch).send().await.unwrap();
    assert_eq!(patched.status(), 200);
    let patched: Value = patched.json().await.unwrap();
    let sent = |credit: &Value, patched: bool| {
        let (applied, extensions) = if patched { (&deep_and_large, &largest) } else { (&largest, &deep_and_large) };
        assert_eq!(&credit["appliedTo"], applied);
        assert_eq!(credit["availableTo"], deep_and_large);
        assert_eq!(credit["expiry"], deep_and_large);
        assert_eq!(&credit["extensions"], extensions);
    };
    sent(&created, false);
    sent(&patched, true);

    let got: Value = app.get(&id).await.json().await.unwrap();
    assert_eq!(got, patched, "GET one");
    let list: Value = app.list("").await.json().await.unwrap();
    assert_eq!(list["data"][0], patched, "the site list");
    let then = get_url(&app, &format!("{}?asOf={}", app.credit_url(&id), created["updatedAt"].as_str().unwrap())).await;
    assert_eq!(then.status(), 200);
    assert_eq!(then.json::<Value>().await.unwrap(), created, "asOf the create");
    let now = get_url(&app, &format!("{}?asOf={}", app.credit_url(&id), patched["updatedAt"].as_str().unwrap())).await;
    assert_eq!(now.json::<Value>().await.unwrap(), patched, "asOf the patch");
    let history = get_url(&app, &format!("{}/events", app.credit_url(&id))).await;
    assert_eq!(history.status(), 200);
    let history: Value = history.json().await.unwrap();
    let types: Vec<&str> = history["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["CreditIssued", "CreditDetailsChanged"], "the credit's history");
    let feed = feed_events_of(&app, &id, 2).await;
    let ids: Vec<&Value> = feed.iter().map(|e| &e["eventId"]).collect();
    let history_ids: Vec<&Value> = history["data"].as_array().unwrap().iter().map(|e| &e["eventId"]).collect();
    assert_eq!(ids, history_ids, "the site feed");
    // The credit is still writable: its events fold.
    let used = operation(&app, &id, "use", &json!({ "amount": 1, "reference": "visit-1" })).await;
    assert_eq!(used.status(), 200);
}

async fn dates_need_a_four_digit_year_and_no_leap_second(backend: Backend) {
    let app = TestApp::start(backend).await;
    let credit = app.create(visits(5)).await;
    let id = credit["billingCreditId"].as_str().unwrap().to_string();
    let bad = [
        "+10000-01-01",
        "-100000-01-01",
        "0000-01-01",
        "+2025-01-01",
        "-2025-01-01",
        "10000-01-01",
        "2025-1-01",
        "+2025-01-01T00:00:00Z",
        "0000-06-01T00:00:00Z",
        "2016-12-31T23:59:60Z",
        "2016-12-31T23:59:60.5+00:00",
        // Four digits as sent, but not once in UTC.
        "9999-12-31T23:00:00-05:00",
        "0001-01-01T00:30:00+01:00",
    ];
    for date in bad {
        for field in ["startDate", "endDate"] {
            assert_problem(app.post(&with(visits(5), field, json!(date))).await, 400, field, "invalid-value").await;
            let put = app.request(Method::PUT, &app.credit_url(&id)).json(&with(visits(5), field, json!(date)));
            assert_problem(put.send().await.unwrap(), 400, field, "invalid-value").await;
            let patch = app.request(Method::PATCH, &app.credit_url(&id)).json(&json!({ field: date }));
            assert_problem(patch.send().await.unwrap(), 400, field, "invalid-value").await;
        }
        let used = operation(&app, &id, "use", &json!({ "amount": 1, "reference": "v", "occurredAt": date })).await;
        assert_problem(used, 400, "occurredAt", "invalid-value").await;
        let as_of = date.replace('+', "%2B");
        let then = get_url(&app, &format!("{}?asOf={as_of}", app.credit_url(&id))).await;
        assert_problem(then, 400, "asOf", "invalid-instant").await;
    }
    unchanged(&app, &id, 1, &credit).await;
    // The bounds themselves are dates.
    let widest = app.create(json!({ "creditType": "quantity", "startDate": "0001-01-01", "endDate": "9999-12-31T23:59:59Z", "totalAmount": 1 })).await;
    assert_eq!(
        (widest["startDate"].as_str(), widest["endDate"].as_str()),
        (Some("0001-01-01T00:00:00Z"), Some("9999-12-31T23:59:59Z"))
    );
    let at = get_url(&app, &format!("{}?asOf=9999-12-31", app.credit_url(&id))).await;
    assert_eq!(at.status(), 200);
}

async fn control_characters_and_overlong_text_are_refused(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut body = visits(5);
    body["measurementUnit"] = json!({ "code": "visit" });
    body["wellnessPlanMembershipId"] = json!("9a0f6c1e-2b3d-4e5f-8a9b-0c1d2e3f4a5b");
    let credit = app.create(body.clone()).await;
    let id = credit["billingCreditId"].as_str().unwrap().to_string();
    let used = operation(&app, &id, "use", &json!({ "amount": 1, "reference": "visit-1" })).await;
    assert_eq!(used.status(), 200);
    let used: Value = used.json().await.unwrap();
    let event_id = used["events"][0]["eventId"].clone();
    let credit = used["billingCredit"].clone();
    let long = "x".repeat(TEXT_CHARS_MAX + 1);
    let coding = |field: &str, key: &str, text: &str| with(body.clone(), field, json!({ "code": "c", key: text }));

    // (method, path below the credit, or None for the collection, body, field, rule)
    let cases: Vec<(Method, Option<&str>, Value, String, &str)> = vec![
        (
            Method::POST,
            None,
            coding("measurementUnit", "code", "vi\u{0}sit"),
            "measurementUnit.code".into(),
            "control-character",
        ),
        (
            Method::POST,
            None,
            coding("currency", "system", "urn:\u{1b}x"),
            "currency.system".into(),
            "control-character",
        ),
        (
            Method::POST,
            None,
            coding("amountType", "display", "Two\nlines"),
            "amountType.display".into(),
            "control-character",
        ),
        (Method::POST, None, coding("creditCategory", "display", &long), "creditCategory.display".into(), "too-long"),
        (
            Method::PUT,
            Some(""),
            coding("measurementUnit", "code", "\u{0}"),
            "measurementUnit.code".into(),
            "control-character",
        ),
        (
            Method::PATCH,
            Some(""),
            json!({ "creditCategory": { "code": "a\u{7f}" } }),
            "creditCategory.code".into(),
            "control-character",
        ),
        (
            Method::POST,
            Some("/use"),
            json!({ "amount": 1, "reference": "visit\u{0}" }),
            "reference".into(),
            "control-character",
        ),
        (
            Method::POST,
            Some("/use"),
            json!({ "amount": 1, "reference": "a\tb" }),
            "reference".into(),
            "control-character",
        ),
        (Method::POST, Some("/use"), json!({ "amount": 1, "reference": long }), "reference".into(), "too-long"),
        (
            Method::POST,
            Some("/use"),
            json!({ "amount": 1, "reference": "v", "note": "a\u{0}" }),
            "note".into(),
            "control-character",
        ),
        (Method::POST, Some("/use"), json!({ "amount": 1, "reference": "v", "note": long }), "note".into(), "too-long"),
        (Method::POST, Some("/waste"), json!({ "amount": 1, "reason": "\u{7}" }), "reason".into(), "control-character"),
        (Method::POST, Some("/expire"), json!({ "reason": "end\u{0}" }), "reason".into(), "control-character"),
        (
            Method::POST,
            Some("/reverse"),
            json!({ "eventId": event_id, "reason": "\u{0}" }),
            "reason".into(),
            "control-character",
        ),
        (Method::POST, Some("/reverse"), json!({ "eventId": event_id, "reason": long }), "reason".into(), "too-long"),
    ];
    for (method, below, body, field, rule) in cases {
        let url = match below {
            Some(below) => format!("{}{below}", app.credit_url(&id)),
            None => app.credits_url(),
        };
        let response = app.request(method.clone(), &url).json(&body).send().await.unwrap();
        assert_problem(response, 400, &field, rule).await;
    }
    let consume = |reference: &str, unit: Value| {
        json!({ "wellnessPlanMembershipId": "9a0f6c1e-2b3d-4e5f-8a9b-0c1d2e3f4a5b", "amount": 1,
                "creditType": "quantity", "measurementUnit": unit, "reference": reference })
    };
    for (body, field) in [
        (consume("inv\u{0}", json!("visit")), "reference"),
        (consume("inv-1", json!("vi\u{0}sit")), "measurementUnit"),
        (consume("inv-1", json!({ "code": "vi\u{0}sit" })), "measurementUnit.code"),
        (consume("inv-1", json!({ "code": "visit", "display": "\u{0}" })), "measurementUnit.display"),
    ] {
        let url = format!("{}/consume", app.credits_url());
        let response = app.request(Method::POST, &url).json(&body).send().await.unwrap();
        assert_problem(response, 400, field, "control-character").await;
    }
    // Query strings: no control character in a name or a value, on every endpoint.
    for (url, field) in [
        (format!("{}?creditType=%00", app.credits_url()), "creditType"),
        (format!("{}?wellnessPlanId=%00", app.credits_url()), "wellnessPlanId"),
        (format!("{}?%00=1", app.credits_url()), "query"),
        (format!("{}?asOf=2025-01-01%00", app.credit_url(&id)), "asOf"),
        (format!("{}/events?page=%1b", app.credit_url(&id)), "page"),
        (format!("{}/site/{}/ahds/v1/billing-credit-events?after=%00", app.base, app.site), "after"),
    ] {
        assert_problem(get_url(&app, &url).await, 400, field, "control-character").await;
    }
    unchanged(&app, &id, 2, &credit).await;

    // Prose keeps its layout: tabs and line breaks in a note or a reason are fine.
    let note = "first line\n\tsecond line\r\n";
    let at_limit = "é".repeat(TEXT_CHARS_MAX);
    let used = operation(&app, &id, "use", &json!({ "amount": 1, "reference": at_limit, "note": note })).await;
    assert_eq!(used.status(), 200);
    let history: Value = get_url(&app, &format!("{}/events", app.credit_url(&id))).await.json().await.unwrap();
    assert_eq!(history["data"][2]["note"], note);
    assert_eq!(history["data"][2]["reference"], at_limit.as_str());
}

async fn amounts_that_cannot_be_held_exactly_are_refused_in_any_notation(backend: Backend) {
    let app = TestApp::start(backend).await;
    let quantity = |total: &str| {
        format!(
            r#"{{"creditType":"quantity","startDate":"2025-01-01","totalAmount":{total},"measurementUnit":{{"code":"visit"}}}}"#
        )
    };
    let dollars = |total: &str| {
        format!(
            r#"{{"creditType":"monetary","startDate":"2025-01-01","totalAmount":{total},"currency":{{"code":"USD"}}}}"#
        )
    };
    // Each was rounded to a value the ledger then stored: 1, 0.01, 1, 0, 100.
    for body in [
        quantity("0.99999999999999999999999999999e0"),
        dollars("0.0100000000000000000000000000001e0"),
        dollars("0.99999999999999999999999999999"),
        dollars("1e-29"),
        quantity("1.00000000000000000000000000001e2"),
    ] {
        let response = send_raw(&app, Method::POST, &app.credits_url(), &body).await;
        assert_problem(response, 400, "totalAmount", "invalid-value").await;
    }
    // Exact values stay accepted in any notation (the domain then judges their scale).
    let response = send_raw(&app, Method::POST, &app.credits_url(), &quantity("1.5e2")).await;
    assert_eq!(response.status(), 201);
    let credit: Value = response.json().await.unwrap();
    assert_eq!(credit["totalAmount"], 150);
    let id = credit["billingCreditId"].as_str().unwrap().to_string();
    let response = send_raw(&app, Method::POST, &app.credits_url(), &dollars("1.50e0")).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.json::<Value>().await.unwrap()["totalAmount"].to_string(), "1.5");
    let response =
        send_raw(&app, Method::POST, &app.credits_url(), &quantity("1.0000000000000000000000000000000e1")).await;
    assert_eq!(response.json::<Value>().await.unwrap()["totalAmount"], 10, "trailing zeros only drop");

    let url = format!("{}/use", app.credit_url(&id));
    let inexact = r#"{"amount":0.99999999999999999999999999999e0,"reference":"v"}"#;
    assert_problem(send_raw(&app, Method::POST, &url, inexact).await, 400, "amount", "invalid-value").await;
    let inexact = r#"{"usedAmount":1.000000000000000000000000000001e0}"#;
    let patch = send_raw(&app, Method::PATCH, &app.credit_url(&id), inexact).await;
    assert_problem(patch, 400, "usedAmount", "invalid-value").await;
    let got: Value = app.get(&id).await.json().await.unwrap();
    assert_eq!((got["usedAmount"].clone(), got["totalAmount"].clone()), (json!(0), json!(150)), "nothing changed");
}

async fn patch_cannot_null_a_field_every_credit_has(backend: Backend) {
    let app = TestApp::start(backend).await;
    let credit = app.create(with(visits(5), "endDate", json!("2030-01-01"))).await;
    let id = credit["billingCreditId"].as_str().unwrap().to_string();
    for field in ["creditType", "totalAmount", "startDate", "isActive", "usedAmount", "wastedAmount", "remainingAmount"]
    {
        let patch = app.request(Method::PATCH, &app.credit_url(&id)).json(&json!({ field: null }));
        let problem = assert_problem(patch.send().await.unwrap(), 400, field, "not-nullable").await;
        assert!(problem["detail"].as_str().unwrap().starts_with(field), "{problem}");
    }
    unchanged(&app, &id, 1, &credit).await;
    // Absent still leaves a field; null still clears an optional one.
    let patch = app.request(Method::PATCH, &app.credit_url(&id)).json(&json!({ "endDate": null }));
    let patched: Value = patch.send().await.unwrap().json().await.unwrap();
    assert_eq!(patched["endDate"], Value::Null);
    assert_eq!((patched["totalAmount"].clone(), patched["creditType"].clone()), (json!(5), json!("quantity")));
}

async fn repeated_query_parameters_are_refused_everywhere(backend: Backend) {
    let app = TestApp::start(backend).await;
    let credit = app.create(visits(5)).await;
    let id = credit["billingCreditId"].as_str().unwrap().to_string();
    let feed = format!("{}/site/{}/ahds/v1/billing-credit-events", app.base, app.site);
    let at = credit["updatedAt"].as_str().unwrap();
    for (url, field) in [
        (format!("{}?page=0&page=0", app.credits_url()), "page"),
        (format!("{}/events?page=0&page=1", app.credit_url(&id)), "page"),
        (format!("{}/events?pageSize=5&page=0&pageSize=5", app.credit_url(&id)), "pageSize"),
        (format!("{}?asOf={at}&asOf=2020-01-01", app.credit_url(&id)), "asOf"),
        (format!("{}?asOf={at}&asOf={at}", app.credit_url(&id)), "asOf"),
        (format!("{feed}?limit=1&limit=2"), "limit"),
    ] {
        assert_problem(get_url(&app, &url).await, 400, field, "repeated").await;
    }
}

async fn idempotent_retries_match_on_the_canonical_body(backend: Backend) {
    let app = TestApp::start(backend).await;
    let keyed = |method: Method, url: &str, key: &str, body: &str| {
        app.request(method, url)
            .header("Idempotency-Key", key)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    let create = r#"{"creditType":"quantity","startDate":"2025-01-01","totalAmount":5,"measurementUnit":{"code":"visit","display":"Visit"}}"#;
    let created = keyed(Method::POST, &app.credits_url(), "create-1", create).await.unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let reordered = "{ \"measurementUnit\" : { \"display\":\"Vis\\u0069t\", \"code\": \"visit\" },\n\t\"totalAmount\": 5, \"startDate\":\"2025-01-01\", \"creditType\":\"quantity\" }";
    let again = keyed(Method::POST, &app.credits_url(), "create-1", reordered).await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.json::<Value>().await.unwrap(), created, "the first response, replayed");
    let id = created["billingCreditId"].as_str().unwrap().to_string();

    let url = format!("{}/use", app.credit_url(&id));
    let first = keyed(Method::POST, &url, "use-1", r#"{"amount":1,"reference":"visit-1","note":"n"}"#).await.unwrap();
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    let retry = r#"  {"note": "n",   "reference": "visit-1",
        "amount": 1}  "#;
    let replayed = keyed(Method::POST, &url, "use-1", retry).await.unwrap();
    assert_eq!(replayed.status(), 200);
    assert_eq!(replayed.json::<Value>().await.unwrap(), first, "the first response, replayed");
    // Another request under the same key is still a conflict; numbers keep their text.
    for other in [
        r#"{"amount":2,"reference":"visit-1","note":"n"}"#,
        r#"{"amount":1.0,"reference":"visit-1","note":"n"}"#,
        r#"{"amount":1,"reference":"visit-1"}"#,
    ] {
        let conflict = keyed(Method::POST, &url, "use-1", other).await.unwrap();
        assert_problem(conflict, 409, "", "").await;
    }
    let conflict = keyed(Method::POST, &app.credits_url(), "create-1", &create.replace('5', "6")).await.unwrap();
    assert_problem(conflict, 409, "", "").await;
    let got: Value = app.get(&id).await.json().await.unwrap();
    assert_eq!(got["usedAmount"], 1, "applied once");
    let list: Value = app.list("").await.json().await.unwrap();
    assert_eq!(list["meta"]["total"], 1, "created once");
}
