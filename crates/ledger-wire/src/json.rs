//! How values look on the wire: amounts as exact JSON numbers (never strings, never
//! floats), dates in as `2025-01-01` or RFC 3339 and out as `2025-01-01T00:00:00Z`,
//! audit timestamps with milliseconds.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serializer};

/// Parses `2025-01-01` (midnight UTC) or an RFC 3339 instant.
pub fn parse_date(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(day) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(day.and_hms_opt(0, 0, 0)?.and_utc());
    }
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

/// startDate/endDate out: whole seconds, `Z`.
pub fn format_date(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// createdAt/updatedAt out: milliseconds, `Z`.
pub fn format_timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn decimal_from_number(n: &serde_json::Number) -> Result<Decimal, String> {
    let text = n.as_str();
    Decimal::from_str_exact(text)
        .or_else(|_| Decimal::from_scientific(text))
        .map_err(|_| format!("{text} is not a decimal amount this ledger can hold exactly"))
}

/// A JSON number as an exact decimal. Strings, even numeric ones, are refused.
pub fn amount<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    decimal_from_number(&n).map_err(D::Error::custom)
}

pub fn optional_amount<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    Option::<serde_json::Number>::deserialize(d)?.map(|n| decimal_from_number(&n).map_err(D::Error::custom)).transpose()
}

pub fn serialize_amount<S: Serializer>(amount: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    let number = serde_json::Number::from_str(&amount.normalize().to_string()).map_err(serde::ser::Error::custom)?;
    serde::Serialize::serialize(&number, s)
}

fn date_from_str<E: serde::de::Error>(s: &str) -> Result<DateTime<Utc>, E> {
    parse_date(s).ok_or_else(|| E::custom(format!("{s:?} is not a date (2025-01-01) or an RFC 3339 instant")))
}

pub fn date<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    date_from_str(&String::deserialize(d)?)
}

/// A nullable date in a PATCH: absent (leave), null (clear) or a date.
pub fn patch_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<DateTime<Utc>>>, D::Error> {
    Option::<String>::deserialize(d)?.map(|s| date_from_str(&s)).transpose().map(Some)
}

pub fn optional_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    Option::<String>::deserialize(d)?.map(|s| date_from_str(&s)).transpose()
}

/// For PATCH fields that may be cleared: absent → None, null → Some(None).
pub fn patch<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

pub fn serialize_optional_amount<S: Serializer>(amount: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
    match amount {
        Some(amount) => serialize_amount(amount, s),
        None => s.serialize_none(),
    }
}

/// An amount as an exact JSON number value (the text of the decimal, unrounded).
pub fn amount_value(amount: &Decimal) -> serde_json::Value {
    serde_json::Number::from_str(&amount.to_string()).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct A {
        #[serde(deserialize_with = "amount")]
        v: Decimal,
    }

    #[test]
    fn amounts_are_exact_numbers_never_strings() {
        let a: A = serde_json::from_str(r#"{"v": 0.1}"#).unwrap();
        assert_eq!(a.v.to_string(), "0.1");
        let a: A = serde_json::from_str(r#"{"v": 12345678901234567890.25}"#).unwrap();
        assert_eq!(a.v.to_string(), "12345678901234567890.25");
        let a: A = serde_json::from_str(r#"{"v": 1.5e2}"#).unwrap();
        assert_eq!(a.v, Decimal::from(150));
        assert!(serde_json::from_str::<A>(r#"{"v": "1"}"#).is_err());
        assert_eq!(serde_json::to_string(&amount_value(&Decimal::new(1050, 2))).unwrap(), "10.50");
    }

    #[test]
    fn dates_in_two_shapes() {
        assert_eq!(format_date(&parse_date("2025-01-01").unwrap()), "2025-01-01T00:00:00Z");
        assert_eq!(format_date(&parse_date("2025-01-01T08:30:00+02:00").unwrap()), "2025-01-01T06:30:00Z");
        assert!(parse_date("01/02/2025").is_none());
    }
}
