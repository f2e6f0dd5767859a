//! Which events move a balance, and by how much: the lines of a member's statement.
//! Status and detail changes move no amount and are not entries.

use rust_decimal::Decimal;

use crate::Event;

/// The kinds of entry a statement shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntryType {
    Issued,
    Used,
    Wasted,
    Expired,
    Reversed,
    Adjusted,
}

impl EntryType {
    pub const ALL: [EntryType; 6] = [
        EntryType::Issued,
        EntryType::Used,
        EntryType::Wasted,
        EntryType::Expired,
        EntryType::Reversed,
        EntryType::Adjusted,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            EntryType::Issued => "issued",
            EntryType::Used => "used",
            EntryType::Wasted => "wasted",
            EntryType::Expired => "expired",
            EntryType::Reversed => "reversed",
            EntryType::Adjusted => "adjusted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        EntryType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// How an event moved the remaining balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryMove<'a> {
    pub entry_type: EntryType,
    /// Signed: what the event added to (positive) or took from (negative) the remaining balance.
    pub amount: Decimal,
    pub reference: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub note: Option<&'a str>,
}

/// The move an event makes, if it moves an amount at all.
pub fn entry_move(event: &Event) -> Option<EntryMove<'_>> {
    let (entry_type, amount, reference, reason, note) = match event {
        Event::CreditIssued(e) => {
            (EntryType::Issued, e.total_amount - e.used_amount - e.wasted_amount, None, None, None)
        }
        Event::CreditUsed(e) => (EntryType::Used, -e.amount, e.reference.as_deref(), None, e.note.as_deref()),
        Event::CreditWasted(e) => (EntryType::Wasted, -e.amount, None, e.reason.as_deref(), None),
        Event::CreditExpired(e) => (EntryType::Expired, -e.amount, None, e.reason.as_deref(), None),
        Event::CreditUseReversed(e) | Event::CreditWasteReversed(e) => {
            (EntryType::Reversed, e.amount, None, e.reason.as_deref(), None)
        }
        Event::CreditTotalAdjusted(e) => (EntryType::Adjusted, e.delta, None, e.reason.as_deref(), None),
        Event::CreditDetailsChanged(_)
        | Event::CreditActivated(_)
        | Event::CreditDeactivated(_)
        | Event::CreditDeleted(_) => return None,
    };
    Some(EntryMove { entry_type, amount, reference, reason, note })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{CreditUsed, Reversal, StatusChange};

    #[test]
    fn movements_are_signed_by_what_they_do_to_the_remaining_balance() {
        let used =
            Event::CreditUsed(CreditUsed { amount: Decimal::from(2), reference: Some("visit-1".into()), note: None });
        let m = entry_move(&used).unwrap();
        assert_eq!((m.entry_type, m.amount, m.reference), (EntryType::Used, Decimal::from(-2), Some("visit-1")));
        let reversed = Event::CreditUseReversed(Reversal { amount: Decimal::from(1), reverses: None, reason: None });
        assert_eq!(entry_move(&reversed).unwrap().amount, Decimal::from(1));
        assert!(entry_move(&Event::CreditDeactivated(StatusChange { reason: None })).is_none());
    }

    #[test]
    fn every_type_has_its_name() {
        for t in EntryType::ALL {
            assert_eq!(EntryType::parse(t.as_str()), Some(t));
        }
        assert_eq!(EntryType::parse("deleted"), None);
    }
}
