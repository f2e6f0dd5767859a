//! The backend-independent half of an append: check versions, fold the new events into
//! the credits, chain their hashes. Each backend locks and loads the streams, calls
//! [`prepare`], then writes what it returns, all inside one transaction.

use chrono::{DateTime, Utc};
use ledger_domain::{evolve, Credit, Event, EventPosition, EVENT_SCHEMA_VERSION};
use uuid::Uuid;

use crate::chain::{self, Canonical};
use crate::error::StoreError;
use crate::model::{CommandMeta, FeedCursor, NewEvent, RecordedEvent, StreamAppend};

/// The largest number of events one append may write; a bound on transaction size.
pub const EVENTS_PER_APPEND_MAX: usize = 1_000;

/// A stream as found under lock at the start of the transaction.
#[derive(Debug, Clone)]
pub(crate) struct LoadedStream {
    pub site_id: Uuid,
    pub billing_credit_id: Uuid,
    pub state: Option<Credit>,
    pub last_hash: [u8; 32],
}

/// Event ids of a command's events: derived from its id, so a retry of the same command
/// produces the same ids and the store keeps them once.
pub fn command_event_id(command_id: Uuid, site_id: Uuid, billing_credit_id: Uuid, index: usize) -> Uuid {
    let mut name = Vec::with_capacity(40);
    name.extend_from_slice(site_id.as_bytes());
    name.extend_from_slice(billing_credit_id.as_bytes());
    name.extend_from_slice(&(index as u64).to_be_bytes());
    Uuid::new_v5(&command_id, &name)
}

/// Turns a decision into appends at the versions the credits were loaded at.
pub(crate) fn decision_to_appends(
    execution_site: Uuid,
    loaded: &[Option<Credit>],
    ids: &[Uuid],
    decided: Vec<(Uuid, Vec<Event>)>,
    command_id: Option<Uuid>,
) -> Vec<StreamAppend> {
    decided
        .into_iter()
        .filter(|(_, events)| !events.is_empty())
        .map(|(credit_id, events)| {
            let expected_version =
                ids.iter().position(|id| *id == credit_id).and_then(|i| loaded[i].as_ref()).map_or(0, |c| c.version);
            let events = events
                .into_iter()
                .enumerate()
                .map(|(i, event)| NewEvent {
                    event_id: command_id
                        .map_or_else(Uuid::new_v4, |cmd| command_event_id(cmd, execution_site, credit_id, i)),
                    event,
                })
                .collect();
            StreamAppend { site_id: execution_site, billing_credit_id: credit_id, expected_version, events }
        })
        .collect()
}

/// An event ready to insert: its record (position not yet known) and stored payload text.
pub(crate) struct PreparedEvent {
    pub record: RecordedEvent,
    pub payload: String,
}

/// A projection row ready to upsert.
#[derive(Clone)]
pub(crate) struct PreparedCredit {
    pub credit: Credit,
    pub last_hash: [u8; 32],
}

/// Microsecond precision: what both databases keep, so hashes recompute exactly.
pub(crate) fn now_micros() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).expect("now is representable")
}

pub(crate) fn prepare(
    loaded: &[LoadedStream],
    appends: &[StreamAppend],
    meta: &CommandMeta,
    recorded_at: DateTime<Utc>,
) -> Result<(Vec<PreparedEvent>, Vec<PreparedCredit>), StoreError> {
    let event_count: usize = appends.iter().map(|a| a.events.len()).sum();
    if event_count > EVENTS_PER_APPEND_MAX {
        return Err(StoreError::Rejected(format!(
            "{event_count} events exceed the {EVENTS_PER_APPEND_MAX} per append"
        )));
    }
    let occurred_at = DateTime::from_timestamp_micros(meta.occurred_at.timestamp_micros()).expect("valid instant");
    let mut events = Vec::with_capacity(event_count);
    let mut credits = Vec::with_capacity(appends.len());
    for append in appends {
        let stream = loaded
            .iter()
            .find(|s| s.site_id == append.site_id && s.billing_credit_id == append.billing_credit_id)
            .expect("every appended stream was loaded");
        let actual = stream.state.as_ref().map_or(0, |c| c.version);
        if actual != append.expected_version {
            return Err(StoreError::VersionConflict {
                billing_credit_id: append.billing_credit_id,
                expected: append.expected_version,
                actual,
            });
        }
        let mut state = stream.state.clone();
        let mut last_hash = stream.last_hash;
        for new in &append.events {
            let starts_stream = state.is_none();
            if starts_stream != matches!(new.event, Event::CreditIssued(_)) {
                return Err(StoreError::Rejected(format!(
                    "{} cannot be version {} of a stream",
                    new.event.event_type(),
                    actual + 1
                )));
            }
            let version = state.as_ref().map_or(1, |c| c.version + 1);
            let position = EventPosition {
                site_id: append.site_id,
                billing_credit_id: append.billing_credit_id,
                event_id: new.event_id,
                version,
                recorded_at,
            };
            let credit = evolve(state.take(), &new.event, &position);
            credit.assert_invariants();
            let payload = serde_json::to_string(&new.event.payload()).expect("payloads serialize");
            let hash = chain::hash(
                &last_hash,
                &Canonical {
                    event_id: new.event_id,
                    site_id: append.site_id,
                    billing_credit_id: append.billing_credit_id,
                    version,
                    event_type: new.event.event_type(),
                    schema_version: EVENT_SCHEMA_VERSION,
                    payload: &payload,
                    actor: &meta.actor,
                    occurred_at,
                    recorded_at,
                },
            );
            last_hash = hash;
            events.push(PreparedEvent {
                record: RecordedEvent {
                    position: 0,
                    event_id: new.event_id,
                    site_id: append.site_id,
                    billing_credit_id: append.billing_credit_id,
                    version,
                    event: new.event.clone(),
                    schema_version: EVENT_SCHEMA_VERSION,
                    actor: meta.actor.clone(),
                    command_id: meta.command_id,
                    correlation_id: meta.correlation_id,
                    causation_id: meta.causation_id,
                    occurred_at,
                    recorded_at,
                    hash,
                    cursor: FeedCursor::START,
                },
                payload,
            });
            state = Some(credit);
        }
        if let Some(credit) = state {
            credits.push(PreparedCredit { credit, last_hash });
        }
    }
    Ok((events, credits))
}

/// Streams named twice in one append would fold against a stale state.
pub(crate) fn check_distinct_streams(appends: &[StreamAppend]) -> Result<(), StoreError> {
    let mut keys: Vec<_> = appends.iter().map(|a| (a.site_id, a.billing_credit_id)).collect();
    keys.sort_unstable();
    let before = keys.len();
    keys.dedup();
    if keys.len() != before {
        return Err(StoreError::Rejected("a stream appears twice in one append".into()));
    }
    Ok(())
}
