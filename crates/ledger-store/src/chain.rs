//! The hash chain: each event's hash covers the previous event's hash in its stream and
//! the event's canonical bytes, so changing or removing any stored event shows.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The "previous hash" of a stream's first event.
pub const GENESIS: [u8; 32] = [0; 32];

/// The fields of an event that the hash covers, in a fixed order.
pub struct Canonical<'a> {
    pub event_id: Uuid,
    pub site_id: Uuid,
    pub billing_credit_id: Uuid,
    pub version: u64,
    pub event_type: &'a str,
    pub schema_version: u16,
    /// The payload exactly as stored.
    pub payload: &'a str,
    pub actor: &'a str,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
}

pub fn hash(previous: &[u8; 32], event: &Canonical<'_>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(previous);
    h.update(event.event_id.as_bytes());
    h.update(event.site_id.as_bytes());
    h.update(event.billing_credit_id.as_bytes());
    h.update(event.version.to_be_bytes());
    for text in [event.event_type, event.payload, event.actor] {
        // Length-prefixed, so no two different field splits hash alike.
        h.update((text.len() as u64).to_be_bytes());
        h.update(text.as_bytes());
    }
    h.update(event.schema_version.to_be_bytes());
    h.update(event.occurred_at.timestamp_micros().to_be_bytes());
    h.update(event.recorded_at.timestamp_micros().to_be_bytes());
    h.finalize().into()
}

/// Recomputes a stored event's hash from what was read back: `verify` compares it with
/// the stored one. The payload is re-serialized from the parsed event, so any change to
/// its meaning changes the hash.
pub fn recompute(previous: &[u8; 32], e: &crate::RecordedEvent) -> [u8; 32] {
    let payload = serde_json::to_string(&e.event.payload()).expect("payloads serialize");
    hash(
        previous,
        &Canonical {
            event_id: e.event_id,
            site_id: e.site_id,
            billing_credit_id: e.billing_credit_id,
            version: e.version,
            event_type: e.event.event_type(),
            schema_version: e.schema_version,
            payload: &payload,
            actor: &e.actor,
            occurred_at: e.occurred_at,
            recorded_at: e.recorded_at,
        },
    )
}
