//! One publisher at a time across replicas: a lease held in a JetStream KV key.
//!
//! The value names the holder. It is taken with `create` (the key is absent or deleted),
//! or by compare-and-set on the revision once that revision has stayed unchanged for a
//! whole TTL *as measured by the contender's own monotonic clock* (so wall-clock skew
//! between machines does not matter). The holder renews it (CAS on its revision) every
//! TTL/3 and counts it valid until TTL after it *sent* its last successful write: that
//! instant precedes any contender's first sight of the revision, so the holder's
//! validity ends before any contender may take over. A graceful stop deletes the key
//! (CAS), so the next holder need not wait.

use std::time::Duration;

use async_nats::jetstream::kv::{Operation, Store};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LeaseValue {
    holder: String,
    ttl_ms: u64,
    renewed_at: String,
}

pub(crate) struct Lease {
    kv: Store,
    key: String,
    holder: String,
    ttl: Duration,
    /// While held: the revision we last wrote, when we sent that write.
    held: Option<(u64, Instant)>,
    /// While contending: the holder's revision and when we first saw it.
    observed: Option<(u64, Instant)>,
}

impl Lease {
    pub(crate) fn new(kv: Store, key: String, holder: String, ttl: Duration) -> Self {
        Lease { kv, key, holder, ttl, held: None, observed: None }
    }

    fn value(&self) -> Vec<u8> {
        let value = LeaseValue {
            holder: self.holder.clone(),
            ttl_ms: self.ttl.as_millis() as u64,
            renewed_at: crate::wire::format_timestamp(&chrono::Utc::now()),
        };
        serde_json::to_vec(&value).expect("lease serializes")
    }

    /// Whether we hold it and may still act on it.
    pub(crate) fn is_valid(&self) -> bool {
        self.held.is_some_and(|(_, sent)| sent.elapsed() < self.ttl)
    }

    pub(crate) fn renew_due(&self) -> bool {
        self.held.is_some_and(|(_, sent)| sent.elapsed() >= self.ttl / 3)
    }

    /// Tries once to take the lease. True when held.
    pub(crate) async fn try_acquire(&mut self) -> Result<bool, async_nats::Error> {
        if self.is_valid() {
            return Ok(true);
        }
        self.held = None;
        let sent = Instant::now();
        let entry = self.kv.entry(self.key.clone()).await?;
        let revision = match entry {
            None => match self.kv.create(&self.key, self.value().into()).await {
                Ok(revision) => revision,
                // Another replica created it first.
                Err(e) if e.kind() == async_nats::jetstream::kv::CreateErrorKind::AlreadyExists => return Ok(false),
                Err(e) => return Err(e.into()),
            },
            Some(entry) if entry.operation != Operation::Put => {
                match self.kv.update(&self.key, self.value().into(), entry.revision).await {
                    Ok(revision) => revision,
                    Err(e) => return Ok(self.not_taken(entry.revision, &e)),
                }
            }
            Some(entry) => {
                let holder = serde_json::from_slice::<LeaseValue>(&entry.value).map(|v| v.holder).unwrap_or_default();
                let stale = match self.observed {
                    Some((revision, since)) if revision == entry.revision => since.elapsed() >= self.ttl,
                    _ => {
                        self.observed = Some((entry.revision, Instant::now()));
                        false
                    }
                };
                if !stale && holder != self.holder {
                    return Ok(false);
                }
                match self.kv.update(&self.key, self.value().into(), entry.revision).await {
                    Ok(revision) => revision,
                    Err(e) => return Ok(self.not_taken(entry.revision, &e)),
                }
            }
        };
        self.held = Some((revision, sent));
        self.observed = None;
        tracing::info!(holder = %self.holder, key = %self.key, "publisher lease taken");
        Ok(true)
    }

    /// A write that would have taken the lease failed: another replica wrote first, or
    /// the bucket did not answer. Said, since a publisher that cannot take the lease
    /// publishes nothing, and the two look alike from outside.
    fn not_taken(&self, revision: u64, error: &dyn std::fmt::Display) -> bool {
        tracing::warn!(holder = %self.holder, revision, %error, "taking the publisher lease failed");
        false
    }

    /// Extends the lease. Ok(false): it was lost to another replica.
    pub(crate) async fn renew(&mut self) -> Result<bool, async_nats::Error> {
        let Some((revision, _)) = self.held else { return Ok(false) };
        let sent = Instant::now();
        match self.kv.update(&self.key, self.value().into(), revision).await {
            Ok(next) => {
                self.held = Some((next, sent));
                Ok(true)
            }
            Err(e) => {
                // Lost (someone else wrote) or merely unreachable?
                match self.kv.entry(self.key.clone()).await {
                    Ok(Some(entry)) if entry.revision == revision && entry.operation == Operation::Put => Err(e.into()),
                    Ok(_) => {
                        tracing::warn!(holder = %self.holder, "publisher lease lost");
                        self.held = None;
                        Ok(false)
                    }
                    Err(_) => Err(e.into()),
                }
            }
        }
    }

    /// Gives the lease up (graceful stop), so another replica takes over at once.
    pub(crate) async fn release(&mut self) {
        if let Some((revision, _)) = self.held.take() {
            if let Err(e) = self.kv.delete_expect_revision(&self.key, Some(revision)).await {
                tracing::warn!(error = %e, "releasing the publisher lease failed; it expires on its own");
            }
        }
    }
}
