//! The state of one billing credit, and how each event changes it (`evolve`).
//!
//! The state is what the projection stores and what `decide` judges commands against.
//! Nothing here refuses anything: an event is a fact that already happened.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::event::Event;

/// Whether a credit counts units (visits) or money.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CreditType {
    Quantity,
    Monetary,
}

impl CreditType {
    pub fn as_str(self) -> &'static str {
        match self {
            CreditType::Quantity => "quantity",
            CreditType::Monetary => "monetary",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "quantity" => Some(CreditType::Quantity),
            "monetary" => Some(CreditType::Monetary),
            _ => None,
        }
    }
}

/// A coded value (FHIR-style): which code, from which code system, shown how.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Coding {
    pub code: Option<String>,
    pub system: Option<String>,
    pub display: Option<String>,
}

/// A free-form JSON object the ledger keeps exactly as it was sent.
pub type JsonObject = serde_json::Map<String, serde_json::Value>;

/// The descriptive attributes of a credit: everything but its amounts and status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreditDetails {
    pub credit_type: CreditType,
    /// First instant the credit may be used.
    pub start_date: DateTime<Utc>,
    /// First instant the credit may no longer be used (exclusive). None: never ends.
    pub end_date: Option<DateTime<Utc>>,
    pub wellness_plan_id: Option<Uuid>,
    pub wellness_plan_benefit_id: Option<Uuid>,
    pub wellness_plan_membership_id: Option<Uuid>,
    pub wellness_plan_membership_cycle_id: Option<Uuid>,
    pub wellness_plan_membership_status_period_id: Option<Uuid>,
    pub amount_type: Option<Coding>,
    pub credit_category: Option<Coding>,
    pub currency: Option<Coding>,
    pub measurement_unit: Option<Coding>,
    pub applied_to: Option<JsonObject>,
    pub available_to: Option<JsonObject>,
    pub expiry: Option<JsonObject>,
    pub extensions: Option<JsonObject>,
}

impl CreditDetails {
    /// A minimal set of details: the rest left empty.
    pub fn new(credit_type: CreditType, start_date: DateTime<Utc>) -> Self {
        Self {
            credit_type,
            start_date,
            end_date: None,
            wellness_plan_id: None,
            wellness_plan_benefit_id: None,
            wellness_plan_membership_id: None,
            wellness_plan_membership_cycle_id: None,
            wellness_plan_membership_status_period_id: None,
            amount_type: None,
            credit_category: None,
            currency: None,
            measurement_unit: None,
            applied_to: None,
            available_to: None,
            expiry: None,
            extensions: None,
        }
    }

    pub fn currency_code(&self) -> Option<&str> {
        self.currency.as_ref().and_then(|c| c.code.as_deref())
    }
}

/// Which balance a reversible event moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Movement {
    Use,
    Waste,
}

/// What is left to reverse of one CreditUsed or CreditWasted event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reversible {
    pub movement: Movement,
    pub amount_left: Decimal,
}

/// One billing credit as its events have made it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credit {
    pub site_id: Uuid,
    pub billing_credit_id: Uuid,
    pub details: CreditDetails,
    pub total_amount: Decimal,
    pub used_amount: Decimal,
    pub wasted_amount: Decimal,
    pub is_active: bool,
    /// Set once by CreditExpired: the unused balance was written off.
    pub expired: bool,
    /// Set by CreditDeleted: gone from reads, history kept.
    pub deleted: bool,
    /// The number of events in the stream; the ETag of the credit.
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Uses and wastes that can still be reversed, by event id, with what is left of each.
    /// Kept while folding, never stored with the credit: it grows with every use, and a
    /// stored credit is read and written whole by every command. A store restores the
    /// one entry a reversal needs from the events ([`Credit::restore_reversible`]).
    #[serde(skip)]
    pub reversible: BTreeMap<Uuid, Reversible>,
}

impl Credit {
    /// total − used − wasted: derived, never stored as truth.
    pub fn remaining_amount(&self) -> Decimal {
        self.total_amount - self.used_amount - self.wasted_amount
    }

    /// Whether a use at `at` falls inside [startDate, endDate).
    pub fn in_window(&self, at: DateTime<Utc>) -> bool {
        at >= self.details.start_date && self.details.end_date.is_none_or(|end| at < end)
    }

    /// Whether the credit can be spent at `at`: active, not expired, not deleted, inside
    /// its window. Consume pays only from such credits and a balance counts only them.
    pub fn spendable_at(&self, at: DateTime<Utc>) -> bool {
        !self.deleted && self.is_active && !self.expired && self.in_window(at)
    }

    /// The code of what the credit counts in: its currency (monetary) or its measurement
    /// unit (quantity).
    pub fn unit_code(&self) -> Option<&str> {
        let coding = match self.details.credit_type {
            CreditType::Monetary => self.details.currency.as_ref(),
            CreditType::Quantity => self.details.measurement_unit.as_ref(),
        };
        coding.and_then(|c| c.code.as_deref())
    }

    /// The invariants every state must hold, whatever events built it.
    pub fn assert_invariants(&self) {
        assert!(!self.used_amount.is_sign_negative() || self.used_amount.is_zero(), "used < 0: {self:?}");
        assert!(!self.wasted_amount.is_sign_negative() || self.wasted_amount.is_zero(), "wasted < 0: {self:?}");
        assert!(self.used_amount + self.wasted_amount <= self.total_amount, "used + wasted > total: {self:?}");
        assert!(self.version >= 1, "a credit exists only after its first event");
    }
}

/// Where an event sits in its stream, as the store recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPosition {
    pub site_id: Uuid,
    pub billing_credit_id: Uuid,
    pub event_id: Uuid,
    pub version: u64,
    pub recorded_at: DateTime<Utc>,
}

/// Applies one recorded event to the state before it. `None` is the empty stream.
///
/// Panics if the event cannot follow the state (anything but CreditIssued on an empty
/// stream): the store only records what `decide` produced, so this is a corrupt stream.
pub fn evolve(state: Option<Credit>, event: &Event, at: &EventPosition) -> Credit {
    let mut credit = match (state, event) {
        (None, Event::CreditIssued(issued)) => Credit {
            site_id: at.site_id,
            billing_credit_id: at.billing_credit_id,
            details: issued.details.clone(),
            total_amount: issued.total_amount,
            used_amount: issued.used_amount,
            wasted_amount: issued.wasted_amount,
            is_active: issued.is_active,
            expired: false,
            deleted: false,
            version: 0,
            created_at: at.recorded_at,
            updated_at: at.recorded_at,
            reversible: BTreeMap::new(),
        },
        (None, other) => panic!("stream starts with {} instead of CreditIssued", other.event_type()),
        (Some(_), Event::CreditIssued(_)) => panic!("CreditIssued on an existing stream"),
        (Some(mut credit), event) => {
            apply_change(&mut credit, event);
            track_reversible(&mut credit.reversible, event, at.event_id);
            credit
        }
    };
    credit.version = at.version;
    credit.updated_at = at.recorded_at;
    credit
}

fn apply_change(credit: &mut Credit, event: &Event) {
    match event {
        Event::CreditIssued(_) => unreachable!("handled by evolve"),
        Event::CreditUsed(used) => credit.used_amount += used.amount,
        Event::CreditUseReversed(reversed) => credit.used_amount -= reversed.amount,
        Event::CreditWasted(wasted) => credit.wasted_amount += wasted.amount,
        Event::CreditWasteReversed(reversed) => credit.wasted_amount -= reversed.amount,
        Event::CreditExpired(expired) => {
            credit.wasted_amount += expired.amount;
            credit.expired = true;
        }
        Event::CreditTotalAdjusted(adjusted) => credit.total_amount += adjusted.delta,
        Event::CreditDetailsChanged(changed) => credit.details = changed.details.clone(),
        Event::CreditActivated(_) => credit.is_active = true,
        Event::CreditDeactivated(_) => credit.is_active = false,
        Event::CreditDeleted(_) => credit.deleted = true,
    }
}

/// What `event` (stored as `event_id`) does to the reversible movements.
fn track_reversible(reversible: &mut BTreeMap<Uuid, Reversible>, event: &Event, event_id: Uuid) {
    let (reverses, amount) = match event {
        Event::CreditUsed(used) => {
            reversible.insert(event_id, Reversible { movement: Movement::Use, amount_left: used.amount });
            return;
        }
        Event::CreditWasted(wasted) => {
            reversible.insert(event_id, Reversible { movement: Movement::Waste, amount_left: wasted.amount });
            return;
        }
        Event::CreditUseReversed(reversed) | Event::CreditWasteReversed(reversed) => {
            (reversed.reverses, reversed.amount)
        }
        _ => return,
    };
    let Some(target) = reverses else { return };
    if let Some(entry) = reversible.get_mut(&target) {
        entry.amount_left -= amount;
        if entry.amount_left.is_zero() {
            reversible.remove(&target);
        }
    }
}

/// Equal as stored: in everything but the reversible movements, which are bookkeeping
/// for deciding a reversal, not stored (a folded credit equals its stored row).
impl PartialEq for Credit {
    fn eq(&self, other: &Credit) -> bool {
        // Destructured so that a new field is compared, or left out, on purpose.
        let Credit {
            site_id,
            billing_credit_id,
            details,
            total_amount,
            used_amount,
            wasted_amount,
            is_active,
            expired,
            deleted,
            version,
            created_at,
            updated_at,
            reversible: _,
        } = self;
        (site_id, billing_credit_id, details, total_amount, used_amount, wasted_amount)
            == (
                &other.site_id,
                &other.billing_credit_id,
                &other.details,
                &other.total_amount,
                &other.used_amount,
                &other.wasted_amount,
            )
            && (is_active, expired, deleted, version, created_at, updated_at)
                == (
                    &other.is_active,
                    &other.expired,
                    &other.deleted,
                    &other.version,
                    &other.created_at,
                    &other.updated_at,
                )
    }
}

impl Credit {
    /// Restores what is left to reverse of the event `target` from the credit's events
    /// (at least `target` itself and every reversal, in stream order; others are
    /// ignored), as folding them would have left it.
    pub fn restore_reversible<'a>(&mut self, target: Uuid, history: impl IntoIterator<Item = (Uuid, &'a Event)>) {
        let mut reversible = BTreeMap::new();
        for (event_id, event) in history {
            track_reversible(&mut reversible, event, event_id);
        }
        match reversible.remove(&target) {
            Some(entry) => self.reversible.insert(target, entry),
            None => self.reversible.remove(&target),
        };
    }
}
