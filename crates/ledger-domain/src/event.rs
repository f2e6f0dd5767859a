//! The facts of the ledger. Each event is stored as (type, schema version, payload) and
//! read back through [`upcast`], so old payloads keep meaning what they meant.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::credit::CreditDetails;

/// The schema version written with every new event. Raise it, and teach [`upcast`] the
/// old shape, whenever a payload changes in a way old readers would misread.
pub const EVENT_SCHEMA_VERSION: u16 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Event {
    CreditIssued(CreditIssued),
    CreditUsed(CreditUsed),
    CreditUseReversed(Reversal),
    CreditWasted(CreditWasted),
    CreditWasteReversed(Reversal),
    CreditExpired(CreditExpired),
    CreditTotalAdjusted(CreditTotalAdjusted),
    CreditDetailsChanged(CreditDetailsChanged),
    CreditActivated(StatusChange),
    CreditDeactivated(StatusChange),
    CreditDeleted(StatusChange),
}

/// A credit comes into being, with its opening balances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreditIssued {
    pub details: CreditDetails,
    pub total_amount: Decimal,
    pub used_amount: Decimal,
    pub wasted_amount: Decimal,
    pub is_active: bool,
}

/// Part of the balance was spent on something (a visit, an invoice, a benefit redemption).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreditUsed {
    pub amount: Decimal,
    pub reference: Option<String>,
    pub note: Option<String>,
}

/// Part of the balance was written off (a missed appointment, a cancelled cycle).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreditWasted {
    pub amount: Decimal,
    pub reason: Option<String>,
}

/// A use or a waste undone, in full or in part. `reverses` names the event undone;
/// None is a correction of the balance itself (PATCH/PUT lowering usedAmount).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Reversal {
    pub amount: Decimal,
    pub reverses: Option<Uuid>,
    pub reason: Option<String>,
}

/// The credit's end: whatever remained is wasted. Happens at most once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreditExpired {
    pub amount: Decimal,
    pub reason: Option<String>,
}

/// The total grew or shrank by `delta`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreditTotalAdjusted {
    pub delta: Decimal,
    pub reason: Option<String>,
}

/// The descriptive attributes were replaced by these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreditDetailsChanged {
    pub details: CreditDetails,
}

/// Activation, deactivation, deletion: a status flip with an optional reason.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatusChange {
    pub reason: Option<String>,
}

impl Event {
    /// The stored type name, also the last token of the NATS subject.
    pub fn event_type(&self) -> &'static str {
        match self {
            Event::CreditIssued(_) => "CreditIssued",
            Event::CreditUsed(_) => "CreditUsed",
            Event::CreditUseReversed(_) => "CreditUseReversed",
            Event::CreditWasted(_) => "CreditWasted",
            Event::CreditWasteReversed(_) => "CreditWasteReversed",
            Event::CreditExpired(_) => "CreditExpired",
            Event::CreditTotalAdjusted(_) => "CreditTotalAdjusted",
            Event::CreditDetailsChanged(_) => "CreditDetailsChanged",
            Event::CreditActivated(_) => "CreditActivated",
            Event::CreditDeactivated(_) => "CreditDeactivated",
            Event::CreditDeleted(_) => "CreditDeleted",
        }
    }

    /// The payload as stored: the event's fields without its type name.
    pub fn payload(&self) -> serde_json::Value {
        let tagged = serde_json::to_value(self).expect("events always serialize");
        match tagged {
            serde_json::Value::Object(mut map) => {
                map.remove(self.event_type()).expect("externally tagged by type name")
            }
            other => unreachable!("events serialize as {{type: payload}}, got {other}"),
        }
    }
}

/// Why a stored event could not be read.
#[derive(Debug, thiserror::Error)]
pub enum UpcastError {
    #[error(
        "event schema version {found} of {event_type} is newer than this build understands ({EVENT_SCHEMA_VERSION})"
    )]
    FromTheFuture { event_type: String, found: u16 },
    #[error("stored {event_type} v{schema_version} does not match its schema: {source}")]
    Malformed { event_type: String, schema_version: u16, source: serde_json::Error },
}

/// Reads a stored event from its payload text: one parse, no intermediate JSON tree
/// (replay reads millions). Older schema versions go through [`upcast`].
pub fn read_stored(event_type: &str, schema_version: u16, payload: &str) -> Result<Event, UpcastError> {
    if schema_version != EVENT_SCHEMA_VERSION {
        let value = serde_json::from_str(payload).map_err(|source| UpcastError::Malformed {
            event_type: event_type.to_string(),
            schema_version,
            source,
        })?;
        return upcast(event_type, schema_version, value);
    }
    let tagged = format!("{{{}:{payload}}}", serde_json::Value::String(event_type.to_string()));
    serde_json::from_str(&tagged).map_err(|source| UpcastError::Malformed {
        event_type: event_type.to_string(),
        schema_version,
        source,
    })
}

/// Reads a stored event, bringing payloads of older schema versions up to the current one.
///
/// Every schema change adds an arm here that rewrites the old payload, so events are
/// never migrated in place (they are immutable) and every reader sees one shape.
pub fn upcast(event_type: &str, schema_version: u16, payload: serde_json::Value) -> Result<Event, UpcastError> {
    if schema_version > EVENT_SCHEMA_VERSION {
        return Err(UpcastError::FromTheFuture { event_type: event_type.to_string(), found: schema_version });
    }
    // Version 1 is the first schema: nothing older exists yet.
    let mut tagged = serde_json::Map::with_capacity(1);
    tagged.insert(event_type.to_string(), payload);
    serde_json::from_value(serde_json::Value::Object(tagged)).map_err(|source| UpcastError::Malformed {
        event_type: event_type.to_string(),
        schema_version,
        source,
    })
}
