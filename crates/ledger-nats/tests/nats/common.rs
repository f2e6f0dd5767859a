//! Shared by the NATS tests: each test gets its own subject prefix, streams, consumer
//! and KV bucket (so tests run in parallel against one server), deleted when it ends.

#![allow(dead_code)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::PullConsumer};
use ledger_nats::NatsSettings;
use ledger_store::{EventStore, FeedCursor, RecordedEvent};
use serde_json::Value;
use uuid::Uuid;

pub fn nats_url() -> String {
    std::env::var("TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// One test's slice of the NATS server.
pub struct Env {
    pub tag: String,
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    base: NatsSettings,
}

impl Env {
    pub async fn new(name: &str) -> Env {
        let tag = format!("{name}-{}", &Uuid::new_v4().simple().to_string()[..8]);
        let upper = tag.to_uppercase().replace('-', "_");
        let mut base = NatsSettings::new(nats_url());
        base.subject_prefix = format!("test.{tag}.billing-credit");
        base.command_stream = format!("{upper}_COMMANDS");
        base.consumer = format!("{tag}-ledger");
        base.event_stream = format!("{upper}_EVENTS");
        base.rejection_stream = format!("{upper}_REJECTIONS");
        base.alert_stream = format!("{upper}_ALERTS");
        base.kv_bucket = format!("{}_ledger", tag.replace('-', "_"));
        // Short enough for tests that kill and restart within seconds.
        base.ack_wait = Duration::from_secs(3);
        base.idle_poll = Duration::from_millis(250);
        base.nak_delay_base = Duration::from_millis(100);
        base.nak_delay_max = Duration::from_millis(1_000);
        base.publish_poll = Duration::from_millis(50);
        base.lease_ttl = Duration::from_secs(2);
        base.event_duplicate_window = Duration::from_secs(120);
        let client = async_nats::connect(nats_url()).await.expect("NATS answers (scripts/test starts it)");
        let js = jetstream::new(client.clone());
        Env { tag, client, js, base }
    }

    /// Settings of one replica (its own instance id).
    pub fn settings(&self) -> NatsSettings {
        let mut s = self.base.clone();
        s.instance_id = format!("{}-{}", self.tag, Uuid::new_v4().simple());
        s
    }

    pub fn command_subject(&self, site: Uuid) -> String {
        self.base.command_subject(site)
    }

    pub fn prefix(&self) -> &str {
        &self.base.subject_prefix
    }

    /// Publishes messages in order on one connection, then waits for every ack.
    pub async fn publish_all(&self, messages: Vec<(String, Vec<u8>, Option<String>)>) {
        let mut acks = Vec::with_capacity(messages.len());
        for (subject, body, msg_id) in messages {
            let mut headers = async_nats::HeaderMap::new();
            if let Some(id) = msg_id {
                headers.insert("Nats-Msg-Id", id.as_str());
            }
            acks.push(self.js.publish_with_headers(subject, headers, body.into()).await.expect("publish"));
        }
        for ack in acks {
            ack.await.expect("JetStream stored the command");
        }
    }

    pub async fn consumer(&self) -> PullConsumer {
        let stream = self.js.get_stream(&self.base.command_stream).await.expect("command stream");
        stream.get_consumer(&self.base.consumer).await.expect("consumer")
    }

    pub async fn consumer_info(&self) -> jetstream::consumer::Info {
        self.consumer().await.info().await.expect("consumer info").clone()
    }

    /// Waits until every command delivered so far is settled (acked or terminated) and
    /// nothing is pending.
    pub async fn wait_drained(&self, timeout: Duration) -> jetstream::consumer::Info {
        let deadline = Instant::now() + timeout;
        loop {
            let info = self.consumer_info().await;
            if info.num_pending == 0 && info.num_ack_pending == 0 {
                return info;
            }
            assert!(Instant::now() < deadline, "commands not drained in {timeout:?}: {info:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn stream_count(&self, stream: &str) -> u64 {
        match self.js.get_stream(stream).await {
            Ok(mut s) => s.info().await.expect("stream info").state.messages,
            Err(_) => 0,
        }
    }

    /// Waits until a stream holds `n` messages (and fails if it holds more).
    pub async fn wait_count(&self, stream: &str, n: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let count = self.stream_count(stream).await;
            assert!(count <= n, "{stream} holds {count} messages, more than the {n} expected");
            if count == n {
                return;
            }
            assert!(Instant::now() < deadline, "{stream} holds {count} of {n} messages after {timeout:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every message of a stream, in stream order: (subject, Nats-Msg-Id, body).
    pub async fn read_stream(&self, stream: &str) -> Vec<(String, Option<String>, Value)> {
        let mut s = self.js.get_stream(stream).await.expect("stream");
        let state = s.info().await.expect("stream info").state.clone();
        let mut out = Vec::with_capacity(state.messages as usize);
        if state.messages == 0 {
            return out;
        }
        for seq in state.first_sequence..=state.last_sequence {
            let m = s.get_raw_message(seq).await.expect("stream message");
            let id = m.headers.get("Nats-Msg-Id").map(|v| v.as_str().to_string());
            let body: Value = serde_json::from_slice(&m.payload).expect("JSON body");
            out.push((m.subject.to_string(), id, body));
        }
        out
    }

    pub fn event_stream(&self) -> String {
        self.base.event_stream.clone()
    }

    pub fn rejection_stream(&self) -> String {
        self.base.rejection_stream.clone()
    }

    pub fn alert_stream(&self) -> String {
        self.base.alert_stream.clone()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let streams = vec![
            self.base.command_stream.clone(),
            self.base.event_stream.clone(),
            self.base.rejection_stream.clone(),
            self.base.alert_stream.clone(),
            format!("KV_{}", self.base.kv_bucket),
        ];
        // Drop runs inside the test's runtime, which cannot block: a thread does it.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                if let Ok(client) = async_nats::connect(nats_url()).await {
                    let js = jetstream::new(client);
                    for stream in streams {
                        let _ = js.delete_stream(&stream).await;
                    }
                }
            })
        })
        .join();
    }
}

/// Every event of the store, in feed order, once the feed shows `n` of them (it lags
/// while older transactions, of any database of the server, are open).
pub async fn wait_feed(store: &dyn EventStore, n: usize, timeout: Duration) -> Vec<RecordedEvent> {
    let deadline = Instant::now() + timeout;
    loop {
        let feed = whole_feed(store).await;
        if feed.len() >= n || Instant::now() >= deadline {
            return feed;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every event of the store, in feed order.
pub async fn whole_feed(store: &dyn EventStore) -> Vec<RecordedEvent> {
    let mut cursor = FeedCursor::START;
    let mut all = vec![];
    loop {
        let page = store.feed(None, cursor, 1_000).await.expect("feed");
        if page.events.is_empty() {
            return all;
        }
        cursor = page.next;
        all.extend(page.events.into_iter().map(|e| e.expect("readable")));
    }
}

/// Checks that published events are each present once, with Nats-Msg-Id = eventId, on
/// the right subject, and in order 1..n within each credit. Returns the event ids.
pub fn check_published(prefix: &str, messages: &[(String, Option<String>, Value)]) -> Vec<Uuid> {
    let mut ids = Vec::with_capacity(messages.len());
    let mut seen = std::collections::HashSet::new();
    let mut versions: HashMap<String, u64> = HashMap::new();
    for (subject, msg_id, body) in messages {
        let id: Uuid = body["eventId"].as_str().and_then(|s| s.parse().ok()).expect("eventId");
        assert!(seen.insert(id), "event {id} published twice");
        assert_eq!(msg_id.as_deref(), Some(id.to_string().as_str()), "Nats-Msg-Id is the eventId");
        let site = body["siteId"].as_str().unwrap();
        let kind = body["type"].as_str().unwrap();
        assert_eq!(subject, &format!("{prefix}.events.{site}.{kind}"));
        let credit = format!("{site}/{}", body["billingCreditId"].as_str().unwrap());
        let version = body["version"].as_u64().unwrap();
        let last = versions.entry(credit.clone()).or_insert(0);
        assert_eq!(version, *last + 1, "credit {credit}: version {version} published after {last}");
        *last = version;
        ids.push(id);
    }
    ids
}

/// A small deterministic PRNG (xorshift64*), so a failing run can be replayed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in lo..=hi.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// The order the publisher gives the feed's events: the feed's, except that an event
/// the feed holds after a later version of its credit is published just before that
/// later version. Returns the ids in that order and how many events moved.
pub fn credit_ordered(feed: &[RecordedEvent]) -> (Vec<Uuid>, usize) {
    let by_version: HashMap<(Uuid, Uuid, u64), &RecordedEvent> =
        feed.iter().map(|e| ((e.site_id, e.billing_credit_id, e.version), e)).collect();
    let mut last: HashMap<(Uuid, Uuid), u64> = HashMap::new();
    let (mut out, mut moved) = (Vec::with_capacity(feed.len()), 0);
    for e in feed {
        let key = (e.site_id, e.billing_credit_id);
        let done = last.entry(key).or_insert(0);
        if e.version <= *done {
            continue; // moved ahead already
        }
        for v in *done + 1..e.version {
            out.push(by_version[&(e.site_id, e.billing_credit_id, v)].event_id);
            moved += 1;
        }
        out.push(e.event_id);
        *done = e.version;
    }
    (out, moved)
}
