//! Spending an amount across a member's credits: which credits pay, and how much each.
//!
//! Eligible credits match the request (type, unit or currency, category and benefit
//! when given), are usable now and have something left. They pay in order: soonest
//! endDate first (no endDate last), then the oldest, then by id so the order is total.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::credit::{Credit, CreditType};
use crate::decide::decide;
use crate::error::DomainError;
use crate::event::Event;
use crate::money::AmountScale;
use crate::Command;

/// The most credits one consume may touch; a bound on one transaction's locks.
pub const CONSUME_CREDITS_MAX: usize = 100;

#[derive(Debug, Clone, PartialEq)]
pub struct ConsumeRequest {
    pub wellness_plan_membership_id: Uuid,
    pub amount: Decimal,
    pub credit_type: CreditType,
    /// The currency code (monetary) or measurement unit code (quantity) to match.
    pub unit_code: String,
    pub credit_category_code: Option<String>,
    pub wellness_plan_benefit_id: Option<Uuid>,
    pub reference: Option<String>,
    /// Spend what there is when it is not enough, instead of refusing.
    pub allow_partial: bool,
}

/// How much one credit paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocation {
    pub billing_credit_id: Uuid,
    pub amount: Decimal,
}

fn matches(credit: &Credit, request: &ConsumeRequest, now: DateTime<Utc>) -> bool {
    let d = &credit.details;
    credit.spendable_at(now)
        && credit.remaining_amount() > Decimal::ZERO
        && d.wellness_plan_membership_id == Some(request.wellness_plan_membership_id)
        && d.credit_type == request.credit_type
        && credit.unit_code() == Some(request.unit_code.as_str())
        && request
            .credit_category_code
            .as_deref()
            .is_none_or(|code| d.credit_category.as_ref().and_then(|c| c.code.as_deref()) == Some(code))
        && request.wellness_plan_benefit_id.is_none_or(|benefit| d.wellness_plan_benefit_id == Some(benefit))
}

fn payment_order(a: &Credit, b: &Credit) -> Ordering {
    let end = match (a.details.end_date, b.details.end_date) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    end.then(a.created_at.cmp(&b.created_at)).then(a.billing_credit_id.cmp(&b.billing_credit_id))
}

/// Which credits pay how much. Refuses (and allocates nothing) when the eligible
/// balance falls short, unless `allow_partial`; refuses when nothing at all is eligible.
pub fn allocate(
    credits: &[Credit],
    request: &ConsumeRequest,
    now: DateTime<Utc>,
) -> Result<Vec<Allocation>, DomainError> {
    let scale = match request.credit_type {
        CreditType::Monetary => AmountScale::for_credit(CreditType::Monetary, Some(&request.unit_code))?,
        CreditType::Quantity => AmountScale::for_credit(CreditType::Quantity, None)?,
    };
    scale.check_positive("amount", request.amount)?;
    let mut eligible: Vec<&Credit> = credits.iter().filter(|c| matches(c, request, now)).collect();
    eligible.sort_by(|a, b| payment_order(a, b));
    let available: Decimal = eligible.iter().map(|c| c.remaining_amount()).sum();
    if available.is_zero() || (available < request.amount && !request.allow_partial) {
        return Err(DomainError::InsufficientBalance { requested: request.amount, remaining: available });
    }
    let mut left = request.amount;
    let mut allocations = Vec::new();
    for credit in eligible {
        if left.is_zero() {
            break;
        }
        let amount = credit.remaining_amount().min(left);
        allocations.push(Allocation { billing_credit_id: credit.billing_credit_id, amount });
        left -= amount;
    }
    Ok(allocations)
}

/// Events to append to one credit.
pub type CreditEvents = (Uuid, Vec<Event>);

/// The events of a consume: one CreditUsed per paying credit, each judged by `decide`
/// like any other use, so every rule of a use holds.
pub fn decide_consume(
    credits: &[Credit],
    request: &ConsumeRequest,
    now: DateTime<Utc>,
) -> Result<(Vec<Allocation>, Vec<CreditEvents>), DomainError> {
    let allocations = allocate(credits, request, now)?;
    let mut decided = Vec::with_capacity(allocations.len());
    for allocation in &allocations {
        let credit = credits.iter().find(|c| c.billing_credit_id == allocation.billing_credit_id);
        let command = Command::Use { amount: allocation.amount, reference: request.reference.clone(), note: None };
        decided.push((allocation.billing_credit_id, decide(credit, &command, now)?));
    }
    Ok((allocations, decided))
}
