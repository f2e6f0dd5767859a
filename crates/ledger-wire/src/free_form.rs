//! The free-form objects of a credit (`appliedTo`, `availableTo`, `expiry`,
//! `extensions`), kept as sent but bounded: at most [`FREE_FORM_DEPTH_MAX`] levels deep
//! and [`FREE_FORM_BYTES_MAX`] bytes of compact JSON, and no control character (NUL
//! above all: Postgres jsonb cannot hold `\u0000`) in a key or a string.
//!
//! Unbounded, an object nested ~125 levels deep was accepted and its stored event,
//! which wraps it in a few levels more, could no longer be read (serde_json stops at
//! 128), poisoning the credit. The object is first taken as raw JSON text, which serde
//! reads without recursion, so that even a far deeper one is refused by this rule,
//! naming its field, rather than as malformed JSON.

use ledger_domain::JsonObject;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::decode::ruled;
use crate::limits::{FREE_FORM_BYTES_MAX, FREE_FORM_DEPTH_MAX};
use crate::text::{self, Kind};

/// An optional free-form object (create, PUT).
pub fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<JsonObject>, D::Error> {
    Option::<Box<RawValue>>::deserialize(d)?.map(|raw| bounded(&raw)).transpose()
}

/// A free-form object in a PATCH: absent (leave), null (clear) or an object.
pub fn patch<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<JsonObject>>, D::Error> {
    optional(d).map(Some)
}

fn bounded<E: serde::de::Error>(raw: &RawValue) -> Result<JsonObject, E> {
    let depth = depth(raw.get());
    if depth > FREE_FORM_DEPTH_MAX {
        return Err(ruled(
            "too-deep",
            "",
            format!(
                "nests {depth} levels deep; a free-form object may nest at most {FREE_FORM_DEPTH_MAX} \
                 (the object itself is level 1, each object or array inside it one more)"
            ),
        ));
    }
    // Within the depth bound, serde_json's recursion limit is far away.
    let object: JsonObject = serde_json::from_str(raw.get()).map_err(|e| {
        let message = e.to_string();
        E::custom(message.rsplit_once(" at line ").map_or(message.as_str(), |(m, _)| m))
    })?;
    let size = serde_json::to_vec(&object).map_err(E::custom)?.len();
    if size > FREE_FORM_BYTES_MAX {
        return Err(ruled(
            "too-large",
            "",
            format!("is {size} bytes as compact JSON; a free-form object may be at most {FREE_FORM_BYTES_MAX}"),
        ));
    }
    for (key, value) in &object {
        check_text(key, value, &printable(key))?;
    }
    Ok(object)
}

/// Refuses a control character in `key` or anywhere in `value`, at `path` below the field.
fn check_text<E: serde::de::Error>(key: &str, value: &Value, path: &str) -> Result<(), E> {
    let refuse = |what: &str, c: char| {
        ruled(
            "control-character",
            path,
            format!("{what} contains the control character U+{:04X}; only tab, line feed and carriage return are allowed in a free-form object", c as u32),
        )
    };
    if let Some(c) = key.chars().find(|c| text::forbidden(*c, Kind::Prose)) {
        return Err(refuse("the key", c));
    }
    match value {
        Value::String(s) => match s.chars().find(|c| text::forbidden(*c, Kind::Prose)) {
            Some(c) => Err(refuse("the text", c)),
            None => Ok(()),
        },
        Value::Array(items) => {
            items.iter().enumerate().try_for_each(|(i, item)| check_text("", item, &format!("{path}[{i}]")))
        }
        Value::Object(fields) => {
            fields.iter().try_for_each(|(k, v)| check_text(k, v, &format!("{path}.{}", printable(k))))
        }
        _ => Ok(()),
    }
}

/// A key as a path names it: its control characters (the key may be what is refused)
/// written as `\u{1f}`, so that the path itself holds none.
fn printable(key: &str) -> String {
    key.chars().map(|c| if c.is_control() { c.escape_unicode().to_string() } else { c.to_string() }).collect()
}

/// How deep `json` (valid JSON text) nests: 1 for `{}` or `[]`, one more for each
/// object or array inside. Counted on the text, so any depth can be measured.
fn depth(json: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for b in json.bytes() {
        match (in_string, b) {
            (true, _) if escaped => escaped = false,
            (true, b'\\') => escaped = true,
            (true, b'"') => in_string = false,
            (true, _) => {}
            (false, b'"') => in_string = true,
            (false, b'{' | b'[') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (false, b'}' | b']') => depth = depth.saturating_sub(1),
            (false, _) => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `{"a":{"a":…{}}}`, `levels` deep.
    pub fn nested(levels: usize) -> String {
        "{\"a\":".repeat(levels - 1) + "{}" + &"}".repeat(levels - 1)
    }

    #[test]
    fn depth_counts_objects_and_arrays_but_not_brackets_in_strings() {
        assert_eq!(depth("{}"), 1);
        assert_eq!(depth(r#"{"a":[{"b":"{[\"{"}]}"#), 3);
        assert_eq!(depth(r#"{"a":"\\","b":{}}"#), 2);
        assert_eq!(depth(&nested(FREE_FORM_DEPTH_MAX)), FREE_FORM_DEPTH_MAX);
    }

    fn refused(field: &str, value: &str) -> (String, &'static str, String) {
        let body = format!(r#"{{"creditType":"quantity","startDate":"2025-01-01","totalAmount":1,"{field}":{value}}}"#);
        let r = crate::decode::<crate::BillingCreditBody>(body.as_bytes()).unwrap_err();
        (r.field, r.rule, r.message)
    }

    fn accepted(field: &str, value: &str) -> crate::BillingCreditBody {
        let body = format!(r#"{{"creditType":"quantity","startDate":"2025-01-01","totalAmount":1,"{field}":{value}}}"#);
        crate::decode::<crate::BillingCreditBody>(body.as_bytes()).unwrap()
    }

    #[test]
    fn past_a_bound_is_refused_naming_the_field_the_rule_and_the_bound() {
        let (field, rule, message) = refused("appliedTo", &nested(FREE_FORM_DEPTH_MAX + 1));
        assert_eq!((field.as_str(), rule), ("appliedTo", "too-deep"));
        assert!(message.contains(&FREE_FORM_DEPTH_MAX.to_string()), "{message}");
        // Far past serde_json's recursion limit: the same refusal, not malformed JSON.
        assert_eq!(refused("expiry", &nested(5_000)).1, "too-deep");
        let pad = |n: usize| format!(r#"{{"pad":"{}"}}"#, "x".repeat(n - 10));
        assert_eq!(pad(FREE_FORM_BYTES_MAX).len(), FREE_FORM_BYTES_MAX);
        let (field, rule, message) = refused("extensions", &pad(FREE_FORM_BYTES_MAX + 1));
        assert_eq!((field.as_str(), rule), ("extensions", "too-large"));
        assert!(message.contains(&FREE_FORM_BYTES_MAX.to_string()), "{message}");
        // Measured as compact JSON: spaces sent do not count.
        let spaced = pad(FREE_FORM_BYTES_MAX).replace(':', " :  ");
        assert_eq!(
            accepted("extensions", &spaced).extensions.unwrap()["pad"].as_str().unwrap().len(),
            FREE_FORM_BYTES_MAX - 10
        );
        assert!(accepted("appliedTo", &nested(FREE_FORM_DEPTH_MAX)).applied_to.is_some());
        assert!(accepted("appliedTo", "null").applied_to.is_none());
        assert_eq!(refused("appliedTo", "5").1, "invalid-type");
        assert_eq!(refused("appliedTo", "[]").1, "invalid-type");
    }

    #[test]
    fn control_characters_are_refused_at_their_path() {
        let r = refused("appliedTo", r#"{"a\u0000":1}"#);
        assert_eq!((r.0.as_str(), r.1), ("appliedTo.a\\u{0}", "control-character"));
        let r = refused("availableTo", r#"{"a":{"b":[1,"\u001f"]}}"#);
        assert_eq!((r.0.as_str(), r.1), ("availableTo.a.b[1]", "control-character"));
        let kept = accepted("expiry", r#"{"note":"tab\tand\r\nbreaks","é":"✓"}"#).expiry.unwrap();
        assert_eq!(kept["note"], "tab\tand\r\nbreaks");
    }

    #[test]
    fn the_schema_states_the_bounds() {
        use utoipa::PartialSchema;
        let schema = serde_json::to_string(&crate::BillingCreditPatchBody::schema()).unwrap();
        assert!(schema.contains(&format!("at most {FREE_FORM_DEPTH_MAX} levels deep")), "{schema}");
        assert!(schema.contains(&format!("at most {FREE_FORM_BYTES_MAX} bytes")), "{schema}");
    }
}
