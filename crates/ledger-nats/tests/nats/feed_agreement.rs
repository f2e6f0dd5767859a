//! The store's feed (what the REST site feed serves) and the NATS publication agree
//! event for event, in the same order, while REST-like writers and the NATS intake
//! write concurrently through two replicas, and the replica publishing is killed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use ledger_domain::{Command, CreditDetails, CreditDraft, CreditType};
use ledger_store::testing::TestDatabase;
use ledger_store::{commands, CommandMeta, EventStore, FeedCursor, RecordedEvent};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{check_published, credit_ordered, wait_feed, Env, Rng};

const WRITERS: usize = 6;
const WRITER_CREDITS: usize = 5;
const WRITER_COMMANDS: usize = 60;
const NATS_CREDITS: usize = 10;
const NATS_COMMANDS: usize = 200;

fn draft(total: i64) -> CreditDraft {
    let start = "2020-01-01T00:00:00Z".parse().unwrap();
    let mut details = CreditDetails::new(CreditType::Quantity, start);
    details.measurement_unit = Some(ledger_domain::Coding { code: Some("visit".into()), system: None, display: None });
    CreditDraft {
        details,
        is_active: true,
        total_amount: Decimal::from(total),
        used_amount: Decimal::ZERO,
        wasted_amount: Decimal::ZERO,
        remaining_amount: None,
    }
}

/// A REST-like client: commands straight to the store, no commandId, on credits of its
/// own and on the engine's (`shared`), so that writers contend for the same credits.
async fn writer(store: Arc<dyn EventStore>, site: Uuid, shared: Vec<Uuid>, seed: u64) -> usize {
    let mut rng = Rng::new(seed);
    let mut credits: Vec<Uuid> = (0..WRITER_CREDITS).map(|_| Uuid::new_v4()).collect();
    let meta = || CommandMeta::new("rest-client", Utc::now());
    for &c in &credits {
        commands::run_command(store.as_ref(), site, c, Command::Issue(draft(10_000)), meta(), None)
            .await
            .expect("issue");
    }
    credits.extend(shared);
    for _ in 0..WRITER_COMMANDS {
        let c = credits[(rng.next() % credits.len() as u64) as usize];
        let command = match rng.range(0, 2) {
            0 => Command::Use { amount: Decimal::from(rng.range(1, 3)), reference: Some("visit".into()), note: None },
            1 => Command::Waste { amount: Decimal::ONE, reason: Some("no-show".into()) },
            _ => Command::AdjustTotal { delta: Decimal::from(rng.range(1, 4)), reason: None },
        };
        commands::run_command(store.as_ref(), site, c, command, meta(), None).await.expect("command");
    }
    WRITER_CREDITS + WRITER_COMMANDS
}

async fn site_feed(store: &dyn EventStore, site: Uuid) -> Vec<RecordedEvent> {
    let (mut cursor, mut all) = (FeedCursor::START, vec![]);
    loop {
        // Small pages, as a REST client would read them.
        let page = store.feed(Some(site), cursor, 37).await.expect("site feed");
        if page.events.is_empty() {
            return all;
        }
        cursor = page.next;
        all.extend(page.events.into_iter().map(|e| e.expect("readable")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_and_the_publication_agree_event_for_event_under_concurrent_writers() {
    let env = Env::new("feed-agreement").await;
    let db = TestDatabase::postgres().await;
    let writers_store = db.store().await;
    let started = Instant::now();
    // Two replicas, each with its own pool, sharing the consumer and the lease.
    let mut replicas: Vec<Option<ledger_nats::NatsHandle>> = vec![];
    for _ in 0..2 {
        replicas.push(Some(ledger_nats::start(env.settings(), db.store().await).await.expect("start")));
    }
    let sites = [Uuid::new_v4(), Uuid::new_v4()];

    // The engine's credits first (so that their uses never overtake them)...
    let mut rng = Rng::new(7);
    let nats_credits: Vec<(Uuid, Uuid)> = (0..NATS_CREDITS).map(|i| (sites[i % 2], Uuid::new_v4())).collect();
    let issues = nats_credits
        .iter()
        .map(|(site, credit)| {
            let id = Uuid::new_v4();
            let body = json!({"commandId": id, "type": "issue", "billingCreditId": credit, "creditType": "quantity",
                              "startDate": "2020-01-01", "totalAmount": 10_000, "measurementUnit": {"code": "visit"}});
            (env.command_subject(*site), body.to_string().into_bytes(), Some(id.to_string()))
        })
        .collect();
    env.publish_all(issues).await;
    env.wait_drained(Duration::from_secs(20)).await;

    // ...then REST-like writers and the engine's commands, all at once.
    let writers: Vec<_> = (0..WRITERS)
        .map(|i| {
            let site = sites[i % 2];
            let shared = nats_credits.iter().filter(|(s, _)| *s == site).map(|(_, c)| *c).collect();
            tokio::spawn(writer(writers_store.clone(), site, shared, 100 + i as u64))
        })
        .collect();
    let commands: Vec<_> = (0..NATS_COMMANDS)
        .map(|_| {
            let (site, credit) = nats_credits[(rng.next() % NATS_CREDITS as u64) as usize];
            let id = Uuid::new_v4();
            let body = match rng.range(0, 1) {
                0 => json!({"commandId": id, "type": "use", "billingCreditId": credit, "amount": rng.range(1, 3), "reference": "benefit"}),
                _ => json!({"commandId": id, "type": "waste", "billingCreditId": credit, "amount": 1, "reason": "expired benefit"}),
            };
            (env.command_subject(site), body.to_string().into_bytes(), Some(id.to_string()))
        })
        .collect();
    env.publish_all(commands).await;

    // Kill the replica that publishes while all of that is under way.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let leader = replicas.iter().position(|r| r.as_ref().unwrap().is_publishing());
    let killed = leader.unwrap_or(0);
    drop(replicas[killed].take());
    eprintln!("killed replica {killed} (publishing: {})", leader.is_some());

    let mut written = 0;
    for w in writers {
        written += w.await.expect("writer");
    }
    env.wait_drained(Duration::from_secs(30)).await;
    assert_eq!(env.stream_count(&env.rejection_stream()).await, 0);

    let feed = wait_feed(writers_store.as_ref(), written + NATS_CREDITS + NATS_COMMANDS, Duration::from_secs(20)).await;
    assert_eq!(feed.len(), written + NATS_CREDITS + NATS_COMMANDS);
    env.wait_count(&env.event_stream(), feed.len() as u64, Duration::from_secs(30)).await;
    let published = env.read_stream(&env.event_stream()).await;
    check_published(env.prefix(), &published);

    // Event for event, with the same body, in the feed's order (but for the events the
    // feed itself holds after a later version of their credit: see credit_ordered).
    let (order, moved) = credit_ordered(&feed);
    let by_id: HashMap<Uuid, &RecordedEvent> = feed.iter().map(|e| (e.event_id, e)).collect();
    for (i, (id, (_, _, body))) in order.iter().zip(&published).enumerate() {
        assert_eq!(body, &ledger_nats::event_message(by_id[id]), "event #{i}");
    }
    // Each site's feed (the REST site feed) is the publication of that site.
    for site in sites {
        let rest = site_feed(writers_store.as_ref(), site).await;
        let rest_by_id: HashMap<Uuid, &RecordedEvent> = rest.iter().map(|e| (e.event_id, e)).collect();
        let by_rest: Vec<Value> =
            credit_ordered(&rest).0.iter().map(|id| ledger_nats::event_message(rest_by_id[id])).collect();
        let by_nats: Vec<Value> =
            published.iter().map(|(_, _, b)| b).filter(|b| b["siteId"] == json!(site)).cloned().collect();
        assert_eq!(by_rest.len(), by_nats.len(), "site {site}");
        assert!(by_rest == by_nats, "site {site}: the REST feed and the NATS publication differ");
    }
    // Amounts are JSON numbers, exactly.
    let used = published.iter().find(|(_, _, b)| b["type"] == "CreditUsed").expect("a use").2.clone();
    assert!(used["payload"]["amount"].is_number(), "{used}");
    let mut per_type: HashMap<String, usize> = HashMap::new();
    for (_, _, b) in &published {
        *per_type.entry(b["type"].as_str().unwrap().to_string()).or_default() += 1;
    }
    eprintln!(
        "{} events agree ({per_type:?}, {moved} published ahead of the feed for their credit's order) in {:?}",
        feed.len(),
        started.elapsed()
    );

    for replica in replicas.into_iter().flatten() {
        replica.shutdown().await.expect("graceful shutdown");
    }
}
