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
    Option::<serde_json::Number>::deserialize(d)?
        .map(|n| decimal_from_number(&n).map_err(D::Error::custom))
        .transpose()
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
