//! Balance alerts on NATS: every replica claims due NATS rows of the alert outbox
//! (`ledger_store::alerts`) for a lease and publishes each to
//! `{prefix}.alerts.{siteId}.{kind}` with `Nats-Msg-Id` = the alert's id, waiting for
//! JetStream's acknowledgement before recording it delivered. A publisher that dies in
//! between leaves the row claimed; once the lease runs out it is published again, and
//! the stream's duplicate window drops the copy.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use chrono::Utc;
use ledger_store::alerts::{next_attempt_at, Attempt, ClaimedDelivery, TargetKind};
use ledger_store::EventStore;
use tokio::sync::watch;

use crate::NatsSettings;

/// Alert rows claimed per round.
pub const ALERT_CLAIM_BATCH: u32 = 100;
/// How long one publication may wait for its acknowledgement.
pub const ALERT_PUBLISH_TIMEOUT_MS: u64 = 5_000;
/// What a claim's lease adds to the publish timeout.
const LEASE_MARGIN_MS: u64 = 5_000;

/// The subject of an alert: `{prefix}.alerts.{siteId}.{kind}`.
pub fn alert_subject(prefix: &str, site_id: uuid::Uuid, kind: &str) -> String {
    format!("{prefix}.alerts.{site_id}.{kind}")
}

pub(crate) struct AlertPublisher {
    js: jetstream::Context,
    store: Arc<dyn EventStore>,
    settings: Arc<NatsSettings>,
}

impl AlertPublisher {
    /// Creates the alert stream (`{prefix}.alerts.>`) when absent.
    pub(crate) async fn prepare(
        js: &jetstream::Context,
        settings: Arc<NatsSettings>,
        store: Arc<dyn EventStore>,
    ) -> anyhow::Result<Self> {
        let s = &settings;
        crate::streams::ensure_stream(
            js,
            jetstream::stream::Config {
                name: s.alert_stream.clone(),
                description: Some("Balance alerts of the billing-credit ledger (low, depleted, expiring)".into()),
                subjects: vec![format!("{}.alerts.>", s.subject_prefix)],
                storage: jetstream::stream::StorageType::File,
                num_replicas: s.stream_replicas,
                duplicate_window: s.event_duplicate_window,
                max_age: s.event_max_age,
                ..Default::default()
            },
            "alert stream",
        )
        .await?;
        Ok(AlertPublisher { js: js.clone(), store, settings })
    }

    pub(crate) async fn run(self, mut stop: watch::Receiver<bool>) {
        let lease = chrono::Duration::milliseconds((ALERT_PUBLISH_TIMEOUT_MS + LEASE_MARGIN_MS) as i64);
        while !*stop.borrow() {
            let now = Utc::now();
            let idle = match self.store.claim_deliveries(TargetKind::Nats, now, now + lease, ALERT_CLAIM_BATCH).await {
                Ok(claimed) => {
                    let none = claimed.is_empty();
                    for delivery in claimed {
                        let attempt = self.attempt(&delivery).await;
                        if let Err(e) = self.store.record_attempt(&delivery, &attempt, Utc::now()).await {
                            tracing::warn!(alert = %delivery.alert_id, error = %e, "recording an alert publication failed");
                        }
                    }
                    none
                }
                Err(e) => {
                    tracing::warn!(error = %e, "claiming NATS alert deliveries failed");
                    true
                }
            };
            if idle {
                tokio::select! {
                    _ = tokio::time::sleep(self.settings.publish_poll) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }

    async fn attempt(&self, d: &ClaimedDelivery) -> Attempt {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", d.alert_id.to_string().as_str());
        let subject = alert_subject(&self.settings.subject_prefix, d.site_id, d.kind.as_str());
        let publish = async {
            self.js.publish_with_headers(subject, headers, d.payload.clone().into()).await?.await?;
            Ok::<_, async_nats::Error>(())
        };
        let error = match tokio::time::timeout(Duration::from_millis(ALERT_PUBLISH_TIMEOUT_MS), publish).await {
            Ok(Ok(())) => {
                metrics::counter!("ledger_nats_alerts_published_total").increment(1);
                return Attempt::Delivered { status_code: None };
            }
            Ok(Err(e)) => format!("publishing failed: {e}"),
            Err(_) => format!("no acknowledgement within {ALERT_PUBLISH_TIMEOUT_MS} ms"),
        };
        let s = &self.settings;
        match next_attempt_at(d.attempts, s.nak_delay_base, s.nak_delay_max, Utc::now(), d.give_up_at) {
            Some(next_attempt_at) => Attempt::Retry { status_code: None, error, next_attempt_at },
            None => Attempt::Failed { status_code: None, error },
        }
    }
}
