//! Event publication: the store's feed is the outbox. The replica holding the lease
//! tails `store.feed(None, checkpoint, batch)` and publishes every event, in feed order,
//! one at a time (each publish acknowledged before the next is sent, so the stream's
//! order is the feed's order), to `{prefix}.events.{siteId}.{eventType}` with
//! `Nats-Msg-Id` = eventId. After a page is acknowledged the checkpoint (the last
//! published cursor) is written to the KV bucket, compare-and-set on its revision, which
//! also fences out a publisher that lost its lease. After a crash the new holder resumes
//! from the checkpoint; what was published after it is published again and dropped by
//! JetStream's duplicate window, so each event is in the stream once.
//!
//! A stored event that cannot be read back (a corrupt or legacy row) is not published:
//! it is logged with its id and cursor, counted (`ledger_events_unpublishable_total`),
//! recorded in the KV bucket under `publisher.unpublishable.{eventId}` before the
//! checkpoint moves past it, and publication goes on with the next event. The operator's
//! way out is in docs/operations.md.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use chrono::Utc;
use ledger_domain::Event;
use ledger_store::{EventStore, FeedCursor, RecordedEvent, StoreError, UndecodableEvent};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::watch;
use uuid::Uuid;

use crate::lease::Lease;
use crate::wire;
use crate::NatsSettings;

/// The KV key of the publication checkpoint.
pub const CHECKPOINT_KEY: &str = "publisher.checkpoint";
/// The KV key of the publisher lease.
pub const LEASE_KEY: &str = "publisher.lease";
/// The KV keys of events skipped as unreadable: this prefix and the event id.
pub const UNPUBLISHABLE_KEY_PREFIX: &str = "publisher.unpublishable.";
/// A pause after a failed store read or publish, before trying again.
pub const PUBLISH_ERROR_PAUSE_MS: u64 = 1_000;
/// Credits whose last published version the publisher keeps in memory.
pub const CREDITS_REMEMBERED_MAX: usize = 100_000;
/// The longest wait between two lease attempts of a replica that does not hold it.
pub const LEASE_POLL_MAX_MS: u64 = 1_000;

/// The stored checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    /// The feed cursor of the last published event (`FeedCursor::encode`).
    pub cursor: String,
    pub event_id: Option<Uuid>,
    pub updated_at: String,
    pub holder: String,
}

/// What the KV bucket keeps of an event the publisher skipped because it cannot be read.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Unpublishable {
    pub event_id: Uuid,
    pub site_id: Uuid,
    pub billing_credit_id: Uuid,
    pub version: u64,
    #[serde(rename = "type")]
    pub event_type: String,
    /// Its feed cursor (`FeedCursor::encode`).
    pub cursor: String,
    pub reason: String,
    pub skipped_at: String,
    pub holder: String,
}

/// The subject an event is published on.
pub fn event_subject(prefix: &str, event: &RecordedEvent) -> String {
    format!("{prefix}.events.{}.{}", event.site_id, event.event.event_type())
}

/// The JSON body of a published event.
pub fn event_message(e: &RecordedEvent) -> Value {
    json!({
        "eventId": e.event_id,
        "siteId": e.site_id,
        "billingCreditId": e.billing_credit_id,
        "version": e.version,
        "type": e.event.event_type(),
        "schemaVersion": e.schema_version,
        "payload": payload(&e.event),
        "actor": e.actor,
        "commandId": e.command_id,
        "correlationId": e.correlation_id,
        "causationId": e.causation_id,
        "recordedAt": wire::format_timestamp(&e.recorded_at),
        "occurredAt": wire::format_timestamp(&e.occurred_at),
        "hash": hex::encode(e.hash),
        "cursor": e.cursor.encode(),
    })
}

/// The event's payload as stored, with its amounts as exact JSON numbers.
pub fn payload(event: &Event) -> Value {
    let mut payload = event.payload();
    if let Value::Object(fields) = &mut payload {
        for key in ["amount", "delta", "totalAmount", "usedAmount", "wastedAmount"] {
            if let Some(Value::String(text)) = fields.get(key) {
                if let Ok(amount) = text.parse::<rust_decimal::Decimal>() {
                    fields.insert(key.to_string(), wire::amount_value(&amount));
                }
            }
        }
    }
    payload
}

pub(crate) struct Publisher {
    js: jetstream::Context,
    kv: kv::Store,
    store: Arc<dyn EventStore>,
    settings: Arc<NatsSettings>,
    leading: Arc<AtomicBool>,
}

/// Where a holder stands: the cursor published up to, the checkpoint's revision, and
/// whether the cursor is ahead of what is stored.
struct Position {
    cursor: FeedCursor,
    last_event: Option<Uuid>,
    revision: Option<u64>,
    dirty: bool,
    /// The last version published of each credit seen in this term (bounded).
    published_versions: HashMap<(Uuid, Uuid), u64>,
    /// Events published ahead of their feed position to keep their credit's order.
    published_early: HashSet<Uuid>,
}

impl Position {
    fn at(cursor: FeedCursor, last_event: Option<Uuid>, revision: Option<u64>) -> Self {
        Position {
            cursor,
            last_event,
            revision,
            dirty: false,
            published_versions: HashMap::new(),
            published_early: HashSet::new(),
        }
    }

    fn published(&mut self, event: &RecordedEvent) {
        if self.published_versions.len() >= CREDITS_REMEMBERED_MAX {
            // Forgetting only costs a store read at the next event of a forgotten credit.
            self.published_versions.clear();
        }
        self.published_versions.insert((event.site_id, event.billing_credit_id), event.version);
    }
}

enum Step {
    /// Published a page.
    Published,
    /// Nothing new in the feed.
    Idle,
    /// Lost the lease or the checkpoint to another replica.
    Lost,
    /// A transient failure: pause.
    Pause,
}

impl Publisher {
    /// Creates the events stream and the KV bucket when absent.
    pub(crate) async fn prepare(
        js: &jetstream::Context,
        settings: Arc<NatsSettings>,
        store: Arc<dyn EventStore>,
        leading: Arc<AtomicBool>,
    ) -> anyhow::Result<Self> {
        let s = &settings;
        crate::streams::ensure_stream(
            js,
            jetstream::stream::Config {
                name: s.event_stream.clone(),
                description: Some("Every event of the billing-credit ledger, in commit order".into()),
                subjects: vec![format!("{}.events.>", s.subject_prefix)],
                storage: jetstream::stream::StorageType::File,
                num_replicas: s.stream_replicas,
                duplicate_window: s.event_duplicate_window,
                max_age: s.event_max_age,
                ..Default::default()
            },
            "event stream",
        )
        .await?;
        let kv = open_bucket(js, &s.kv_bucket, s.stream_replicas).await?;
        Ok(Publisher { js: js.clone(), kv, store, settings, leading })
    }

    pub(crate) async fn run(self, mut stop: watch::Receiver<bool>) {
        let s = self.settings.clone();
        let mut lease = Lease::new(self.kv.clone(), LEASE_KEY.into(), s.instance_id.clone(), s.lease_ttl);
        let idle = (s.lease_ttl / 3).min(Duration::from_millis(LEASE_POLL_MAX_MS));
        tracing::info!(stream = %s.event_stream, holder = %s.instance_id, "NATS event publisher started");
        'contend: while !*stop.borrow() {
            match lease.try_acquire().await {
                Ok(true) => {}
                Ok(false) => {
                    pause(&mut stop, idle).await;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "publisher lease check failed");
                    pause(&mut stop, Duration::from_millis(PUBLISH_ERROR_PAUSE_MS)).await;
                    continue;
                }
            }
            let mut position = match self.read_checkpoint().await {
                Ok(position) => position,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the publication checkpoint failed");
                    pause(&mut stop, Duration::from_millis(PUBLISH_ERROR_PAUSE_MS)).await;
                    continue;
                }
            };
            self.leading.store(true, Ordering::SeqCst);
            tracing::info!(cursor = %position.cursor.encode(), "publishing events from the checkpoint");
            loop {
                if *stop.borrow() {
                    // Graceful: the last page is published; store where we are, let go.
                    if position.dirty {
                        let _ = self.write_checkpoint(&mut position).await;
                    }
                    lease.release().await;
                    break 'contend;
                }
                if lease.renew_due() {
                    if let Ok(false) = lease.renew().await {
                        break;
                    }
                }
                if !lease.is_valid() {
                    tracing::warn!("the publisher lease ran out before a renewal got through; contending again");
                    break;
                }
                match self.step(&mut lease, &mut position).await {
                    Step::Published => {}
                    Step::Idle => pause(&mut stop, s.publish_poll).await,
                    Step::Lost => break,
                    Step::Pause => pause(&mut stop, Duration::from_millis(PUBLISH_ERROR_PAUSE_MS)).await,
                }
            }
            self.leading.store(false, Ordering::SeqCst);
        }
        self.leading.store(false, Ordering::SeqCst);
        tracing::info!("NATS event publisher stopped");
    }

    /// Publishes one page of the feed, then stores the checkpoint.
    async fn step(&self, lease: &mut Lease, position: &mut Position) -> Step {
        if position.dirty {
            match self.write_checkpoint(position).await {
                Ok(()) => {}
                Err(step) => return step,
            }
        }
        let page = match self.store.feed(None, position.cursor, self.settings.feed_batch_events).await {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(error = %e, "reading the event feed failed");
                return Step::Pause;
            }
        };
        if page.events.is_empty() {
            return Step::Idle;
        }
        let mut failed = false;
        for stored in &page.events {
            if lease.renew_due() {
                if let Ok(false) = lease.renew().await {
                    return Step::Lost;
                }
            }
            if !lease.is_valid() {
                return Step::Lost;
            }
            let event = match stored {
                Ok(event) => event,
                Err(undecodable) => {
                    if let Err(e) = self.skip(undecodable, position).await {
                        tracing::warn!(error = %e, event_id = %undecodable.event_id, "recording an unpublishable event failed; retrying from it");
                        failed = true;
                        break;
                    }
                    continue;
                }
            };
            if !position.published_early.remove(&event.event_id) {
                let result = match self.predecessors_ahead(event, position).await {
                    Ok(ahead) => {
                        self.publish_in_order(ahead.iter().chain(std::iter::once(event)), event, position).await
                    }
                    Err(e) => Err(e),
                };
                if let Err(e) = result {
                    tracing::warn!(error = %e, event_id = %event.event_id, "publishing an event failed; retrying from it");
                    failed = true;
                    break;
                }
            }
            position.cursor = event.cursor;
            position.last_event = Some(event.event_id);
            position.dirty = true;
        }
        if position.dirty {
            if let Err(step) = self.write_checkpoint(position).await {
                return step;
            }
        }
        if failed {
            Step::Pause
        } else {
            Step::Published
        }
    }

    /// Passes an event that cannot be read: reported, and recorded in the KV bucket
    /// before the checkpoint can move past it, so the skip is never silent.
    async fn skip(&self, undecodable: &UndecodableEvent, position: &mut Position) -> Result<(), async_nats::Error> {
        let record = Unpublishable {
            event_id: undecodable.event_id,
            site_id: undecodable.site_id,
            billing_credit_id: undecodable.billing_credit_id,
            version: undecodable.version,
            event_type: undecodable.event_type.clone(),
            cursor: undecodable.cursor.encode(),
            reason: undecodable.reason.clone(),
            skipped_at: wire::format_timestamp(&Utc::now()),
            holder: self.settings.instance_id.clone(),
        };
        let key = format!("{UNPUBLISHABLE_KEY_PREFIX}{}", undecodable.event_id);
        self.kv.put(key, serde_json::to_vec(&record).expect("records serialize").into()).await?;
        tracing::error!(
            event_id = %undecodable.event_id,
            cursor = %record.cursor,
            site_id = %undecodable.site_id,
            billing_credit_id = %undecodable.billing_credit_id,
            version = undecodable.version,
            reason = %undecodable.reason,
            "a stored event cannot be read: not published, skipped (see docs/operations.md)"
        );
        metrics::counter!("ledger_events_unpublishable_total").increment(1);
        // Its credit's later versions must not wait for it.
        let key = (undecodable.site_id, undecodable.billing_credit_id);
        let known = position.published_versions.get(&key).copied().unwrap_or(0);
        position.published_versions.insert(key, known.max(undecodable.version));
        position.cursor = undecodable.cursor;
        position.last_event = Some(undecodable.event_id);
        position.dirty = true;
        Ok(())
    }

    /// The events of `event`'s credit that precede it but come after it in the feed,
    /// oldest first. The feed is ordered by commit; a credit's versions normally are
    /// too, but a transaction that took its xid before waiting for another's lock on
    /// the credit commits a later version under a smaller xid. Those are published
    /// before `event` (and skipped when the feed reaches them), so that each credit's
    /// events are always published in version order.
    async fn predecessors_ahead(
        &self,
        event: &RecordedEvent,
        position: &Position,
    ) -> Result<Vec<RecordedEvent>, async_nats::Error> {
        let known = position.published_versions.get(&(event.site_id, event.billing_credit_id)).copied().unwrap_or(0);
        let mut ahead = vec![];
        let mut version = event.version;
        while version > known + 1 {
            version -= 1;
            let previous = match self.store.read_stream(event.site_id, event.billing_credit_id, version - 1, 1).await {
                Ok(previous) => previous,
                // Never publishable, and skipped where the feed holds it: look past it.
                Err(StoreError::Undecodable(undecodable)) if undecodable.cursor > event.cursor => continue,
                Err(StoreError::Undecodable(_)) => break,
                Err(e) => return Err(e.into()),
            };
            let Some(previous) = previous.into_iter().next() else { break };
            // Before it in the feed (so already published), or already published early:
            // and so is everything older (by induction on this rule).
            if previous.cursor < event.cursor || position.published_early.contains(&previous.event_id) {
                break;
            }
            ahead.push(previous);
        }
        ahead.reverse();
        if !ahead.is_empty() {
            metrics::counter!("ledger_nats_events_reordered_total").increment(ahead.len() as u64);
            tracing::debug!(credit = %event.billing_credit_id, version = event.version, ahead = ahead.len(), "publishing a credit's earlier versions ahead of the feed");
        }
        Ok(ahead)
    }

    /// Publishes `events` (the last one is `current`, the others go out ahead of the feed).
    async fn publish_in_order<'a>(
        &self,
        events: impl Iterator<Item = &'a RecordedEvent>,
        current: &RecordedEvent,
        position: &mut Position,
    ) -> Result<(), async_nats::Error> {
        for event in events {
            self.publish(event).await?;
            position.published(event);
            if event.event_id != current.event_id {
                position.published_early.insert(event.event_id);
            }
            metrics::counter!("ledger_nats_events_published_total").increment(1);
        }
        Ok(())
    }

    async fn publish(&self, event: &RecordedEvent) -> Result<(), async_nats::Error> {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", event.event_id.to_string().as_str());
        let payload = serde_json::to_vec(&event_message(event)).expect("events serialize");
        let subject = event_subject(&self.settings.subject_prefix, event);
        self.js.publish_with_headers(subject, headers, payload.into()).await?.await?;
        Ok(())
    }

    async fn read_checkpoint(&self) -> anyhow::Result<Position> {
        let start = Position::at(FeedCursor::START, None, None);
        match self.kv.entry(CHECKPOINT_KEY).await? {
            Some(entry) if entry.operation == kv::Operation::Put => {
                let checkpoint: Checkpoint = serde_json::from_slice(&entry.value)
                    .map_err(|e| anyhow::anyhow!("the checkpoint in {} is unreadable: {e}", self.settings.kv_bucket))?;
                let cursor = FeedCursor::decode(&checkpoint.cursor).ok_or_else(|| {
                    anyhow::anyhow!("the checkpoint cursor {:?} is not a feed cursor", checkpoint.cursor)
                })?;
                Ok(Position::at(cursor, checkpoint.event_id, Some(entry.revision)))
            }
            _ => Ok(start),
        }
    }

    /// Stores the position, compare-and-set on the revision we read or wrote last.
    /// Err(Lost) when another replica wrote it meanwhile; Err(Pause) when unreachable.
    async fn write_checkpoint(&self, position: &mut Position) -> Result<(), Step> {
        let value = Checkpoint {
            cursor: position.cursor.encode(),
            event_id: position.last_event,
            updated_at: wire::format_timestamp(&Utc::now()),
            holder: self.settings.instance_id.clone(),
        };
        let bytes = serde_json::to_vec(&value).expect("checkpoints serialize");
        let written = match position.revision {
            Some(revision) => self.kv.update(CHECKPOINT_KEY, bytes.into(), revision).await.map_err(|e| e.to_string()),
            None => self.kv.create(CHECKPOINT_KEY, bytes.into()).await.map_err(|e| e.to_string()),
        };
        match written {
            Ok(revision) => {
                position.revision = Some(revision);
                position.dirty = false;
                Ok(())
            }
            Err(error) => {
                let current = self.kv.entry(CHECKPOINT_KEY).await;
                match current {
                    Ok(entry)
                        if entry.as_ref().filter(|e| e.operation == kv::Operation::Put).map(|e| e.revision)
                            != position.revision =>
                    {
                        tracing::warn!("the publication checkpoint was written by another replica; stepping back");
                        Err(Step::Lost)
                    }
                    _ => {
                        tracing::warn!(%error, "writing the publication checkpoint failed");
                        Err(Step::Pause)
                    }
                }
            }
        }
    }
}

async fn pause(stop: &mut watch::Receiver<bool>, duration: Duration) {
    if !*stop.borrow() {
        let _ = tokio::time::timeout(duration, stop.changed()).await;
    }
}

/// The KV bucket of the checkpoint and the lease, created when absent.
///
/// The bucket's stream is created directly, with the configuration a KV bucket has
/// (`KV_{bucket}`, `$KV.{bucket}.>`, one value per key, rollups), rather than with
/// `create_key_value`: that first reads the account info, whose shape NATS 2.9
/// (Debian's) does not match in this client.
///
/// Without direct get, so that reads go to the stream's leader: a direct get may be
/// answered by a follower, and a follower still catching up (a node just restarted)
/// hands out an old revision, on which every compare-and-set of the lease and the
/// checkpoint fails until it has caught up. A bucket made with direct get is changed.
pub(crate) async fn open_bucket(js: &jetstream::Context, bucket: &str, replicas: usize) -> anyhow::Result<kv::Store> {
    let stream = crate::streams::ensure_stream(
        js,
        jetstream::stream::Config {
            name: format!("KV_{bucket}"),
            description: Some("billing-credit ledger: publication checkpoint and publisher lease".into()),
            subjects: vec![format!("$KV.{bucket}.>")],
            max_messages_per_subject: 1,
            storage: jetstream::stream::StorageType::File,
            num_replicas: replicas,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: false,
            discard: jetstream::stream::DiscardPolicy::New,
            ..Default::default()
        },
        "KV bucket",
    )
    .await?;
    let config = stream.cached_info().config.clone();
    if config.allow_direct {
        tracing::warn!(stream = %config.name, "reading the KV bucket from its leader only (direct get off)");
        js.update_stream(jetstream::stream::Config { allow_direct: false, ..config })
            .await
            .map_err(|e| anyhow::anyhow!("turning direct get off on the KV bucket {bucket}: {e}"))?;
    }
    js.get_key_value(bucket).await.map_err(|e| anyhow::anyhow!("opening the KV bucket {bucket}: {e}"))
}
