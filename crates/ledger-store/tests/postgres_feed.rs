//! The Postgres feed under writers that commit out of order: a reader polling all the
//! while sees every event exactly once. A bigserial cursor alone would skip the events
//! of transactions that took their position early and committed late.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use ledger_domain::event::CreditIssued;
use ledger_domain::*;
use ledger_store::testing::TestDatabase;
use ledger_store::*;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

const WRITERS: usize = 6;
const EVENTS_PER_WRITER: usize = 40;

/// Inserts one event in its own transaction, holding it open for `hold_ms` first.
async fn write_slowly(conn: &mut PgConnection, site: Uuid, hold_ms: u64) -> Uuid {
    let event_id = Uuid::new_v4();
    let event = Event::CreditIssued(CreditIssued {
        details: CreditDetails::new(CreditType::Quantity, start()),
        total_amount: d("1"),
        used_amount: d("0"),
        wasted_amount: d("0"),
        is_active: true,
    });
    let mut tx = conn.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO events (event_id, site_id, billing_credit_id, version, event_type, schema_version, payload, \
         actor, occurred_at, recorded_at, hash) VALUES ($1, $2, $3, 1, $4, 1, $5::json, 'feed-test', now(), now(), $6)",
    )
    .bind(event_id)
    .bind(site)
    .bind(Uuid::new_v4())
    .bind(event.event_type())
    .bind(serde_json::to_string(&event.payload()).unwrap())
    .bind(&[7u8; 32][..])
    .execute(&mut *tx)
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(hold_ms)).await;
    tx.commit().await.unwrap();
    event_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reader_sees_every_event_once_while_writers_commit_out_of_order() {
    let db = TestDatabase::postgres().await;
    let store = db.store().await;
    let site = Uuid::new_v4();

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let url = db.url.clone();
            tokio::spawn(async move {
                let mut conn = PgConnection::connect(&url).await.unwrap();
                let mut written = Vec::with_capacity(EVENTS_PER_WRITER);
                for i in 0..EVENTS_PER_WRITER {
                    // Writer 0 holds every fifth transaction open far longer than the
                    // others take, so later positions commit before earlier ones.
                    let hold_ms = if w == 0 && i % 5 == 0 { 150 } else { (i as u64 * 7 + w as u64 * 3) % 11 };
                    written.push(write_slowly(&mut conn, site, hold_ms).await);
                }
                written
            })
        })
        .collect();

    let reader = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut seen: HashMap<Uuid, usize> = HashMap::new();
            let mut cursor = FeedCursor::START;
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while seen.len() < WRITERS * EVENTS_PER_WRITER && std::time::Instant::now() < deadline {
                let page = store.feed(Some(site), cursor, 7).await.unwrap();
                for e in &page.events {
                    *seen.entry(e.as_ref().expect("readable").event_id).or_default() += 1;
                }
                cursor = page.next;
                if page.events.is_empty() {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            (seen, cursor)
        })
    };

    let mut written = Vec::new();
    for w in writers {
        written.extend(w.await.unwrap());
    }
    let (seen, cursor) = reader.await.unwrap();
    if seen.len() != written.len() {
        let mut conn = PgConnection::connect(&db.url).await.unwrap();
        let rows: Vec<(String, i64, Uuid)> =
            sqlx::query_as("SELECT txid::text, position, event_id FROM events ORDER BY txid, position")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        for (t, p, id) in rows {
            if !seen.contains_key(&id) {
                eprintln!("missed txid={t} pos={p}");
            }
        }
        eprintln!("cursor={cursor:?}");
        let snap: (String,) = sqlx::query_as("SELECT pg_current_snapshot()::text").fetch_one(&mut conn).await.unwrap();
        eprintln!("snapshot={snap:?}");
    }
    assert_eq!(seen.len(), written.len(), "every event seen");
    assert!(written.iter().all(|id| seen.get(id) == Some(&1)), "each exactly once");
    assert!(store.feed(Some(site), cursor, 100).await.unwrap().events.is_empty());
}

/// Commands that lock several credits at once (consumes, grouped commits) must still
/// publish each credit's versions in order: the feed reads in txid order, so a credit's
/// next version may never commit under an older transaction id than its previous one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_credits_versions_come_in_order_under_multi_credit_writers() {
    let db = TestDatabase::postgres().await;
    let store = db.store().await;
    let site = Uuid::new_v4();
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(issue(&store, site, draft("100000")).await);
    }
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (store, ids) = (store.clone(), ids.clone());
            tokio::spawn(async move {
                for i in 0..30 {
                    let pair = vec![ids[(w + i) % 4], ids[(w + 2 * i + 1) % 4]];
                    let (a, b) = (pair[0], pair[1]);
                    let now = meta().occurred_at;
                    store
                        .execute(Execution {
                            site_id: site,
                            billing_credit_ids: if a == b { vec![a] } else { pair },
                            meta: meta(),
                            reverses: None,
                            decide: Box::new(move |states| {
                                let mut out = vec![(a, decide(states[0].as_ref(), &use_("1"), now)?)];
                                if a != b {
                                    out.push((b, decide(states[1].as_ref(), &use_("1"), now)?));
                                }
                                Ok(out)
                            }),
                        })
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let mut expected = 0;
    for id in &ids {
        expected += store.load(site, *id).await.unwrap().unwrap().version as usize;
    }
    let feed = drain_feed(&store, Some(site), expected).await;
    let mut last: HashMap<Uuid, u64> = HashMap::new();
    for e in &feed {
        let previous = last.insert(e.billing_credit_id, e.version).unwrap_or(0);
        assert_eq!(e.version, previous + 1, "credit {} version {} after {previous}", e.billing_credit_id, e.version);
    }
}
