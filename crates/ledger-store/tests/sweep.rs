//! The expiry sweep on both backends: two sweepers at once expire each credit once.

mod common;

use chrono::Duration;
use common::*;
use ledger_domain::event::CreditIssued;
use ledger_domain::*;
use ledger_store::testing::TestDatabase;
use ledger_store::*;
use uuid::Uuid;

ledger_store::backend_tests!(two_sweepers_expire_a_thousand_credits_exactly_once, the_sweep_leaves_what_is_not_due);

const CREDITS: usize = 1_000;

async fn two_sweepers_expire_a_thousand_credits_exactly_once(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let site = Uuid::new_v4();
    let mut details = CreditDetails::new(CreditType::Quantity, start());
    details.end_date = Some(start() + Duration::days(30));
    let issued = Event::CreditIssued(CreditIssued {
        details,
        total_amount: d("3"),
        used_amount: d("1"),
        wasted_amount: d("0"),
        is_active: true,
    });
    let appends: Vec<StreamAppend> = (0..CREDITS)
        .map(|_| StreamAppend {
            site_id: site,
            billing_credit_id: Uuid::new_v4(),
            expected_version: 0,
            events: vec![NewEvent { event_id: Uuid::new_v4(), event: issued.clone() }],
        })
        .collect();
    store.append(appends, meta()).await.unwrap();

    let now = start() + Duration::days(31);
    let sweepers: Vec<_> = (0..2)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { sweep::expire_due(store.as_ref(), now).await.unwrap() })
        })
        .collect();
    let mut expired = 0;
    for s in sweepers {
        expired += s.await.unwrap();
    }
    assert_eq!(expired, CREDITS as u64);
    let events = drain_feed(&store, Some(site), 2 * CREDITS).await;
    let expiries: Vec<_> = events.iter().filter(|e| matches!(e.event, Event::CreditExpired(_))).collect();
    assert_eq!(expiries.len(), CREDITS);
    assert!(expiries.iter().all(|e| matches!(&e.event, Event::CreditExpired(x) if x.amount == d("2"))));
    assert!(store.due_for_expiry(now, 10).await.unwrap().is_empty());
    assert_eq!(sweep::expire_due(store.as_ref(), now).await.unwrap(), 0, "a later run finds nothing");
}

async fn the_sweep_leaves_what_is_not_due(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let site = Uuid::new_v4();
    let mut later = draft("2");
    later.details.end_date = Some(start() + Duration::days(90));
    let not_due = issue(&store, site, later).await;
    let spent = {
        let mut d = draft("1");
        d.details.end_date = Some(start() + Duration::days(2));
        let id = issue(&store, site, d).await;
        run(&store, site, id, use_("1")).await.unwrap();
        id
    };
    let no_end = issue(&store, site, draft("2")).await;
    assert_eq!(sweep::expire_due(store.as_ref(), start() + Duration::days(10)).await.unwrap(), 0);
    for id in [not_due, spent, no_end] {
        assert!(!store.load(site, id).await.unwrap().unwrap().expired);
    }
}
