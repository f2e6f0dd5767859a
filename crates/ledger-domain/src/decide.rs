//! `decide`: judges a command against the credit as it stands and answers with the
//! events that record it, or with the rule it breaks. Pure: same input, same answer.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::command::{Command, CreditDraft};
use crate::credit::{Credit, Movement};
use crate::error::DomainError;
use crate::event::*;
use crate::money::AmountScale;

/// The events that carry out `command` on `state` (None: the credit does not exist yet),
/// judged at business time `now`. An empty list means there was nothing to change.
pub fn decide(state: Option<&Credit>, command: &Command, now: DateTime<Utc>) -> Result<Vec<Event>, DomainError> {
    let credit = match (state, command) {
        (None, Command::Issue(draft)) => return issue(draft),
        (Some(_), Command::Issue(_)) => return Err(DomainError::AlreadyExists),
        (Some(credit), _) if !credit.deleted => credit,
        _ => return Err(DomainError::NotFound),
    };
    match command {
        Command::Issue(_) => unreachable!("matched above"),
        Command::Use { amount, reference, note } => {
            scale_of(credit)?.check_positive("amount", *amount)?;
            check_usable(credit, now)?;
            check_balance(credit, *amount)?;
            Ok(vec![Event::CreditUsed(CreditUsed {
                amount: *amount,
                reference: reference.clone(),
                note: note.clone(),
            })])
        }
        Command::Waste { amount, reason } => {
            scale_of(credit)?.check_positive("amount", *amount)?;
            check_balance(credit, *amount)?;
            Ok(vec![Event::CreditWasted(CreditWasted { amount: *amount, reason: reason.clone() })])
        }
        Command::Expire { reason } => {
            if credit.expired {
                return Err(DomainError::AlreadyExpired);
            }
            Ok(vec![Event::CreditExpired(CreditExpired { amount: credit.remaining_amount(), reason: reason.clone() })])
        }
        Command::Reverse { event_id, amount, reason } => {
            let movement = credit.reversible.get(event_id).ok_or(DomainError::NotReversible { event_id: *event_id })?;
            // Corrections (PATCH lowering usedAmount) may already have taken back part of
            // what this event moved: never reverse more than the balance still holds.
            let balance = match movement.movement {
                Movement::Use => credit.used_amount,
                Movement::Waste => credit.wasted_amount,
            };
            let left = movement.amount_left.min(balance);
            let amount = amount.unwrap_or(left);
            scale_of(credit)?.check_positive("amount", amount)?;
            if amount > left {
                return Err(DomainError::ReversalExceeds { event_id: *event_id, requested: amount, left });
            }
            let reversal = Reversal { amount, reverses: Some(*event_id), reason: reason.clone() };
            Ok(vec![match movement.movement {
                Movement::Use => Event::CreditUseReversed(reversal),
                Movement::Waste => Event::CreditWasteReversed(reversal),
            }])
        }
        Command::AdjustTotal { delta, reason } => {
            if delta.is_zero() {
                return Err(DomainError::ZeroAdjustment);
            }
            let scale = scale_of(credit)?;
            scale.check("delta", delta.abs())?;
            let total = credit.total_amount + delta;
            scale.check("totalAmount", total)?;
            check_committed(total, credit.used_amount, credit.wasted_amount)?;
            Ok(vec![Event::CreditTotalAdjusted(CreditTotalAdjusted { delta: *delta, reason: reason.clone() })])
        }
        Command::Activate(change) if !credit.is_active => Ok(vec![Event::CreditActivated(change.clone())]),
        Command::Deactivate(change) if credit.is_active => Ok(vec![Event::CreditDeactivated(change.clone())]),
        Command::Activate(_) | Command::Deactivate(_) => Ok(vec![]),
        Command::Delete(change) => Ok(vec![Event::CreditDeleted(change.clone())]),
        Command::Patch(patch) => revise(credit, &patch.apply_to(credit), now),
        Command::Replace(draft) => revise(credit, draft, now),
    }
}

fn issue(draft: &CreditDraft) -> Result<Vec<Event>, DomainError> {
    check_draft(draft)?;
    Ok(vec![Event::CreditIssued(CreditIssued {
        details: draft.details.clone(),
        total_amount: draft.total_amount,
        used_amount: draft.used_amount,
        wasted_amount: draft.wasted_amount,
        is_active: draft.is_active,
    })])
}

/// Turns "the credit should now look like `target`" into the delta events that get it
/// there: usedAmount 3 → 5 is a CreditUsed of 2, never an overwrite.
fn revise(credit: &Credit, target: &CreditDraft, now: DateTime<Utc>) -> Result<Vec<Event>, DomainError> {
    check_draft(target)?;
    let mut events = Vec::new();
    if target.details != credit.details {
        events.push(Event::CreditDetailsChanged(CreditDetailsChanged { details: target.details.clone() }));
    }
    match (credit.is_active, target.is_active) {
        (false, true) => events.push(Event::CreditActivated(StatusChange::default())),
        (true, false) => events.push(Event::CreditDeactivated(StatusChange::default())),
        _ => {}
    }
    // Reversals first, then the total, then new uses and wastes: in that order every
    // intermediate state keeps used + wasted <= total, not only the final one.
    let used_delta = target.used_amount - credit.used_amount;
    let wasted_delta = target.wasted_amount - credit.wasted_amount;
    if used_delta < Decimal::ZERO {
        events.push(Event::CreditUseReversed(Reversal { amount: -used_delta, reverses: None, reason: None }));
    }
    if wasted_delta < Decimal::ZERO {
        events.push(Event::CreditWasteReversed(Reversal { amount: -wasted_delta, reverses: None, reason: None }));
    }
    let total_delta = target.total_amount - credit.total_amount;
    if !total_delta.is_zero() {
        events.push(Event::CreditTotalAdjusted(CreditTotalAdjusted { delta: total_delta, reason: None }));
    }
    if used_delta > Decimal::ZERO {
        // A correction that spends more is still a use: the credit must be usable as revised.
        let mut revised = credit.clone();
        revised.details = target.details.clone();
        revised.is_active = target.is_active;
        check_usable(&revised, now)?;
        events.push(Event::CreditUsed(CreditUsed { amount: used_delta, reference: None, note: None }));
    }
    if wasted_delta > Decimal::ZERO {
        events.push(Event::CreditWasted(CreditWasted { amount: wasted_delta, reason: None }));
    }
    Ok(events)
}

/// The rules a whole credit must satisfy, on create and on PUT/PATCH.
fn check_draft(draft: &CreditDraft) -> Result<(), DomainError> {
    let scale = AmountScale::for_credit(draft.details.credit_type, draft.details.currency_code())?;
    scale.check("totalAmount", draft.total_amount)?;
    scale.check("usedAmount", draft.used_amount)?;
    scale.check("wastedAmount", draft.wasted_amount)?;
    check_committed(draft.total_amount, draft.used_amount, draft.wasted_amount)?;
    let expected = draft.total_amount - draft.used_amount - draft.wasted_amount;
    if let Some(given) = draft.remaining_amount {
        if given != expected {
            return Err(DomainError::RemainingMismatch { given, expected });
        }
    }
    if draft.details.end_date.is_some_and(|end| end < draft.details.start_date) {
        return Err(DomainError::EndBeforeStart);
    }
    Ok(())
}

fn check_committed(total: Decimal, used: Decimal, wasted: Decimal) -> Result<(), DomainError> {
    let committed = used + wasted;
    if committed > total {
        return Err(DomainError::OverCommitted { committed, total });
    }
    Ok(())
}

fn scale_of(credit: &Credit) -> Result<AmountScale, DomainError> {
    AmountScale::for_credit(credit.details.credit_type, credit.details.currency_code())
}

/// A credit can be spent only while active, unexpired and inside [startDate, endDate).
fn check_usable(credit: &Credit, now: DateTime<Utc>) -> Result<(), DomainError> {
    if !credit.is_active {
        return Err(DomainError::Inactive);
    }
    if credit.expired {
        return Err(DomainError::Expired);
    }
    if now < credit.details.start_date {
        return Err(DomainError::NotStarted { start_date: credit.details.start_date });
    }
    if let Some(end_date) = credit.details.end_date.filter(|end| now >= *end) {
        return Err(DomainError::Ended { end_date });
    }
    Ok(())
}

fn check_balance(credit: &Credit, requested: Decimal) -> Result<(), DomainError> {
    let remaining = credit.remaining_amount();
    if requested > remaining {
        return Err(DomainError::InsufficientBalance { requested, remaining });
    }
    Ok(())
}
