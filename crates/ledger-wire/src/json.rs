//! How values look on the wire: amounts as exact JSON numbers (never strings, never
//! floats), dates in as `2025-01-01` or RFC 3339 and out as `2025-01-01T00:00:00Z`,
//! audit timestamps with milliseconds.

use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, Timelike, Utc};
use rust_decimal::Decimal;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serializer};

use crate::decode::ruled;

/// Parses `2025-01-01` (midnight UTC) or an RFC 3339 instant, with a year of exactly four
/// digits, 0001 to 9999 (also once in UTC), and no leap second. chrono alone takes signed
/// and five-digit years (`+10000-01-01`) and `23:59:60`, which neither the stores nor
/// most clients can take back.
pub fn parse_date(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    if b.len() < 10 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return None;
    }
    let at = if b.len() == 10 {
        let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
        if !(digits(5..7) && b[7] == b'-' && digits(8..10)) {
            return None;
        }
        NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?.and_hms_opt(0, 0, 0)?.and_utc()
    } else {
        DateTime::parse_from_rfc3339(s).ok()?.with_timezone(&Utc)
    };
    // chrono keeps a leap second as a nanosecond of 1e9 or more.
    let leap_second = at.nanosecond() >= 1_000_000_000;
    (!leap_second && (1..=9999).contains(&at.year())).then_some(at)
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
    crate::exact::decimal(n.as_str())
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
    parse_date(s).ok_or_else(|| E::custom(format!("{s:?} {DATE_RULE}")))
}

/// What a date must be, for refusals.
pub const DATE_RULE: &str =
    "is not a date (2025-01-01) or an RFC 3339 instant with a year from 0001 to 9999 and no leap second";

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

/// For PATCH fields a credit always has (creditType, startDate, isActive, the amounts):
/// absent → None (leave), a value → Some; null is refused, since there is nothing to
/// clear them to (serde alone would read null as absent and silently leave the field).
pub fn required<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(d)?.map(Some).ok_or_else(not_nullable)
}

/// [`required`] for a date.
pub fn required_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    Option::<String>::deserialize(d)?.ok_or_else(not_nullable).and_then(|s| date_from_str(&s)).map(Some)
}

/// [`required`] for an amount.
pub fn required_amount<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    let n = Option::<serde_json::Number>::deserialize(d)?.ok_or_else(not_nullable)?;
    decimal_from_number(&n).map(Some).map_err(D::Error::custom)
}

fn not_nullable<E: serde::de::Error>() -> E {
    ruled("not-nullable", "", "a credit always has this field: send a value, or leave it out to keep it")
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

/// The canonical form of a JSON text, or None when it is not JSON: no whitespace, keys
/// sorted at every level, strings written the one way serde_json writes them, numbers
/// with the text they were sent with (arbitrary_precision). Two bodies that differ only
/// in key order, spacing or string escapes have the same canonical form.
pub fn canonical(json: &[u8]) -> Option<Vec<u8>> {
    let value: serde_json::Value = serde_json::from_slice(json).ok()?;
    let mut out = Vec::with_capacity(json.len());
    write_canonical(&value, &mut out);
    Some(out)
}

fn write_canonical(value: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match value {
        Value::Object(fields) => {
            // serde_json's map is sorted unless a crate of the build turns on its
            // preserve_order feature; sort here so that the fingerprint never depends on it.
            let mut entries: Vec<_> = fields.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, key).expect("a string serializes");
                out.push(b':');
                write_canonical(item, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(out, scalar).expect("a scalar serializes"),
    }
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

    #[test]
    fn dates_have_four_year_digits_from_0001_to_9999_and_no_leap_second() {
        for ok in ["0001-01-01", "9999-12-31", "9999-12-31T23:59:59.999Z", "2016-12-31T23:59:59Z"] {
            assert!(parse_date(ok).is_some(), "{ok}");
        }
        for bad in [
            "+10000-01-01",
            "-100000-01-01",
            "0000-01-01",
            "+2025-01-01",
            "-2025-01-01",
            "10000-01-01",
            "2025-1-01",
            "2025-01-1",
            "+2025-01-01T00:00:00Z",
            "0000-01-01T00:00:00Z",
            "2016-12-31T23:59:60Z",
            "2016-12-31T23:59:60.999999999Z",
            "9999-12-31T23:00:00-05:00",
            "0001-01-01T00:30:00+01:00",
        ] {
            assert!(parse_date(bad).is_none(), "{bad} was taken as {:?}", parse_date(bad));
        }
    }

    #[test]
    fn the_canonical_form_ignores_order_spacing_and_escapes_but_not_number_text() {
        let a = canonical(br#"{"b":[1,{"y":2,"x":"A"}],"a":1.50}"#).unwrap();
        let b = canonical(b" { \"a\" : 1.50 ,\n\"b\": [ 1, { \"x\": \"\\u0041\", \"y\": 2 } ] } ").unwrap();
        assert_eq!(String::from_utf8(a.clone()).unwrap(), r#"{"a":1.50,"b":[1,{"x":"A","y":2}]}"#);
        assert_eq!(a, b);
        assert_ne!(a, canonical(br#"{"a":1.5,"b":[1,{"x":"A","y":2}]}"#).unwrap());
        assert_eq!(canonical(b""), None);
    }

    #[test]
    fn a_field_every_credit_has_cannot_be_null() {
        #[derive(Debug, Deserialize)]
        struct Patch {
            #[serde(default, deserialize_with = "required_amount")]
            total: Option<Decimal>,
            #[serde(default, deserialize_with = "required")]
            active: Option<bool>,
            #[serde(default, deserialize_with = "required_date")]
            start: Option<DateTime<Utc>>,
        }
        let patch: Patch = crate::decode(br#"{"total": 2}"#).unwrap();
        assert_eq!((patch.total, patch.active, patch.start), (Some(Decimal::TWO), None, None));
        for field in ["total", "active", "start"] {
            let r = crate::decode::<Patch>(format!(r#"{{"{field}": null}}"#).as_bytes()).unwrap_err();
            assert_eq!((r.field.as_str(), r.rule), (field, "not-nullable"));
        }
    }
}
