//! The member balance read model.

use ledger_domain::{BalanceLine, CreditType};
use rust_decimal::Decimal;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::wire;

/// What one member has left, per (creditType, unit).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberBalance {
    pub wellness_plan_membership_id: Uuid,
    /// The instant the balance is of: `asOf`, or when it was read.
    #[schema(example = "2025-01-01T00:00:00.000Z")]
    pub as_of: String,
    /// The window `expiringAmount` looks ahead, in days.
    pub expiring_within_days: u32,
    pub data: Vec<BalanceLineDto>,
}

/// The spendable credits (active, not expired, not deleted, inside their window) of one
/// creditType and unit, summed.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BalanceLineDto {
    #[schema(value_type = String, example = "quantity")]
    pub credit_type: CreditType,
    /// The measurementUnit code (quantity) or currency code (monetary); null for credits
    /// that name none.
    #[schema(example = "visit")]
    pub unit: Option<String>,
    #[serde(serialize_with = "wire::serialize_amount")]
    #[schema(value_type = f64, example = 5)]
    pub total_amount: Decimal,
    #[serde(serialize_with = "wire::serialize_amount")]
    #[schema(value_type = f64, example = 2)]
    pub used_amount: Decimal,
    #[serde(serialize_with = "wire::serialize_amount")]
    #[schema(value_type = f64, example = 0)]
    pub wasted_amount: Decimal,
    #[serde(serialize_with = "wire::serialize_amount")]
    #[schema(value_type = f64, example = 3)]
    pub remaining_amount: Decimal,
    /// How many credits the line sums.
    pub credit_count: u32,
    /// The remaining amount of the credits whose endDate falls within expiringWithinDays.
    #[serde(serialize_with = "wire::serialize_amount")]
    #[schema(value_type = f64, example = 1)]
    pub expiring_amount: Decimal,
    /// The soonest endDate of a credit of the line with something remaining.
    #[schema(example = "2025-06-01T00:00:00Z")]
    pub next_expiry: Option<String>,
}

impl From<&BalanceLine> for BalanceLineDto {
    fn from(line: &BalanceLine) -> Self {
        BalanceLineDto {
            credit_type: line.credit_type,
            unit: line.unit_code.clone(),
            total_amount: line.total_amount,
            used_amount: line.used_amount,
            wasted_amount: line.wasted_amount,
            remaining_amount: line.remaining_amount,
            credit_count: line.credit_count,
            expiring_amount: line.expiring_amount,
            next_expiry: line.next_expiry.as_ref().map(wire::format_date),
        }
    }
}

/// One movement of a member's balance.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntryDto {
    pub event_id: Uuid,
    /// issued, used, wasted, expired, reversed or adjusted.
    #[serde(rename = "type")]
    #[schema(example = "used")]
    pub entry_type: &'static str,
    pub billing_credit_id: Uuid,
    /// Signed: positive adds to the credit's remaining balance, negative takes from it.
    #[serde(serialize_with = "wire::serialize_amount")]
    #[schema(value_type = f64, example = -1)]
    pub amount: Decimal,
    /// The credit's remaining balance once this entry was applied.
    #[serde(serialize_with = "wire::serialize_amount")]
    #[schema(value_type = f64, example = 4)]
    pub remaining_after: Decimal,
    pub reference: Option<String>,
    pub reason: Option<String>,
    pub note: Option<String>,
    pub actor: String,
    #[schema(example = "2025-01-01T00:00:00.000Z")]
    pub recorded_at: String,
    #[schema(example = "2025-01-01T00:00:00.000Z")]
    pub occurred_at: String,
}

impl From<&ledger_store::statement::Entry> for EntryDto {
    fn from(e: &ledger_store::statement::Entry) -> Self {
        EntryDto {
            event_id: e.event_id,
            entry_type: e.entry_type.as_str(),
            billing_credit_id: e.billing_credit_id,
            amount: e.amount,
            remaining_after: e.remaining_after,
            reference: e.reference.clone(),
            reason: e.reason.clone(),
            note: e.note.clone(),
            actor: e.actor.clone(),
            recorded_at: wire::format_timestamp(&e.recorded_at),
            occurred_at: wire::format_timestamp(&e.occurred_at),
        }
    }
}

/// Where the next page starts.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntryPageMeta {
    /// Pass as `cursor` for the next (older) page; null on the last page.
    pub next_cursor: Option<String>,
    pub has_more: bool,
}

/// A page of a member's statement, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EntryPageDto {
    pub data: Vec<EntryDto>,
    pub meta: EntryPageMeta,
}
