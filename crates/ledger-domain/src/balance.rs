//! What a member has left: their credits summed per (creditType, unit), as of an instant.
//!
//! A pure function of the credits (each folded to the instant asked), so the balance
//! agrees with the credits by construction and `asOf` is the same sum over older states.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::{Credit, CreditType};

/// The longest expiry window a caller may ask about.
pub const EXPIRING_WITHIN_DAYS_MAX: u32 = 3_660;
/// The expiry window when the caller names none.
pub const EXPIRING_WITHIN_DAYS_DEFAULT: u32 = 30;

/// One line of a balance: the spendable credits of one type and unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceLine {
    pub credit_type: CreditType,
    /// The currency (monetary) or measurement unit (quantity) code; `None` for credits
    /// that name none.
    pub unit_code: Option<String>,
    pub total_amount: Decimal,
    pub used_amount: Decimal,
    pub wasted_amount: Decimal,
    pub remaining_amount: Decimal,
    /// How many credits the line sums.
    pub credit_count: u32,
    /// The remaining amount of the credits whose endDate falls within the window.
    pub expiring_amount: Decimal,
    /// The soonest endDate of a credit of the line with something remaining.
    pub next_expiry: Option<DateTime<Utc>>,
}

impl BalanceLine {
    fn empty(credit_type: CreditType, unit_code: Option<String>) -> Self {
        BalanceLine {
            credit_type,
            unit_code,
            total_amount: Decimal::ZERO,
            used_amount: Decimal::ZERO,
            wasted_amount: Decimal::ZERO,
            remaining_amount: Decimal::ZERO,
            credit_count: 0,
            expiring_amount: Decimal::ZERO,
            next_expiry: None,
        }
    }

    fn add(&mut self, credit: &Credit, at: DateTime<Utc>, expiring_by: DateTime<Utc>) {
        let remaining = credit.remaining_amount();
        self.total_amount += credit.total_amount;
        self.used_amount += credit.used_amount;
        self.wasted_amount += credit.wasted_amount;
        self.remaining_amount += remaining;
        self.credit_count += 1;
        if let Some(end) = credit.details.end_date.filter(|_| remaining > Decimal::ZERO) {
            if end > at && end <= expiring_by {
                self.expiring_amount += remaining;
            }
            self.next_expiry = Some(self.next_expiry.map_or(end, |next| next.min(end)));
        }
    }
}

/// Which of a member's credits a balance sums (all, when every field is `None`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BalanceFilter {
    pub credit_type: Option<CreditType>,
    /// The currency or measurement unit code.
    pub unit_code: Option<String>,
    pub credit_category_code: Option<String>,
    pub wellness_plan_benefit_id: Option<Uuid>,
    pub wellness_plan_id: Option<Uuid>,
}

impl BalanceFilter {
    pub fn matches(&self, credit: &Credit) -> bool {
        let d = &credit.details;
        self.credit_type.is_none_or(|t| d.credit_type == t)
            && self.unit_code.as_deref().is_none_or(|code| credit.unit_code() == Some(code))
            && self
                .credit_category_code
                .as_deref()
                .is_none_or(|code| d.credit_category.as_ref().and_then(|c| c.code.as_deref()) == Some(code))
            && self.wellness_plan_benefit_id.is_none_or(|id| d.wellness_plan_benefit_id == Some(id))
            && self.wellness_plan_id.is_none_or(|id| d.wellness_plan_id == Some(id))
    }
}

/// The balance at `at` of `credits` (each as it stood at `at`): one line per
/// (creditType, unit) of the credits spendable then, ordered by type and unit.
pub fn balance(
    credits: &[Credit],
    filter: &BalanceFilter,
    at: DateTime<Utc>,
    expiring_within: Duration,
) -> Vec<BalanceLine> {
    let expiring_by = at + expiring_within;
    let mut lines: BTreeMap<(&'static str, Option<&str>), BalanceLine> = BTreeMap::new();
    for credit in credits.iter().filter(|c| c.spendable_at(at) && filter.matches(c)) {
        let key = (credit.details.credit_type.as_str(), credit.unit_code());
        lines
            .entry(key)
            .or_insert_with(|| BalanceLine::empty(credit.details.credit_type, credit.unit_code().map(str::to_string)))
            .add(credit, at, expiring_by);
    }
    let lines: Vec<BalanceLine> = lines.into_values().collect();
    for line in &lines {
        assert_eq!(line.remaining_amount, line.total_amount - line.used_amount - line.wasted_amount);
        assert!(line.expiring_amount <= line.remaining_amount);
    }
    lines
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::{Coding, CreditDetails};

    fn day(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, d, 0, 0, 0).unwrap()
    }

    fn credit(credit_type: CreditType, unit: &str, total: i64, used: i64, end: Option<u32>) -> Credit {
        let mut details = CreditDetails::new(credit_type, day(1));
        details.end_date = end.map(day);
        let coding = Some(Coding { code: Some(unit.into()), system: None, display: None });
        match credit_type {
            CreditType::Monetary => details.currency = coding,
            CreditType::Quantity => details.measurement_unit = coding,
        }
        Credit {
            site_id: Uuid::nil(),
            billing_credit_id: Uuid::new_v4(),
            details,
            total_amount: Decimal::from(total),
            used_amount: Decimal::from(used),
            wasted_amount: Decimal::ZERO,
            is_active: true,
            expired: false,
            deleted: false,
            version: 1,
            created_at: day(1),
            updated_at: day(1),
            reversible: Default::default(),
        }
    }

    #[test]
    fn sums_spendable_credits_per_type_and_unit() {
        let visits = credit(CreditType::Quantity, "visit", 5, 2, Some(20));
        let more_visits = credit(CreditType::Quantity, "visit", 3, 0, Some(10));
        let dollars = credit(CreditType::Monetary, "USD", 100, 40, None);
        let mut inactive = credit(CreditType::Quantity, "visit", 50, 0, None);
        inactive.is_active = false;
        let mut expired = credit(CreditType::Quantity, "visit", 50, 0, None);
        expired.expired = true;
        let mut deleted = credit(CreditType::Quantity, "visit", 50, 0, None);
        deleted.deleted = true;
        let ended = credit(CreditType::Quantity, "visit", 50, 0, Some(3));
        let credits = [visits, more_visits, dollars, inactive, expired, deleted, ended];

        let lines = balance(&credits, &BalanceFilter::default(), day(5), Duration::days(7));
        assert_eq!(lines.len(), 2);
        let (usd, visit) = (&lines[0], &lines[1]);
        assert_eq!((usd.credit_type, usd.unit_code.as_deref()), (CreditType::Monetary, Some("USD")));
        assert_eq!((usd.remaining_amount, usd.credit_count, usd.next_expiry), (Decimal::from(60), 1, None));
        assert_eq!(visit.total_amount, Decimal::from(8));
        assert_eq!(visit.remaining_amount, Decimal::from(6));
        assert_eq!(visit.credit_count, 2);
        assert_eq!(visit.expiring_amount, Decimal::from(3), "only the credit ending on the 10th is within 7 days");
        assert_eq!(visit.next_expiry, Some(day(10)));
    }

    #[test]
    fn a_credit_counts_only_inside_its_window() {
        let credits = [credit(CreditType::Quantity, "visit", 5, 0, Some(10))];
        let all = BalanceFilter::default();
        assert_eq!(balance(&credits, &all, day(9), Duration::days(30))[0].remaining_amount, Decimal::from(5));
        assert!(balance(&credits, &all, day(10), Duration::days(30)).is_empty(), "endDate is exclusive");
        let before = Utc.with_ymd_and_hms(2024, 12, 31, 0, 0, 0).unwrap();
        assert!(balance(&credits, &all, before, Duration::days(30)).is_empty(), "not yet started");
    }

    #[test]
    fn a_spent_credit_does_not_set_the_next_expiry() {
        let credits = [credit(CreditType::Quantity, "visit", 5, 5, Some(10))];
        let line = &balance(&credits, &BalanceFilter::default(), day(5), Duration::days(30))[0];
        assert_eq!(
            (line.remaining_amount, line.expiring_amount, line.next_expiry),
            (Decimal::ZERO, Decimal::ZERO, None)
        );
    }

    #[test]
    fn the_filter_narrows_the_credits_summed() {
        let credits =
            [credit(CreditType::Quantity, "visit", 5, 0, None), credit(CreditType::Monetary, "USD", 9, 0, None)];
        let usd = BalanceFilter { unit_code: Some("USD".into()), ..Default::default() };
        let lines = balance(&credits, &usd, day(5), Duration::days(30));
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].remaining_amount, Decimal::from(9));
        let plan = BalanceFilter { wellness_plan_id: Some(Uuid::new_v4()), ..Default::default() };
        assert!(balance(&credits, &plan, day(5), Duration::days(30)).is_empty());
    }
}
