//! Every filter, every sort, and the paging edges of the list endpoint.

use ledger_store::Backend;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

ledger_store::backend_tests!(
    every_filter_selects_its_credits,
    every_sort_orders_both_ways,
    end_date_puts_undated_credits_last_both_ways_across_pages,
    paging_edges
);

async fn ids(app: &TestApp, query: &str) -> Vec<String> {
    let response = app.list(query).await;
    assert_eq!(response.status(), 200, "{query}");
    let list: Value = response.json().await.unwrap();
    list["data"].as_array().unwrap().iter().map(|c| c["billingCreditId"].as_str().unwrap().to_string()).collect()
}

async fn every_filter_selects_its_credits(backend: Backend) {
    let app = TestApp::start(backend).await;
    let fields = [
        "wellnessPlanBenefitId",
        "wellnessPlanId",
        "wellnessPlanMembershipCycleId",
        "wellnessPlanMembershipId",
        "wellnessPlanMembershipStatusPeriodId",
    ];
    let mut made = Vec::new();
    for field in fields {
        let value = Uuid::new_v4();
        let mut body = visits(1);
        body[field] = json!(value);
        let credit = app.create(body).await;
        made.push((field, value, credit["billingCreditId"].as_str().unwrap().to_string()));
    }
    for (field, value, id) in &made {
        assert_eq!(ids(&app, &format!("{field}={value}")).await, vec![id.clone()], "{field}");
    }
    let mut inactive =
        json!({ "creditType": "monetary", "startDate": "2025-01-01", "totalAmount": 10, "isActive": false });
    inactive["currency"] = json!({ "code": "EUR" });
    let money = app.create(inactive).await["billingCreditId"].as_str().unwrap().to_string();
    assert_eq!(ids(&app, "creditType=monetary").await, vec![money.clone()]);
    assert_eq!(ids(&app, "isActive=false").await, vec![money.clone()]);
    assert_eq!(ids(&app, "creditType=quantity&isActive=true").await.len(), 5);
    let (field, value, id) = &made[3];
    assert_eq!(ids(&app, &format!("{field}={value}&creditType=quantity")).await, vec![id.clone()]);
    assert!(ids(&app, &format!("{field}={value}&isActive=false")).await.is_empty());
}

async fn every_sort_orders_both_ways(backend: Backend) {
    let app = TestApp::start(backend).await;
    // Credit i: total 10+i, used i, wasted 2i, start 2025-01-0i, end in 2026 reversed.
    let mut created = Vec::new();
    for i in 1..=4u32 {
        let body = json!({ "creditType": "quantity", "startDate": format!("2025-01-0{i}"), "endDate": format!("2026-01-0{}", 5 - i),
                           "totalAmount": 10 + i, "usedAmount": i, "wastedAmount": (i * 2) % 7 });
        created.push(app.create(body).await["billingCreditId"].as_str().unwrap().to_string());
    }
    let in_order = |order: &[usize]| order.iter().map(|&i| created[i].clone()).collect::<Vec<_>>();
    // wasted: 2, 4, 6, 1 → ascending order 3, 0, 1, 2. remaining = 10+i - i - wasted: 8, 6, 4, 13.
    let expectations: [(&str, [usize; 4]); 8] = [
        ("createdAt", [0, 1, 2, 3]),
        ("updatedAt", [0, 1, 2, 3]),
        ("startDate", [0, 1, 2, 3]),
        ("endDate", [3, 2, 1, 0]),
        ("totalAmount", [0, 1, 2, 3]),
        ("usedAmount", [0, 1, 2, 3]),
        ("wastedAmount", [3, 0, 1, 2]),
        ("remainingAmount", [2, 1, 0, 3]),
    ];
    for (field, asc) in expectations {
        assert_eq!(ids(&app, &format!("sortBy={field}")).await, in_order(&asc), "{field} asc (default)");
        let mut desc = asc;
        desc.reverse();
        assert_eq!(ids(&app, &format!("sortBy={field}&sortOrder=desc")).await, in_order(&desc), "{field} desc");
    }
}

async fn end_date_puts_undated_credits_last_both_ways_across_pages(backend: Backend) {
    let app = TestApp::start(backend).await;
    let plan = Uuid::new_v4();
    let (mut dated, mut undated) = (Vec::new(), Vec::new());
    for i in 1..=5u32 {
        let mut body = visits(1);
        body["wellnessPlanId"] = json!(plan);
        body["endDate"] = json!(format!("2026-02-0{i}"));
        dated.push(app.create(body).await["billingCreditId"].as_str().unwrap().to_string());
        let mut body = visits(1);
        body["wellnessPlanId"] = json!(plan);
        undated.push(app.create(body).await["billingCreditId"].as_str().unwrap().to_string());
    }
    app.create(visits(1)).await; // another plan's
    undated.sort();
    for order in ["asc", "desc"] {
        let mut expected = dated.clone();
        let mut last = undated.clone();
        if order == "desc" {
            expected.reverse();
            last.reverse();
        }
        expected.extend(last);
        // Pages of 3 cross from dated to undated inside page 1.
        let mut seen = Vec::new();
        for page in 0..4 {
            seen.extend(
                ids(&app, &format!("wellnessPlanId={plan}&sortBy=endDate&sortOrder={order}&page={page}&pageSize=3"))
                    .await,
            );
        }
        assert_eq!(seen, expected, "{order}");
        assert_eq!(ids(&app, &format!("sortBy=endDate&sortOrder={order}&pageSize=100")).await.len(), 11);
    }
}

async fn paging_edges(backend: Backend) {
    let app = TestApp::start(backend).await;
    for _ in 0..23 {
        app.create(visits(1)).await;
    }
    let page = |query: &'static str| {
        let app = &app;
        async move { app.list(query).await.json::<Value>().await.unwrap() }
    };
    let first = page("pageSize=10").await;
    assert_eq!(
        first["meta"],
        json!({ "page": 0, "pageSize": 10, "total": 23, "totalPages": 3, "hasNext": true, "hasPrevious": false })
    );
    let last = page("page=2&pageSize=10").await;
    assert_eq!(last["data"].as_array().unwrap().len(), 3);
    assert_eq!(last["meta"]["hasNext"], false);
    assert_eq!(last["meta"]["hasPrevious"], true);
    let beyond = page("page=3&pageSize=10").await;
    assert_eq!(beyond["data"], json!([]));
    assert_eq!(beyond["meta"]["total"], 23);
    let all = page("pageSize=100").await;
    assert_eq!(all["data"].as_array().unwrap().len(), 23);
    assert_eq!(all["meta"]["totalPages"], 1);
    let default = page("").await;
    assert_eq!(default["meta"]["pageSize"], 10);
    // Pages never overlap: the three pages of 10 hold 23 distinct credits.
    let mut seen: Vec<String> = Vec::new();
    for p in 0..3 {
        seen.extend(ids(&app, &format!("page={p}&pageSize=10")).await);
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 23);
}
