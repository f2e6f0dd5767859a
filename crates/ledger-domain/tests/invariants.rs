//! Property: whatever commands arrive, in whatever order, the credit never breaks an
//! invariant (checked after every event by `Credit::assert_invariants`).

use chrono::{DateTime, Duration, TimeZone, Utc};
use ledger_domain::event::StatusChange;
use ledger_domain::*;
use proptest::prelude::*;
use rust_decimal::Decimal;
use uuid::Uuid;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()
}

fn amount() -> impl Strategy<Value = Decimal> {
    (-3i64..40).prop_map(Decimal::from)
}

/// A command, with reversals pointing at the n-th reversible event if there is one.
fn command() -> impl Strategy<Value = (Command, usize)> {
    prop_oneof![
        amount().prop_map(|a| (Command::Use { amount: a, reference: None, note: None }, 0)),
        amount().prop_map(|a| (Command::Waste { amount: a, reason: None }, 0)),
        Just((Command::Expire { reason: None }, 0)),
        (proptest::option::of(amount()), 0usize..4)
            .prop_map(|(a, n)| (Command::Reverse { event_id: Uuid::nil(), amount: a, reason: None }, n)),
        (-20i64..20).prop_map(|d| (Command::AdjustTotal { delta: Decimal::from(d), reason: None }, 0)),
        Just((Command::Activate(StatusChange::default()), 0)),
        Just((Command::Deactivate(StatusChange::default()), 0)),
        (proptest::option::of(amount()), proptest::option::of(amount()), proptest::option::of(amount())).prop_map(
            |(t, u, w)| {
                let patch = CreditPatch { total_amount: t, used_amount: u, wasted_amount: w, ..Default::default() };
                (Command::Patch(patch), 0)
            }
        ),
        Just((Command::Delete(StatusChange::default()), 0)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_command_sequence_breaks_an_invariant(
        total in 0i64..50,
        commands in proptest::collection::vec((command(), 0i64..40), 1..40),
    ) {
        let mut details = CreditDetails::new(CreditType::Quantity, start());
        details.end_date = Some(start() + Duration::days(30));
        let draft = CreditDraft {
            details, is_active: true, total_amount: Decimal::from(total),
            used_amount: Decimal::ZERO, wasted_amount: Decimal::ZERO, remaining_amount: None,
        };
        let site = Uuid::from_u128(1);
        let id = Uuid::from_u128(2);
        let mut state: Option<Credit> = None;
        let apply = |state: &mut Option<Credit>, events: Vec<Event>, at: DateTime<Utc>| {
            for event in events {
                let version = state.as_ref().map_or(1, |c| c.version + 1);
                let position = EventPosition {
                    site_id: site, billing_credit_id: id,
                    event_id: Uuid::from_u128(100 + version as u128), version, recorded_at: at,
                };
                let next = evolve(state.take(), &event, &position);
                next.assert_invariants();
                *state = Some(next);
            }
        };
        let issued = decide(None, &Command::Issue(draft), start()).unwrap();
        apply(&mut state, issued, start());

        for ((mut command, nth), day) in commands {
            let now = start() + Duration::days(day);
            if let Command::Reverse { event_id, .. } = &mut command {
                let credit = state.as_ref().unwrap();
                if let Some(id) = credit.reversible.keys().nth(nth) { *event_id = *id; }
            }
            if let Ok(events) = decide(state.as_ref(), &command, now) {
                apply(&mut state, events, now);
            }
            let credit = state.as_ref().unwrap();
            prop_assert!(credit.remaining_amount() >= Decimal::ZERO);
            let reversible: Decimal = credit.reversible.values().map(|r| r.amount_left).sum();
            prop_assert!(reversible >= Decimal::ZERO);
        }
    }
}
