//! What callers ask of a credit. A command may be refused; an event may not.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::credit::{Coding, CreditDetails, CreditType, JsonObject};
use crate::event::StatusChange;

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Create the credit (POST).
    Issue(CreditDraft),
    /// Spend part of the balance.
    Use {
        amount: Decimal,
        reference: Option<String>,
        note: Option<String>,
    },
    /// Write part of the balance off.
    Waste {
        amount: Decimal,
        reason: Option<String>,
    },
    /// Write off everything that remains; once per credit.
    Expire {
        reason: Option<String>,
    },
    /// Undo a use or a waste, in full (amount None) or in part.
    Reverse {
        event_id: Uuid,
        amount: Option<Decimal>,
        reason: Option<String>,
    },
    /// Grow or shrink the total.
    AdjustTotal {
        delta: Decimal,
        reason: Option<String>,
    },
    Activate(StatusChange),
    Deactivate(StatusChange),
    /// Tombstone: gone from reads, history kept.
    Delete(StatusChange),
    /// Change only the named attributes (PATCH).
    Patch(CreditPatch),
    /// Replace every attribute (PUT).
    Replace(CreditDraft),
}

/// A whole credit as a caller describes it (create and PUT bodies).
#[derive(Debug, Clone, PartialEq)]
pub struct CreditDraft {
    pub details: CreditDetails,
    pub is_active: bool,
    pub total_amount: Decimal,
    pub used_amount: Decimal,
    pub wasted_amount: Decimal,
    /// What the caller believes remains; refused when it disagrees with the others.
    pub remaining_amount: Option<Decimal>,
}

/// Some attributes of a credit (PATCH). `None`: leave as is. `Some(None)`: clear.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CreditPatch {
    pub credit_type: Option<CreditType>,
    pub start_date: Option<DateTime<Utc>>,
    pub end_date: Option<Option<DateTime<Utc>>>,
    pub wellness_plan_id: Option<Option<Uuid>>,
    pub wellness_plan_benefit_id: Option<Option<Uuid>>,
    pub wellness_plan_membership_id: Option<Option<Uuid>>,
    pub wellness_plan_membership_cycle_id: Option<Option<Uuid>>,
    pub wellness_plan_membership_status_period_id: Option<Option<Uuid>>,
    pub amount_type: Option<Option<Coding>>,
    pub credit_category: Option<Option<Coding>>,
    pub currency: Option<Option<Coding>>,
    pub measurement_unit: Option<Option<Coding>>,
    pub applied_to: Option<Option<JsonObject>>,
    pub available_to: Option<Option<JsonObject>>,
    pub expiry: Option<Option<JsonObject>>,
    pub extensions: Option<Option<JsonObject>>,
    pub is_active: Option<bool>,
    pub total_amount: Option<Decimal>,
    pub used_amount: Option<Decimal>,
    pub wasted_amount: Option<Decimal>,
    pub remaining_amount: Option<Decimal>,
}

impl CreditPatch {
    /// The whole credit this patch asks for, given the credit as it is.
    pub fn apply_to(&self, current: &crate::credit::Credit) -> CreditDraft {
        fn pick<T: Clone>(patch: &Option<T>, current: &T) -> T {
            patch.clone().unwrap_or_else(|| current.clone())
        }
        let d = &current.details;
        CreditDraft {
            details: CreditDetails {
                credit_type: pick(&self.credit_type, &d.credit_type),
                start_date: pick(&self.start_date, &d.start_date),
                end_date: pick(&self.end_date, &d.end_date),
                wellness_plan_id: pick(&self.wellness_plan_id, &d.wellness_plan_id),
                wellness_plan_benefit_id: pick(&self.wellness_plan_benefit_id, &d.wellness_plan_benefit_id),
                wellness_plan_membership_id: pick(&self.wellness_plan_membership_id, &d.wellness_plan_membership_id),
                wellness_plan_membership_cycle_id: pick(
                    &self.wellness_plan_membership_cycle_id,
                    &d.wellness_plan_membership_cycle_id,
                ),
                wellness_plan_membership_status_period_id: pick(
                    &self.wellness_plan_membership_status_period_id,
                    &d.wellness_plan_membership_status_period_id,
                ),
                amount_type: pick(&self.amount_type, &d.amount_type),
                credit_category: pick(&self.credit_category, &d.credit_category),
                currency: pick(&self.currency, &d.currency),
                measurement_unit: pick(&self.measurement_unit, &d.measurement_unit),
                applied_to: pick(&self.applied_to, &d.applied_to),
                available_to: pick(&self.available_to, &d.available_to),
                expiry: pick(&self.expiry, &d.expiry),
                extensions: pick(&self.extensions, &d.extensions),
            },
            is_active: self.is_active.unwrap_or(current.is_active),
            total_amount: self.total_amount.unwrap_or(current.total_amount),
            used_amount: self.used_amount.unwrap_or(current.used_amount),
            wasted_amount: self.wasted_amount.unwrap_or(current.wasted_amount),
            remaining_amount: self.remaining_amount,
        }
    }
}
