//! Poison never stops the ledger, on Postgres and SQLite:
//! - a stored event that cannot be read back is skipped by the publisher, reported and
//!   recorded in the KV bucket, and every event after it is published;
//! - a command the database itself refuses (a constraint, a trigger) is rejected on its
//!   first delivery as `store-refused`, and the credit's next command applies.

use std::time::{Duration, Instant};

use chrono::Utc;
use ledger_domain::{Command, CreditDetails, CreditDraft, CreditType};
use ledger_nats::publisher::{Unpublishable, UNPUBLISHABLE_KEY_PREFIX};
use ledger_store::testing::{nested_extensions, overwrite_payload, stored_payload, TestDatabase};
use ledger_store::{commands, Backend, CommandMeta, EventStore, RecordedEvent};
use rust_decimal::Decimal;
use serde_json::json;
use uuid::Uuid;

use crate::common::Env;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_unreadable_event_is_skipped_and_publication_goes_on() {
    an_unreadable_event_is_skipped_and_publication_goes_on(Backend::Postgres).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_an_unreadable_event_is_skipped_and_publication_goes_on() {
    an_unreadable_event_is_skipped_and_publication_goes_on(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_command_the_database_refuses_is_rejected_at_once() {
    a_command_the_database_refuses_is_rejected_at_once(Backend::Postgres).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_command_the_database_refuses_is_rejected_at_once() {
    a_command_the_database_refuses_is_rejected_at_once(Backend::Sqlite).await
}

fn draft() -> CreditDraft {
    CreditDraft {
        details: CreditDetails::new(CreditType::Quantity, "2020-01-01T00:00:00Z".parse().unwrap()),
        is_active: true,
        total_amount: Decimal::from(10),
        used_amount: Decimal::ZERO,
        wasted_amount: Decimal::ZERO,
        remaining_amount: None,
    }
}

async fn apply(store: &dyn EventStore, site: Uuid, credit: Uuid, command: Command) -> RecordedEvent {
    let committed = commands::run_command(store, site, credit, command, CommandMeta::new("test", Utc::now()), None)
        .await
        .expect("command applies");
    committed.events.into_iter().next().expect("one event")
}

fn spend() -> Command {
    Command::Use { amount: Decimal::ONE, reference: None, note: None }
}

async fn an_unreadable_event_is_skipped_and_publication_goes_on(backend: Backend) {
    let env = Env::new("poison-publish").await;
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let site = Uuid::new_v4();
    let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let mut written = vec![];
    for (credit, command) in [(a, Command::Issue(draft())), (b, Command::Issue(draft())), (a, spend()), (b, spend())] {
        written.push(apply(store.as_ref(), site, credit, command).await);
    }
    // A's use does not match its schema; B's issue is nested past any reader's limit,
    // so B's use follows a predecessor that can never be published.
    let (misshapen, deep) = (written[2].event_id, written[1].event_id);
    overwrite_payload(&db, misshapen, r#"{"amount": "1", "reference": null, "note": null, "colour": "red"}"#).await;
    overwrite_payload(&db, deep, &nested_extensions(&stored_payload(&db, deep).await, 200)).await;
    for (credit, command) in [(c, Command::Issue(draft())), (c, spend()), (a, spend())] {
        written.push(apply(store.as_ref(), site, credit, command).await);
    }

    let mut settings = env.settings();
    settings.intake = false;
    let bucket = settings.kv_bucket.clone();
    let handle = ledger_nats::start(settings, store.clone()).await.expect("start");
    let readable: Vec<Uuid> = written.iter().map(|e| e.event_id).filter(|id| *id != misshapen && *id != deep).collect();
    env.wait_count(&env.event_stream(), readable.len() as u64, Duration::from_secs(60)).await;
    let published: Vec<Uuid> = env
        .read_stream(&env.event_stream())
        .await
        .iter()
        .map(|(_, _, body)| body["eventId"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(published, readable, "everything but the two unreadable events, in feed order");

    // Each skip is recorded durably, with what the operator needs to find the row.
    let kv = env.js.get_key_value(&bucket).await.expect("the publisher's bucket");
    for (event, version, event_type) in [(deep, 1, "CreditIssued"), (misshapen, 2, "CreditUsed")] {
        let entry = kv.get(format!("{UNPUBLISHABLE_KEY_PREFIX}{event}")).await.unwrap().expect("recorded");
        let record: Unpublishable = serde_json::from_slice(&entry).unwrap();
        let stored = written.iter().find(|e| e.event_id == event).unwrap();
        assert_eq!((record.site_id, record.billing_credit_id), (site, stored.billing_credit_id));
        assert_eq!((record.version, record.event_type.as_str()), (version, event_type));
        assert_eq!(record.cursor, stored.cursor.encode());
        assert!(!record.reason.is_empty());
    }
    // Publication carries on with events written after the skip.
    let later = apply(store.as_ref(), site, c, spend()).await;
    env.wait_count(&env.event_stream(), readable.len() as u64 + 1, Duration::from_secs(60)).await;
    let last = env.read_stream(&env.event_stream()).await.pop().unwrap();
    assert_eq!(last.2["eventId"], json!(later.event_id));
    handle.shutdown().await.expect("graceful shutdown");
}

async fn a_command_the_database_refuses_is_rejected_at_once(backend: Backend) {
    let env = Env::new("poison-command").await;
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    ledger_store::testing::refuse_payloads_mentioning(&db, "poison").await;
    let mut settings = env.settings();
    settings.publish = false;
    let handle = ledger_nats::start(settings, store.clone()).await.expect("start");

    let (site, credit) = (Uuid::new_v4(), Uuid::new_v4());
    let subject = env.command_subject(site);
    let (issue, poisoned, next) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let spend = |id: Uuid, amount: u32, reference: &str| json!({"commandId": id, "type": "use", "billingCreditId": credit, "amount": amount, "reference": reference});
    let commands = [
        (
            issue,
            json!({"commandId": issue, "type": "issue", "billingCreditId": credit, "creditType": "quantity",
                       "startDate": "2020-01-01", "totalAmount": 10, "measurementUnit": {"code": "visit"}}),
        ),
        (poisoned, spend(poisoned, 1, "poison-7")),
        (next, spend(next, 2, "visit-8")),
    ];
    let started = Instant::now();
    env.publish_all(
        commands
            .iter()
            .map(|(id, body)| (subject.clone(), body.to_string().into_bytes(), Some(id.to_string())))
            .collect(),
    )
    .await;
    env.wait_count(&env.rejection_stream(), 1, Duration::from_secs(20)).await;
    let rejection = env.read_stream(&env.rejection_stream()).await.remove(0).2;
    assert_eq!(rejection["commandId"], json!(poisoned));
    assert_eq!(rejection["rule"], json!("store-refused"), "{rejection}");
    assert_eq!(rejection["deliveries"], json!(1), "rejected on its first delivery: {rejection}");
    assert!(rejection["message"].as_str().unwrap().contains("refuse_poison"), "the database's words: {rejection}");
    let info = env.wait_drained(Duration::from_secs(20)).await;
    // Backoff would have taken 100 ms + 200 ms + … per redelivery; none happened.
    assert_eq!(info.num_redelivered, 0, "{info:?}");
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
    let now = store.load(site, credit).await.unwrap().expect("issued");
    assert_eq!((now.version, now.used_amount), (2, Decimal::from(2)), "the credit's next command applied");
    handle.shutdown().await.expect("graceful shutdown");
}
