//! Replies of the ledger operations (use, waste, expire, reverse, consume; their bodies
//! are `ledger-wire`'s, shared with NATS) and of the audit reads (a credit's events, the site feed).

use ledger_domain::{Allocation, Event};
use ledger_store::RecordedEvent;
use rust_decimal::Decimal;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{BillingCredit, PageMeta};
use crate::wire;

pub use ledger_wire::{CodeOrCoding, ConsumeBody, ExpireBody, ReverseBody, UseBody, WasteBody};

/// One event of the ledger, as auditors read it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LedgerEvent {
    pub event_id: Uuid,
    #[serde(rename = "type")]
    #[schema(example = "CreditUsed")]
    pub event_type: String,
    pub site_id: Uuid,
    pub billing_credit_id: Uuid,
    pub version: u64,
    /// Amount moved (uses, wastes, reversals, expiry) or issued (the total).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "wire::serialize_optional_amount")]
    #[schema(value_type = Option<f64>)]
    pub amount: Option<Decimal>,
    /// At issue (CreditIssued): the part of the total already used.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "wire::serialize_optional_amount")]
    #[schema(value_type = Option<f64>)]
    pub used_amount: Option<Decimal>,
    /// At issue (CreditIssued): the part of the total already written off.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "wire::serialize_optional_amount")]
    #[schema(value_type = Option<f64>)]
    pub wasted_amount: Option<Decimal>,
    /// Change of the total (CreditTotalAdjusted).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "wire::serialize_optional_amount")]
    #[schema(value_type = Option<f64>)]
    pub delta: Option<Decimal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The event a reversal undoes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reverses: Option<Uuid>,
    /// Who caused it (the token's `sub`).
    pub actor: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_id: Option<Uuid>,
    #[schema(example = "2025-01-01T00:00:00.000Z")]
    pub recorded_at: String,
    #[schema(example = "2025-01-01T00:00:00.000Z")]
    pub occurred_at: String,
    /// SHA-256 chaining this event to the previous one of its credit (hex).
    pub hash: String,
    /// Where a feed reader resumes after this event.
    pub cursor: String,
}

impl From<&RecordedEvent> for LedgerEvent {
    fn from(e: &RecordedEvent) -> Self {
        let (mut amount, mut delta, mut reference, mut reason, mut note, mut reverses) =
            (None, None, None, None, None, None);
        let (mut used_amount, mut wasted_amount) = (None, None);
        match &e.event {
            Event::CreditIssued(x) => {
                (amount, used_amount, wasted_amount) =
                    (Some(x.total_amount), Some(x.used_amount), Some(x.wasted_amount))
            }
            Event::CreditUsed(x) => (amount, reference, note) = (Some(x.amount), x.reference.clone(), x.note.clone()),
            Event::CreditUseReversed(x) | Event::CreditWasteReversed(x) => {
                (amount, reverses, reason) = (Some(x.amount), x.reverses, x.reason.clone())
            }
            Event::CreditWasted(x) => (amount, reason) = (Some(x.amount), x.reason.clone()),
            Event::CreditExpired(x) => (amount, reason) = (Some(x.amount), x.reason.clone()),
            Event::CreditTotalAdjusted(x) => (delta, reason) = (Some(x.delta), x.reason.clone()),
            Event::CreditDetailsChanged(_) => {}
            Event::CreditActivated(x) | Event::CreditDeactivated(x) | Event::CreditDeleted(x) => {
                reason = x.reason.clone()
            }
        }
        LedgerEvent {
            event_id: e.event_id,
            event_type: e.event.event_type().to_string(),
            site_id: e.site_id,
            billing_credit_id: e.billing_credit_id,
            version: e.version,
            amount,
            used_amount,
            wasted_amount,
            delta,
            reference,
            reason,
            note,
            reverses,
            actor: e.actor.clone(),
            command_id: e.command_id,
            recorded_at: wire::format_timestamp(&e.recorded_at),
            occurred_at: wire::format_timestamp(&e.occurred_at),
            hash: hex::encode(e.hash),
            cursor: e.cursor.encode(),
        }
    }
}

/// A ledger operation's result: the credit as it now stands and the events written.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperationResult {
    pub billing_credit: BillingCredit,
    pub events: Vec<LedgerEvent>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AllocationDto {
    pub billing_credit_id: Uuid,
    #[serde(serialize_with = "wire::serialize_amount")]
    #[schema(value_type = f64)]
    pub amount: Decimal,
}

impl From<&Allocation> for AllocationDto {
    fn from(a: &Allocation) -> Self {
        AllocationDto { billing_credit_id: a.billing_credit_id, amount: a.amount }
    }
}

/// What a consume spent, credit by credit.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsumeResult {
    #[serde(serialize_with = "wire::serialize_amount")]
    #[schema(value_type = f64)]
    pub requested_amount: Decimal,
    #[serde(serialize_with = "wire::serialize_amount")]
    #[schema(value_type = f64)]
    pub allocated_amount: Decimal,
    pub allocations: Vec<AllocationDto>,
    pub events: Vec<LedgerEvent>,
}

/// A page of one credit's history, oldest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventPage {
    pub data: Vec<LedgerEvent>,
    pub meta: PageMeta,
}

/// A slice of the site feed and the cursor to resume after it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FeedSlice {
    pub data: Vec<LedgerEvent>,
    /// Pass as `after` to read on; unchanged when nothing new has committed.
    pub next: String,
}

/// The first event (or the projection row) of a credit that does not match its recomputation.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MismatchDto {
    /// The event that does not match; null when the events are intact and the projection row differs.
    #[schema(required = true)]
    pub event_id: Option<Uuid>,
    /// That event's version in the credit's stream; null with `eventId`.
    #[schema(required = true)]
    pub version: Option<u64>,
    /// What does not match, in words.
    pub finding: String,
}

/// The server's recomputation of one credit's hash chain and projection.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreditVerificationDto {
    pub billing_credit_id: Uuid,
    /// True when every event matches its hash and the projection equals the replay of the events.
    pub ok: bool,
    /// Events checked, up to and including the first that does not match.
    pub events_checked: u64,
    /// The first thing that does not match; null when `ok`.
    #[schema(required = true)]
    pub first_mismatch: Option<MismatchDto>,
}

impl CreditVerificationDto {
    pub fn new(billing_credit_id: Uuid, v: &ledger_store::audit_credit::CreditVerification) -> Self {
        Self {
            billing_credit_id,
            ok: v.ok(),
            events_checked: v.events,
            first_mismatch: v.first_mismatch.as_ref().map(|m| MismatchDto {
                event_id: m.event_id,
                version: m.version,
                finding: m.finding.clone(),
            }),
        }
    }
}
