//! Why a command was refused. Each refusal names the rule it broke and, where one
//! field is to blame, that field (by its API name), so clients can point at it.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

/// The broad class of a refusal, which the API maps to a status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RefusalKind {
    /// The credit does not exist (or was deleted).
    NotFound,
    /// The command clashes with what already happened (duplicate id, second expiry).
    Conflict,
    /// The command is well-formed but breaks a business rule.
    Unprocessable,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DomainError {
    #[error("billing credit not found")]
    NotFound,
    #[error("a billing credit with this id already exists")]
    AlreadyExists,
    #[error("{field} must not be negative")]
    NegativeAmount { field: &'static str },
    #[error("{field} must be greater than zero")]
    AmountNotPositive { field: &'static str },
    #[error("{field} must not exceed {max}")]
    AmountTooLarge { field: &'static str, max: Decimal },
    #[error("{field} must be a whole number of units for a quantity credit")]
    NotWholeUnits { field: &'static str },
    #[error("{field} has more than {max_decimal_places} decimal places, finer than the currency's minor unit")]
    TooPrecise { field: &'static str, max_decimal_places: u32 },
    #[error("a monetary credit needs a currency with an ISO 4217 code")]
    CurrencyRequired,
    #[error("currency code {code:?} is not a supported ISO 4217 code")]
    UnknownCurrency { code: String },
    #[error("usedAmount + wastedAmount ({committed}) must not exceed totalAmount ({total})")]
    OverCommitted { committed: Decimal, total: Decimal },
    #[error("remainingAmount {given} disagrees with totalAmount - usedAmount - wastedAmount = {expected}")]
    RemainingMismatch { given: Decimal, expected: Decimal },
    #[error("endDate must not be before startDate")]
    EndBeforeStart,
    #[error("the credit is not active")]
    Inactive,
    #[error("the credit cannot be used before its startDate {start_date}")]
    NotStarted { start_date: DateTime<Utc> },
    #[error("the credit cannot be used at or after its endDate {end_date}")]
    Ended { end_date: DateTime<Utc> },
    #[error("the credit has expired")]
    Expired,
    #[error("{requested} requested but only {remaining} remains")]
    InsufficientBalance { requested: Decimal, remaining: Decimal },
    #[error("the credit has already expired")]
    AlreadyExpired,
    #[error("event {event_id} is not a use or waste of this credit with anything left to reverse")]
    NotReversible { event_id: Uuid },
    #[error("reversing {requested} exceeds the {left} left to reverse of event {event_id}")]
    ReversalExceeds { event_id: Uuid, requested: Decimal, left: Decimal },
    #[error("delta must not be zero")]
    ZeroAdjustment,
}

impl DomainError {
    pub fn kind(&self) -> RefusalKind {
        match self {
            DomainError::NotFound => RefusalKind::NotFound,
            DomainError::AlreadyExists | DomainError::AlreadyExpired => RefusalKind::Conflict,
            _ => RefusalKind::Unprocessable,
        }
    }

    /// A stable, machine-readable name of the rule that was broken.
    pub fn rule(&self) -> &'static str {
        match self {
            DomainError::NotFound => "credit-not-found",
            DomainError::AlreadyExists => "credit-already-exists",
            DomainError::NegativeAmount { .. } => "amount-negative",
            DomainError::AmountNotPositive { .. } => "amount-not-positive",
            DomainError::AmountTooLarge { .. } => "amount-too-large",
            DomainError::NotWholeUnits { .. } => "amount-not-whole-units",
            DomainError::TooPrecise { .. } => "amount-finer-than-minor-unit",
            DomainError::CurrencyRequired => "currency-required",
            DomainError::UnknownCurrency { .. } => "currency-unknown",
            DomainError::OverCommitted { .. } => "used-plus-wasted-exceeds-total",
            DomainError::RemainingMismatch { .. } => "remaining-mismatch",
            DomainError::EndBeforeStart => "end-before-start",
            DomainError::Inactive => "credit-inactive",
            DomainError::NotStarted { .. } => "credit-not-started",
            DomainError::Ended { .. } => "credit-ended",
            DomainError::Expired => "credit-expired",
            DomainError::InsufficientBalance { .. } => "insufficient-balance",
            DomainError::AlreadyExpired => "credit-already-expired",
            DomainError::NotReversible { .. } => "event-not-reversible",
            DomainError::ReversalExceeds { .. } => "reversal-exceeds-movement",
            DomainError::ZeroAdjustment => "adjustment-zero",
        }
    }

    /// The API field at fault, when there is one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            DomainError::NegativeAmount { field }
            | DomainError::AmountNotPositive { field }
            | DomainError::AmountTooLarge { field, .. }
            | DomainError::NotWholeUnits { field }
            | DomainError::TooPrecise { field, .. } => Some(field),
            DomainError::CurrencyRequired | DomainError::UnknownCurrency { .. } => Some("currency"),
            DomainError::OverCommitted { .. } => Some("usedAmount"),
            DomainError::RemainingMismatch { .. } => Some("remainingAmount"),
            DomainError::EndBeforeStart => Some("endDate"),
            DomainError::InsufficientBalance { .. } => Some("amount"),
            DomainError::NotReversible { .. } => Some("eventId"),
            DomainError::ReversalExceeds { .. } => Some("amount"),
            DomainError::ZeroAdjustment => Some("delta"),
            _ => None,
        }
    }
}

/// A refusal as data: what a client is told, and what is kept for the retries of an
/// Idempotency-Key, so a retry hears exactly what the first attempt heard.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Refusal {
    pub kind: RefusalKind,
    pub rule: String,
    pub field: Option<String>,
    pub message: String,
}

impl From<&DomainError> for Refusal {
    fn from(e: &DomainError) -> Self {
        Refusal { kind: e.kind(), rule: e.rule().into(), field: e.field().map(Into::into), message: e.to_string() }
    }
}
