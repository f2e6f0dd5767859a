//! One stored event that cannot be read back (a legacy payload nested past serde_json's
//! recursion limit, a payload that does not match its type) stops no one: the feed
//! yields it in its place, named, and goes on; verify names it; the reads of its credit
//! fail naming it, and every other credit reads as before. On both backends.

mod common;

use common::*;
use ledger_store::testing::{nested_extensions, overwrite_payload, stored_payload, TestDatabase};
use ledger_store::*;
use uuid::Uuid;

ledger_store::backend_tests!(unreadable_events_are_named_and_stop_no_other_reader);

async fn unreadable_events_are_named_and_stop_no_other_reader(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let site = Uuid::new_v4();
    // Three credits with a little history each; two of them will be damaged.
    let mut ids = Vec::new();
    for _ in 0..3 {
        let id = issue(&store, site, draft("5")).await;
        run(&store, site, id, use_("1")).await.unwrap();
        ids.push(id);
    }
    let (deep, misshapen, sound) = (ids[0], ids[1], ids[2]);
    let deep_event = store.read_stream(site, deep, 0, 10).await.unwrap()[0].clone();
    let misshapen_event = store.read_stream(site, misshapen, 0, 10).await.unwrap()[1].clone();
    let payload = stored_payload(&db, deep_event.event_id).await;
    overwrite_payload(&db, deep_event.event_id, &nested_extensions(&payload, 200)).await;
    overwrite_payload(
        &db,
        misshapen_event.event_id,
        r#"{"amount": "1", "reference": null, "note": null, "colour": "red"}"#,
    )
    .await;

    // The feed: every event in its place, the two damaged ones named with their cursor.
    let feed = drain_stored(&store, site, 6).await;
    let unreadable: Vec<&UndecodableEvent> = feed.iter().filter_map(|e| e.as_ref().err()).collect();
    assert_eq!(unreadable.len(), 2, "{feed:?}");
    assert_eq!(feed.iter().filter(|e| e.is_ok()).count(), 4, "the others read as before");
    let named = unreadable.iter().find(|u| u.event_id == deep_event.event_id).expect("the deep one is named");
    assert_eq!((named.site_id, named.billing_credit_id, named.version), (site, deep, 1));
    assert_eq!((named.event_type.as_str(), named.cursor), ("CreditIssued", deep_event.cursor));
    assert!(named.reason.contains("recursion limit"), "{}", named.reason);
    let named = unreadable.iter().find(|u| u.event_id == misshapen_event.event_id).expect("named");
    assert_eq!((named.event_type.as_str(), named.version), ("CreditUsed", 2));
    assert!(named.reason.contains("colour"), "{}", named.reason);

    // verify: both named (event, credit, site, reason); the sound credit checks out.
    let report = audit::verify(store.as_ref(), None, &|_| {}).await.unwrap();
    assert!(!report.ok());
    assert_eq!(report.finding_count, 2, "{:?}", report.findings);
    for (event, credit, why) in [(&deep_event, deep, "recursion limit"), (&misshapen_event, misshapen, "colour")] {
        let finding = report.findings.iter().find(|f| f.contains(&event.event_id.to_string())).expect("named");
        assert!(finding.contains(&credit.to_string()) && finding.contains(&site.to_string()), "{finding}");
        assert!(finding.contains("cannot be read") && finding.contains(why), "{finding}");
    }
    assert_eq!(report.events, 6);

    // The damaged credit's history fails, naming the event; its projection still reads.
    match store.read_stream(site, deep, 0, 10).await {
        Err(e @ StoreError::Undecodable(_)) => assert!(e.to_string().contains(&deep_event.event_id.to_string()), "{e}"),
        other => panic!("expected the unreadable event named, got {other:?}"),
    }
    assert_eq!(store.load(site, deep).await.unwrap().expect("projection").version, 2);
    // Every other credit, and the site's list, as before.
    assert_eq!(store.read_stream(site, sound, 0, 10).await.unwrap().len(), 2);
    let list = store.list(site, &ListQuery::default()).await.unwrap();
    assert_eq!(list.total, 3);
    // Replay cannot rebuild a credit without its events: it stops, naming the event.
    let replayed = audit::replay(store.as_ref(), Some(site), ReplayLimits::default(), &|_| {}).await;
    let error = replayed.expect_err("replay needs every event").to_string();
    assert!(error.contains(&deep_event.event_id.to_string()) || error.contains(&misshapen_event.event_id.to_string()));
}

/// The site's feed read one stored event at a time, damaged ones included.
async fn drain_stored(store: &std::sync::Arc<dyn EventStore>, site: Uuid, expected: usize) -> Vec<StoredEvent> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let (mut seen, mut cursor) = (Vec::new(), FeedCursor::START);
    while seen.len() < expected {
        assert!(std::time::Instant::now() < deadline, "only {} of {expected} events arrived", seen.len());
        let page = store.feed(Some(site), cursor, 1).await.expect("one bad row does not fail the feed");
        if page.events.is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        cursor = page.next;
        seen.extend(page.events);
    }
    assert!(store.feed(Some(site), cursor, 100).await.unwrap().events.is_empty());
    seen
}
