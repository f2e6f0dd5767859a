//! Values at the wire's bounds (free-form objects FREE_FORM_DEPTH_MAX deep and
//! FREE_FORM_BYTES_MAX long, texts of TEXT_CHARS_MAX characters) are stored, and read back
//! unchanged by every path that reads them: load, history, as-of, list, feed, verify and
//! replay, on both backends. The wire refuses anything past them, so no stored event is
//! ever beyond what these readers can decode.

mod common;

use common::*;
use ledger_domain::*;
use ledger_store::testing::TestDatabase;
use ledger_store::*;
use ledger_wire::limits::{FREE_FORM_BYTES_MAX, FREE_FORM_DEPTH_MAX, TEXT_CHARS_MAX};
use serde_json::json;
use uuid::Uuid;

ledger_store::backend_tests!(values_at_the_bounds_read_back_unchanged_everywhere);

/// An object FREE_FORM_DEPTH_MAX levels deep (itself level 1) whose compact JSON is
/// exactly FREE_FORM_BYTES_MAX bytes.
fn at_bounds(tag: &str) -> JsonObject {
    let build = |pad: usize| {
        let mut value = json!({ "tag": tag, "pad": "é".repeat(pad / 2) + &"x".repeat(pad % 2) });
        for _ in 1..FREE_FORM_DEPTH_MAX {
            value = json!({ "a": value });
        }
        value
    };
    let value = build(FREE_FORM_BYTES_MAX - build(0).to_string().len());
    assert_eq!(value.to_string().len(), FREE_FORM_BYTES_MAX);
    value.as_object().expect("an object").clone()
}

fn depth(value: &serde_json::Value) -> usize {
    match value {
        serde_json::Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        serde_json::Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

async fn values_at_the_bounds_read_back_unchanged_everywhere(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let site = Uuid::new_v4();
    let mut issued = draft("10");
    issued.details.applied_to = Some(at_bounds("appliedTo"));
    issued.details.available_to = Some(at_bounds("availableTo"));
    issued.details.expiry = Some(at_bounds("expiry"));
    issued.details.extensions = Some(at_bounds("extensions"));
    assert_eq!(depth(&json!(issued.details.applied_to)), FREE_FORM_DEPTH_MAX);
    let id = issue(&store, site, issued.clone()).await;
    let patch = CreditPatch { extensions: Some(Some(at_bounds("patched"))), ..Default::default() };
    run(&store, site, id, Command::Patch(patch)).await.unwrap();
    let text = "ü".repeat(TEXT_CHARS_MAX);
    let spend = Command::Use { amount: d("1"), reference: Some(text.clone()), note: Some(text.clone()) };
    run(&store, site, id, spend).await.unwrap();

    let mut expected = issued.details.clone();
    expected.extensions = Some(at_bounds("patched"));
    let check = |credit: &Credit, what: &str| {
        assert_eq!(credit.details, expected, "{what}: the details read back unchanged");
        assert_eq!((credit.version, credit.used_amount), (3, d("1")), "{what}");
    };
    check(&store.load(site, id).await.unwrap().expect("stored"), "load");
    let history = store.read_stream(site, id, 0, 10).await.unwrap();
    assert_eq!(history.len(), 3);
    match (&history[0].event, &history[2].event) {
        (Event::CreditIssued(e), Event::CreditUsed(u)) => {
            assert_eq!(e.details, issued.details);
            assert_eq!((u.reference.as_ref(), u.note.as_ref()), (Some(&text), Some(&text)));
        }
        other => panic!("unexpected history {other:?}"),
    }
    check(&history::fold(&history).expect("folds"), "history");
    let now = chrono::Utc::now() + chrono::Duration::seconds(1);
    check(&history::as_of(store.as_ref(), site, id, now).await.unwrap().expect("as of now"), "as of");
    let page = store.list(site, &ListQuery::default()).await.unwrap();
    check(&page.credits[0], "list");
    let feed = drain_feed(&store, Some(site), 3).await;
    assert_eq!(feed, history, "the feed reads what the history reads");

    let report = audit::verify(store.as_ref(), Some(site), &|_| {}).await.unwrap();
    assert!(report.ok(), "{:?}", report.findings);
    for scope in [Some(site), None] {
        audit::replay(store.as_ref(), scope, ReplayLimits::default(), &|_| {}).await.expect("replay");
        check(&store.load(site, id).await.unwrap().expect("replayed"), "replay");
        assert!(audit::verify(store.as_ref(), None, &|_| {}).await.unwrap().ok(), "{scope:?}");
    }
}
