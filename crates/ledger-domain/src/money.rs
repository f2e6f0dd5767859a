//! Amount rules: how much precision a credit's amounts may carry.
//!
//! Quantity credits count whole units (visits, cleanings). Monetary credits carry a
//! currency (ISO 4217) and may not be finer than that currency's minor unit: 10.005 USD
//! is refused, 10.005 KWD is fine.

use rust_decimal::Decimal;

use crate::credit::CreditType;
use crate::error::DomainError;

/// The largest amount a credit may hold, in its own unit. A ledger that accepts any
/// number eventually stores a typo; a trillion is far above any wellness plan.
pub const AMOUNT_MAX: Decimal = Decimal::from_parts(0xD4A5_1000, 0xE8, 0, false, 0); // 1_000_000_000_000

/// The finest scale any currency in [`CURRENCY_MINOR_UNITS`] uses. Storage relies on it
/// (SQLite keeps sortable amounts as integers of 10^-4 units).
pub const AMOUNT_SCALE_MAX: u32 = 4;

/// ISO 4217 codes this ledger accepts for monetary credits, with their minor units.
pub const CURRENCY_MINOR_UNITS: &[(&str, u32)] = &[
    ("AED", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("BHD", 3),
    ("BRL", 2),
    ("CAD", 2),
    ("CHF", 2),
    ("CLF", 4),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("CZK", 2),
    ("DKK", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("HKD", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("ISK", 0),
    ("JOD", 3),
    ("JPY", 0),
    ("KRW", 0),
    ("KWD", 3),
    ("MXN", 2),
    ("MYR", 2),
    ("NOK", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PHP", 2),
    ("PLN", 2),
    ("SAR", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("THB", 2),
    ("TND", 3),
    ("TRY", 2),
    ("TWD", 2),
    ("UAH", 2),
    ("USD", 2),
    ("UYW", 4),
    ("VND", 0),
    ("ZAR", 2),
];

/// The minor unit (number of decimal places) of an ISO 4217 currency code.
pub fn minor_unit(currency_code: &str) -> Option<u32> {
    CURRENCY_MINOR_UNITS.iter().find(|(code, _)| *code == currency_code).map(|(_, unit)| *unit)
}

/// How finely amounts of one credit may be expressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AmountScale {
    pub max_decimal_places: u32,
}

impl AmountScale {
    /// The scale a credit's amounts must respect, or why the credit has none.
    /// A monetary credit needs a known currency; a quantity credit counts whole units.
    pub fn for_credit(credit_type: CreditType, currency_code: Option<&str>) -> Result<Self, DomainError> {
        match credit_type {
            CreditType::Quantity => Ok(Self { max_decimal_places: 0 }),
            CreditType::Monetary => {
                let code = currency_code.ok_or(DomainError::CurrencyRequired)?;
                let max_decimal_places =
                    minor_unit(code).ok_or_else(|| DomainError::UnknownCurrency { code: code.to_string() })?;
                Ok(Self { max_decimal_places })
            }
        }
    }

    /// Checks one amount: not negative, not above [`AMOUNT_MAX`], no finer than the scale.
    pub fn check(&self, field: &'static str, amount: Decimal) -> Result<(), DomainError> {
        if amount.is_sign_negative() && !amount.is_zero() {
            return Err(DomainError::NegativeAmount { field });
        }
        if amount > AMOUNT_MAX {
            return Err(DomainError::AmountTooLarge { field, max: AMOUNT_MAX });
        }
        if amount.normalize().scale() > self.max_decimal_places {
            return Err(if self.max_decimal_places == 0 {
                DomainError::NotWholeUnits { field }
            } else {
                DomainError::TooPrecise { field, max_decimal_places: self.max_decimal_places }
            });
        }
        Ok(())
    }

    /// Like [`check`](Self::check), and the amount must be above zero: using, wasting or
    /// reversing nothing is a mistake, not a no-op.
    pub fn check_positive(&self, field: &'static str, amount: Decimal) -> Result<(), DomainError> {
        if amount <= Decimal::ZERO {
            return Err(DomainError::AmountNotPositive { field });
        }
        self.check(field, amount)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn amount_max_is_one_trillion() {
        assert_eq!(AMOUNT_MAX, Decimal::from(1_000_000_000_000_u64));
    }

    #[test]
    fn no_currency_is_finer_than_the_storage_scale() {
        assert!(CURRENCY_MINOR_UNITS.iter().all(|(_, unit)| *unit <= AMOUNT_SCALE_MAX));
    }

    #[test]
    fn trailing_zeros_do_not_count_as_precision() {
        let usd = AmountScale::for_credit(CreditType::Monetary, Some("USD")).unwrap();
        assert!(usd.check("totalAmount", Decimal::from_str("10.500").unwrap()).is_ok());
        let visits = AmountScale::for_credit(CreditType::Quantity, None).unwrap();
        assert!(visits.check("totalAmount", Decimal::from_str("3.0").unwrap()).is_ok());
    }
}
