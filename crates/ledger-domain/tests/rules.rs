//! Given/when/then: given these past events, when this command, then these events or
//! this refusal. One test per rule of `decide`, with the exact refusal.

use chrono::{DateTime, Duration, TimeZone, Utc};
use ledger_domain::event::*;
use ledger_domain::*;
use rust_decimal::Decimal;
use uuid::Uuid;

const SITE: Uuid = Uuid::from_u128(1);
const CREDIT: Uuid = Uuid::from_u128(2);

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn jan(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, day, 0, 0, 0).unwrap()
}

/// The instant commands are judged at unless a test says otherwise.
fn now() -> DateTime<Utc> {
    jan(15)
}

fn event_id(version: u64) -> Uuid {
    Uuid::from_u128(1000 + version as u128)
}

/// The credit the events build, as the store would fold them.
fn given(events: &[Event]) -> Option<Credit> {
    events.iter().enumerate().fold(None, |state, (i, event)| {
        let version = i as u64 + 1;
        let at = EventPosition {
            site_id: SITE,
            billing_credit_id: CREDIT,
            event_id: event_id(version),
            version,
            recorded_at: jan(1) + Duration::minutes(version as i64),
        };
        let credit = evolve(state, event, &at);
        credit.assert_invariants();
        Some(credit)
    })
}

fn when(past: &[Event], command: Command) -> Result<Vec<Event>, DomainError> {
    decide(given(past).as_ref(), &command, now())
}

fn visits(total: &str) -> CreditDraft {
    let mut details = CreditDetails::new(CreditType::Quantity, jan(1));
    details.end_date = Some(jan(31));
    CreditDraft {
        details,
        is_active: true,
        total_amount: d(total),
        used_amount: Decimal::ZERO,
        wasted_amount: Decimal::ZERO,
        remaining_amount: None,
    }
}

fn dollars(total: &str) -> CreditDraft {
    let mut draft = visits(total);
    draft.details.credit_type = CreditType::Monetary;
    draft.details.currency = Some(Coding { code: Some("USD".into()), system: None, display: None });
    draft
}

fn issued(draft: CreditDraft) -> Event {
    decide(None, &Command::Issue(draft), now()).unwrap().remove(0)
}

fn use_(amount: &str) -> Command {
    Command::Use { amount: d(amount), reference: Some("visit-1".into()), note: None }
}

fn used(amount: &str) -> Event {
    Event::CreditUsed(CreditUsed { amount: d(amount), reference: Some("visit-1".into()), note: None })
}

fn wasted(amount: &str) -> Event {
    Event::CreditWasted(CreditWasted { amount: d(amount), reason: Some("no-show".into()) })
}

// ---- issue ----

#[test]
fn issuing_a_new_credit_records_all_its_attributes() {
    let mut draft = visits("3");
    draft.used_amount = d("1");
    draft.remaining_amount = Some(d("2"));
    let events = when(&[], Command::Issue(draft.clone())).unwrap();
    assert_eq!(
        events,
        vec![Event::CreditIssued(CreditIssued {
            details: draft.details,
            total_amount: d("3"),
            used_amount: d("1"),
            wasted_amount: d("0"),
            is_active: true,
        })]
    );
}

#[test]
fn issuing_an_existing_credit_is_a_conflict() {
    assert_eq!(when(&[issued(visits("3"))], Command::Issue(visits("3"))), Err(DomainError::AlreadyExists));
}

#[test]
fn issuing_with_a_negative_total_is_refused() {
    assert_eq!(when(&[], Command::Issue(visits("-1"))), Err(DomainError::NegativeAmount { field: "totalAmount" }));
}

#[test]
fn issuing_with_used_plus_wasted_above_total_is_refused() {
    let mut draft = visits("3");
    draft.used_amount = d("2");
    draft.wasted_amount = d("2");
    assert_eq!(when(&[], Command::Issue(draft)), Err(DomainError::OverCommitted { committed: d("4"), total: d("3") }));
}

#[test]
fn a_remaining_amount_that_disagrees_is_refused() {
    let mut draft = visits("3");
    draft.remaining_amount = Some(d("2"));
    assert_eq!(
        when(&[], Command::Issue(draft)),
        Err(DomainError::RemainingMismatch { given: d("2"), expected: d("3") })
    );
}

#[test]
fn quantity_credits_take_whole_units_only() {
    assert_eq!(when(&[], Command::Issue(visits("2.5"))), Err(DomainError::NotWholeUnits { field: "totalAmount" }));
}

#[test]
fn monetary_credits_need_a_currency() {
    let mut draft = dollars("10");
    draft.details.currency = None;
    assert_eq!(when(&[], Command::Issue(draft)), Err(DomainError::CurrencyRequired));
}

#[test]
fn monetary_credits_need_a_known_currency() {
    let mut draft = dollars("10");
    draft.details.currency.as_mut().unwrap().code = Some("XYZ".into());
    assert_eq!(when(&[], Command::Issue(draft)), Err(DomainError::UnknownCurrency { code: "XYZ".into() }));
}

#[test]
fn monetary_amounts_respect_the_minor_unit() {
    assert_eq!(
        when(&[], Command::Issue(dollars("10.005"))),
        Err(DomainError::TooPrecise { field: "totalAmount", max_decimal_places: 2 })
    );
    assert!(when(&[], Command::Issue(dollars("10.05"))).is_ok());
}

#[test]
fn amounts_above_the_maximum_are_refused() {
    assert_eq!(
        when(&[], Command::Issue(visits("1000000000001"))),
        Err(DomainError::AmountTooLarge { field: "totalAmount", max: money::AMOUNT_MAX })
    );
}

#[test]
fn end_date_before_start_date_is_refused() {
    let mut draft = visits("3");
    draft.details.end_date = Some(jan(1) - Duration::days(1));
    assert_eq!(when(&[], Command::Issue(draft)), Err(DomainError::EndBeforeStart));
}

#[test]
fn end_date_equal_to_start_date_is_accepted() {
    let mut draft = visits("0");
    draft.details.end_date = Some(draft.details.start_date);
    assert!(when(&[], Command::Issue(draft)).is_ok());
}

// ---- use ----

#[test]
fn using_part_of_the_balance_records_a_use() {
    assert_eq!(when(&[issued(visits("3"))], use_("2")), Ok(vec![used("2")]));
}

#[test]
fn using_a_credit_that_does_not_exist_is_not_found() {
    assert_eq!(when(&[], use_("1")), Err(DomainError::NotFound));
}

#[test]
fn using_more_than_remains_is_refused() {
    assert_eq!(
        when(&[issued(visits("3")), used("2")], use_("2")),
        Err(DomainError::InsufficientBalance { requested: d("2"), remaining: d("1") })
    );
}

#[test]
fn using_zero_or_less_is_refused() {
    assert_eq!(when(&[issued(visits("3"))], use_("0")), Err(DomainError::AmountNotPositive { field: "amount" }));
    assert_eq!(when(&[issued(visits("3"))], use_("-1")), Err(DomainError::AmountNotPositive { field: "amount" }));
}

#[test]
fn using_a_fraction_of_a_visit_is_refused() {
    assert_eq!(when(&[issued(visits("3"))], use_("0.5")), Err(DomainError::NotWholeUnits { field: "amount" }));
}

#[test]
fn using_an_inactive_credit_is_refused() {
    let past = [issued(visits("3")), Event::CreditDeactivated(StatusChange::default())];
    assert_eq!(when(&past, use_("1")), Err(DomainError::Inactive));
}

#[test]
fn using_before_the_start_date_is_refused() {
    let mut draft = visits("3");
    draft.details.start_date = jan(20);
    assert_eq!(when(&[issued(draft)], use_("1")), Err(DomainError::NotStarted { start_date: jan(20) }));
}

#[test]
fn using_at_the_end_date_is_refused() {
    let mut draft = visits("3");
    draft.details.end_date = Some(now());
    assert_eq!(when(&[issued(draft)], use_("1")), Err(DomainError::Ended { end_date: now() }));
}

#[test]
fn using_a_credit_without_end_date_works_any_time_after_start() {
    let mut draft = visits("3");
    draft.details.end_date = None;
    let credit = given(&[issued(draft)]).unwrap();
    let far_future = jan(1) + Duration::days(365 * 30);
    assert!(decide(Some(&credit), &use_("1"), far_future).is_ok());
}

#[test]
fn using_a_deleted_credit_is_not_found() {
    let past = [issued(visits("3")), Event::CreditDeleted(StatusChange::default())];
    assert_eq!(when(&past, use_("1")), Err(DomainError::NotFound));
}

#[test]
fn using_an_expired_credit_is_refused() {
    let past = [
        issued(visits("3")),
        Event::CreditExpired(CreditExpired { amount: d("3"), reason: None }),
        Event::CreditWasteReversed(Reversal { amount: d("1"), reverses: None, reason: None }),
    ];
    assert_eq!(when(&past, use_("1")), Err(DomainError::Expired));
}

// ---- waste ----

#[test]
fn wasting_records_a_waste_even_while_inactive() {
    let past = [issued(visits("3")), Event::CreditDeactivated(StatusChange::default())];
    let waste = Command::Waste { amount: d("1"), reason: Some("no-show".into()) };
    assert_eq!(when(&past, waste), Ok(vec![wasted("1")]));
}

#[test]
fn wasting_more_than_remains_is_refused() {
    let waste = Command::Waste { amount: d("4"), reason: None };
    assert_eq!(
        when(&[issued(visits("3"))], waste),
        Err(DomainError::InsufficientBalance { requested: d("4"), remaining: d("3") })
    );
}

// ---- expire ----

#[test]
fn expiring_wastes_what_remains() {
    let expire = Command::Expire { reason: Some("cycle ended".into()) };
    assert_eq!(
        when(&[issued(visits("3")), used("1")], expire),
        Ok(vec![Event::CreditExpired(CreditExpired { amount: d("2"), reason: Some("cycle ended".into()) })])
    );
}

#[test]
fn expiring_twice_is_a_conflict() {
    let past = [issued(visits("3")), Event::CreditExpired(CreditExpired { amount: d("3"), reason: None })];
    assert_eq!(when(&past, Command::Expire { reason: None }), Err(DomainError::AlreadyExpired));
}

// ---- reverse ----

#[test]
fn reversing_a_use_in_full_names_it() {
    let reverse = Command::Reverse { event_id: event_id(2), amount: None, reason: None };
    assert_eq!(
        when(&[issued(visits("3")), used("2")], reverse),
        Ok(vec![Event::CreditUseReversed(Reversal { amount: d("2"), reverses: Some(event_id(2)), reason: None })])
    );
}

#[test]
fn reversing_a_waste_in_part() {
    let reverse = Command::Reverse { event_id: event_id(2), amount: Some(d("1")), reason: None };
    assert_eq!(
        when(&[issued(visits("3")), wasted("2")], reverse),
        Ok(vec![Event::CreditWasteReversed(Reversal { amount: d("1"), reverses: Some(event_id(2)), reason: None })])
    );
}

#[test]
fn reversing_more_than_the_use_moved_is_refused() {
    let past = [
        issued(visits("3")),
        used("2"),
        Event::CreditUseReversed(Reversal { amount: d("1"), reverses: Some(event_id(2)), reason: None }),
    ];
    let reverse = Command::Reverse { event_id: event_id(2), amount: Some(d("2")), reason: None };
    assert_eq!(
        when(&past, reverse),
        Err(DomainError::ReversalExceeds { event_id: event_id(2), requested: d("2"), left: d("1") })
    );
}

/// The credit as a store keeps it (its JSON), then restored for a reversal of `target`
/// from the stream's events, as a store does under the credit's lock.
fn stored_then_restored(past: &[Event], target: Uuid) -> Credit {
    let folded = given(past).unwrap();
    let mut stored: Credit = serde_json::from_str(&serde_json::to_string(&folded).unwrap()).unwrap();
    assert!(stored.reversible.is_empty(), "the stored credit carries no reversible movements");
    assert_eq!(stored, folded, "equal as stored");
    let history: Vec<(Uuid, &Event)> = past.iter().enumerate().map(|(i, e)| (event_id(i as u64 + 1), e)).collect();
    stored.restore_reversible(target, history);
    stored
}

#[test]
fn a_stored_credit_does_not_grow_with_its_uses() {
    let mut past = vec![issued(visits("1000"))];
    let size = |past: &[Event]| serde_json::to_string(&given(past).unwrap()).unwrap().len();
    let after_one = {
        past.push(used("1"));
        size(&past)
    };
    past.extend((0..200).map(|_| used("1")));
    assert_eq!(size(&past), after_one + 4, "only usedAmount (1 to 201) and version (2 to 202) grow");
}

#[test]
fn a_reversal_decides_alike_on_a_restored_credit() {
    let past = [
        issued(visits("5")),
        used("2"),
        wasted("1"),
        Event::CreditUseReversed(Reversal { amount: d("1"), reverses: Some(event_id(2)), reason: None }),
        used("1"),
    ];
    let folded = given(&past).unwrap();
    for (target, amount) in [(event_id(2), None), (event_id(2), Some(d("2"))), (event_id(3), None), (event_id(1), None)]
    {
        let reverse = Command::Reverse { event_id: target, amount, reason: None };
        let restored = stored_then_restored(&past, target);
        assert_eq!(restored.reversible.get(&target), folded.reversible.get(&target), "{target}");
        assert_eq!(decide(Some(&restored), &reverse, now()), decide(Some(&folded), &reverse, now()), "{target}");
    }
    let fully = [
        issued(visits("3")),
        used("2"),
        Event::CreditUseReversed(Reversal { amount: d("2"), reverses: Some(event_id(2)), reason: None }),
    ];
    let reverse = Command::Reverse { event_id: event_id(2), amount: None, reason: None };
    assert_eq!(
        decide(Some(&stored_then_restored(&fully, event_id(2))), &reverse, now()),
        Err(DomainError::NotReversible { event_id: event_id(2) })
    );
}

#[test]
fn reversing_an_event_that_is_not_a_use_or_waste_is_refused() {
    let reverse = Command::Reverse { event_id: event_id(1), amount: None, reason: None };
    assert_eq!(when(&[issued(visits("3"))], reverse), Err(DomainError::NotReversible { event_id: event_id(1) }));
}

#[test]
fn a_fully_reversed_use_cannot_be_reversed_again() {
    let past = [
        issued(visits("3")),
        used("2"),
        Event::CreditUseReversed(Reversal { amount: d("2"), reverses: Some(event_id(2)), reason: None }),
    ];
    let reverse = Command::Reverse { event_id: event_id(2), amount: None, reason: None };
    assert_eq!(when(&past, reverse), Err(DomainError::NotReversible { event_id: event_id(2) }));
}

// ---- adjust total ----

#[test]
fn adjusting_the_total_records_the_delta() {
    let adjust = Command::AdjustTotal { delta: d("2"), reason: Some("upgrade".into()) };
    assert_eq!(
        when(&[issued(visits("3"))], adjust),
        Ok(vec![Event::CreditTotalAdjusted(CreditTotalAdjusted { delta: d("2"), reason: Some("upgrade".into()) })])
    );
}

#[test]
fn adjusting_the_total_below_what_is_committed_is_refused() {
    let adjust = Command::AdjustTotal { delta: d("-2"), reason: None };
    assert_eq!(
        when(&[issued(visits("3")), used("2")], adjust),
        Err(DomainError::OverCommitted { committed: d("2"), total: d("1") })
    );
}

#[test]
fn adjusting_by_zero_is_refused() {
    let adjust = Command::AdjustTotal { delta: d("0"), reason: None };
    assert_eq!(when(&[issued(visits("3"))], adjust), Err(DomainError::ZeroAdjustment));
}

// ---- activate, deactivate, delete ----

#[test]
fn activation_flips_and_repeating_it_changes_nothing() {
    let past = [issued(visits("3")), Event::CreditDeactivated(StatusChange::default())];
    assert_eq!(
        when(&past, Command::Activate(StatusChange::default())),
        Ok(vec![Event::CreditActivated(StatusChange::default())])
    );
    assert_eq!(when(&[issued(visits("3"))], Command::Activate(StatusChange::default())), Ok(vec![]));
}

#[test]
fn deleting_writes_a_tombstone_and_a_second_delete_is_not_found() {
    assert_eq!(
        when(&[issued(visits("3"))], Command::Delete(StatusChange::default())),
        Ok(vec![Event::CreditDeleted(StatusChange::default())])
    );
    let past = [issued(visits("3")), Event::CreditDeleted(StatusChange::default())];
    assert_eq!(when(&past, Command::Delete(StatusChange::default())), Err(DomainError::NotFound));
}

// ---- patch and replace ----

#[test]
fn patching_used_amount_up_is_a_use_of_the_difference() {
    let patch = CreditPatch { used_amount: Some(d("2")), ..Default::default() };
    assert_eq!(
        when(&[issued(visits("3")), used("1")], Command::Patch(patch)),
        Ok(vec![Event::CreditUsed(CreditUsed { amount: d("1"), reference: None, note: None })])
    );
}

#[test]
fn patching_used_amount_down_is_a_reversal_of_the_difference() {
    let patch = CreditPatch { used_amount: Some(d("0")), ..Default::default() };
    assert_eq!(
        when(&[issued(visits("3")), used("2")], Command::Patch(patch)),
        Ok(vec![Event::CreditUseReversed(Reversal { amount: d("2"), reverses: None, reason: None })])
    );
}

#[test]
fn patching_only_what_it_names_leaves_the_rest() {
    let plan = Uuid::from_u128(77);
    let patch = CreditPatch { wellness_plan_id: Some(Some(plan)), ..Default::default() };
    let events = when(&[issued(visits("3"))], Command::Patch(patch)).unwrap();
    let Event::CreditDetailsChanged(changed) = &events[0] else { panic!("{events:?}") };
    let mut expected = visits("3").details;
    expected.wellness_plan_id = Some(plan);
    assert_eq!(changed.details, expected);
    assert_eq!(events.len(), 1);
}

#[test]
fn patching_with_a_disagreeing_remaining_amount_is_refused() {
    let patch = CreditPatch { total_amount: Some(d("5")), remaining_amount: Some(d("3")), ..Default::default() };
    assert_eq!(
        when(&[issued(visits("3"))], Command::Patch(patch)),
        Err(DomainError::RemainingMismatch { given: d("3"), expected: d("5") })
    );
}

#[test]
fn patching_that_raises_usage_on_an_inactive_credit_is_refused() {
    let patch = CreditPatch { is_active: Some(false), used_amount: Some(d("1")), ..Default::default() };
    assert_eq!(when(&[issued(visits("3"))], Command::Patch(patch)), Err(DomainError::Inactive));
}

#[test]
fn replacing_emits_every_delta_in_one_decision() {
    let mut target = visits("5");
    target.is_active = false;
    target.wasted_amount = d("1");
    target.details.wellness_plan_id = Some(Uuid::from_u128(9));
    let events = when(&[issued(visits("3"))], Command::Replace(target.clone())).unwrap();
    let types: Vec<_> = events.iter().map(Event::event_type).collect();
    assert_eq!(types, ["CreditDetailsChanged", "CreditDeactivated", "CreditTotalAdjusted", "CreditWasted"]);
    let mut all = vec![issued(visits("3"))];
    all.extend(events);
    let credit = given(&all).unwrap();
    assert_eq!((credit.total_amount, credit.wasted_amount, credit.is_active), (d("5"), d("1"), false));
    assert_eq!(credit.details, target.details);
}

#[test]
fn replacing_with_the_same_credit_writes_nothing() {
    assert_eq!(when(&[issued(visits("3"))], Command::Replace(visits("3"))), Ok(vec![]));
}

// ---- upcasting ----

#[test]
fn stored_events_read_back_through_upcast() {
    let event = used("2");
    let read = upcast(event.event_type(), EVENT_SCHEMA_VERSION, event.payload()).unwrap();
    assert_eq!(read, event);
}

#[test]
fn events_from_a_newer_schema_are_refused_not_misread() {
    let event = used("2");
    let err = upcast(event.event_type(), EVENT_SCHEMA_VERSION + 1, event.payload()).unwrap_err();
    assert!(matches!(err, UpcastError::FromTheFuture { .. }), "{err}");
}

// ---- consume across credits ----

fn member_credit(total: &str, end_day: Option<u32>, created_minute: i64) -> Credit {
    let mut draft = visits(total);
    draft.details.end_date = end_day.map(jan);
    draft.details.wellness_plan_membership_id = Some(Uuid::from_u128(50));
    draft.details.measurement_unit = Some(Coding { code: Some("visit".into()), system: None, display: None });
    let mut credit = given(&[issued(draft)]).unwrap();
    credit.billing_credit_id = Uuid::from_u128(600 + created_minute as u128);
    credit.created_at = jan(1) + Duration::minutes(created_minute);
    credit
}

fn consume(amount: &str, allow_partial: bool) -> ConsumeRequest {
    ConsumeRequest {
        wellness_plan_membership_id: Uuid::from_u128(50),
        amount: d(amount),
        credit_type: CreditType::Quantity,
        unit_code: "visit".into(),
        credit_category_code: None,
        wellness_plan_benefit_id: None,
        reference: Some("visit-9".into()),
        allow_partial,
    }
}

#[test]
fn consume_pays_soonest_ending_first_then_oldest_and_no_end_last() {
    let credits = [
        member_credit("2", None, 1),
        member_credit("2", Some(30), 2),
        member_credit("2", Some(20), 3),
        member_credit("2", Some(20), 4),
    ];
    let allocations = allocate(&credits, &consume("7", false), now()).unwrap();
    let order: Vec<_> = allocations.iter().map(|a| (a.billing_credit_id.as_u128() - 600, a.amount)).collect();
    assert_eq!(order, vec![(3, d("2")), (4, d("2")), (2, d("2")), (1, d("1"))]);
}

#[test]
fn consume_refuses_when_short_unless_partial() {
    let credits = [member_credit("2", None, 1), member_credit("1", Some(30), 2)];
    assert_eq!(
        allocate(&credits, &consume("4", false), now()),
        Err(DomainError::InsufficientBalance { requested: d("4"), remaining: d("3") })
    );
    let partial = allocate(&credits, &consume("4", true), now()).unwrap();
    assert_eq!(partial.iter().map(|a| a.amount).sum::<Decimal>(), d("3"));
}

#[test]
fn consume_skips_credits_that_cannot_be_used_now() {
    let mut inactive = member_credit("5", None, 1);
    inactive.is_active = false;
    let ended = member_credit("5", Some(10), 2);
    let mut other_unit = member_credit("5", None, 3);
    other_unit.details.measurement_unit = Some(Coding { code: Some("cleaning".into()), system: None, display: None });
    let usable = member_credit("1", None, 4);
    let allocations = allocate(&[inactive, ended, other_unit, usable], &consume("1", false), now()).unwrap();
    assert_eq!(allocations.len(), 1);
    assert_eq!(allocations[0].billing_credit_id.as_u128() - 600, 4);
}

#[test]
fn consume_with_nothing_eligible_is_refused_even_partial() {
    assert_eq!(
        allocate(&[], &consume("1", true), now()),
        Err(DomainError::InsufficientBalance { requested: d("1"), remaining: d("0") })
    );
}

#[test]
fn stored_payload_text_reads_back_in_one_parse() {
    let event = used("2");
    let text = serde_json::to_string(&event.payload()).unwrap();
    assert_eq!(read_stored(event.event_type(), EVENT_SCHEMA_VERSION, &text).unwrap(), event);
    assert!(read_stored(event.event_type(), EVENT_SCHEMA_VERSION + 1, &text).is_err());
    assert!(read_stored("CreditUsed", EVENT_SCHEMA_VERSION, "{\"amount\":").is_err());
}
