//! Builders shared by the store tests.
#![allow(dead_code)]

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use ledger_domain::*;
use ledger_store::*;
use rust_decimal::Decimal;
use uuid::Uuid;

pub fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

pub fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()
}

pub fn meta() -> CommandMeta {
    CommandMeta::new("test", start() + Duration::days(1))
}

pub fn draft(total: &str) -> CreditDraft {
    CreditDraft {
        details: CreditDetails::new(CreditType::Quantity, start()),
        is_active: true,
        total_amount: d(total),
        used_amount: Decimal::ZERO,
        wasted_amount: Decimal::ZERO,
        remaining_amount: None,
    }
}

/// Runs one command on one credit through `execute`, judged at `meta().occurred_at`.
pub async fn run(store: &Arc<dyn EventStore>, site: Uuid, id: Uuid, command: Command) -> Result<Committed, StoreError> {
    run_as(store, site, id, command, meta()).await
}

pub async fn run_as(
    store: &Arc<dyn EventStore>,
    site: Uuid,
    id: Uuid,
    command: Command,
    meta: CommandMeta,
) -> Result<Committed, StoreError> {
    let now = meta.occurred_at;
    store
        .execute(Execution {
            site_id: site,
            billing_credit_ids: vec![id],
            meta,
            reverses: None,
            decide: Box::new(move |states| Ok(vec![(id, decide(states[0].as_ref(), &command, now)?)])),
        })
        .await
}

pub async fn issue(store: &Arc<dyn EventStore>, site: Uuid, draft: CreditDraft) -> Uuid {
    let id = Uuid::new_v4();
    run(store, site, id, Command::Issue(draft)).await.expect("issue");
    id
}

pub fn use_(amount: &str) -> Command {
    Command::Use { amount: d(amount), reference: None, note: None }
}

/// Every event of a stream, folded as `evolve` folds them.
pub async fn fold_stream(store: &Arc<dyn EventStore>, site: Uuid, id: Uuid) -> Option<Credit> {
    let events = store.read_stream(site, id, 0, READ_LIMIT_MAX).await.unwrap();
    ledger_store::history::fold(&events)
}

/// Reads the feed one event at a time until `expected` events arrived, then checks that
/// nothing more comes. The Postgres feed holds events back while any older transaction
/// in the cluster is still open (other tests run in parallel), so this polls.
pub async fn drain_feed(store: &Arc<dyn EventStore>, site: Option<Uuid>, expected: usize) -> Vec<RecordedEvent> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut seen = Vec::new();
    let mut cursor = FeedCursor::START;
    while seen.len() < expected {
        assert!(std::time::Instant::now() < deadline, "only {} of {expected} events arrived", seen.len());
        let page = store.feed(site, cursor, 1).await.unwrap();
        if page.events.is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        seen.extend(page.events.into_iter().map(|e| e.expect("readable")));
        cursor = page.next;
    }
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(store.feed(site, cursor, 100).await.unwrap().events.is_empty(), "more than {expected} events");
    seen
}
