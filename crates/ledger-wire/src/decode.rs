//! Decoding a JSON body into a typed message, with a refusal that names the field.

use std::fmt::Display;

use serde::de::DeserializeOwned;

/// Why a body did not decode: the JSON path of the field at fault (`totalAmount`,
/// `currency.code`, or `body` for malformed JSON), the rule, and serde's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRefusal {
    pub field: String,
    /// `malformed-json`, `required`, `unknown-field`, `invalid-type`, `invalid-value`, or
    /// one of the [`RULES`] a field's own deserializer raises.
    pub rule: &'static str,
    pub message: String,
}

/// Decodes `bytes` as a `T`, all of it (trailing data is malformed JSON).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FieldRefusal> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| refusal(&e))?;
    de.end().map_err(|e| FieldRefusal {
        field: "body".into(),
        rule: "malformed-json",
        message: without_position(&e.to_string()),
    })?;
    Ok(value)
}

/// The rules a field's deserializer raises on its own (see [`ruled`]).
pub const RULES: &[&str] = &["too-deep", "too-large", "too-long", "control-character", "not-nullable"];

/// Separates the parts of a [`ruled`] message. A unit separator: no message of serde's
/// and none of ours contains one (text with control characters is what gets refused).
const MARK: char = '\u{1f}';

/// A deserializer's refusal under a rule of its own, `below` the field being decoded
/// (`note`, or `a.b` inside a free-form object; empty for the field itself). serde only
/// carries a message from a deserializer to [`decode`], so the rule and the path travel
/// in it, marked, and [`decode`] takes them out again.
pub(crate) fn ruled<E: serde::de::Error>(rule: &'static str, below: &str, message: impl Display) -> E {
    debug_assert!(RULES.contains(&rule));
    E::custom(format_args!("{MARK}{rule}{MARK}{below}{MARK}{message}"))
}

fn without_position(message: &str) -> String {
    // serde appends " at line 1 column 5"; the field path says more.
    message.rsplit_once(" at line ").map_or(message, |(text, _)| text).to_string()
}

fn refusal(e: &serde_path_to_error::Error<serde_json::Error>) -> FieldRefusal {
    let inner = e.inner();
    let mut message = without_position(&inner.to_string());
    let mut field = e.path().to_string();
    if field == "." {
        field = String::new();
    }
    let quoted =
        |prefix: &str| message.strip_prefix(prefix).and_then(|rest| rest.split('`').next()).map(str::to_string);
    let rule = if let Some((rule, below, text)) = unmark(&message) {
        field = join(&field, below);
        let text = text.to_string();
        message = text;
        rule
    } else if inner.is_syntax() || inner.is_eof() {
        field = "body".into();
        "malformed-json"
    } else if let Some(missing) = quoted("missing field `") {
        field = join(&field, &missing);
        "required"
    } else if let Some(unknown) = quoted("unknown field `") {
        // serde_path_to_error already ends the path with the unknown key.
        if field.rsplit('.').next() != Some(unknown.as_str()) {
            field = join(&field, &unknown);
        }
        "unknown-field"
    } else if message.starts_with("invalid type") {
        "invalid-type"
    } else {
        "invalid-value"
    };
    if field.is_empty() {
        field = "body".into();
    }
    FieldRefusal { field, rule, message }
}

/// The rule, the path below the field and the text of a [`ruled`] message.
fn unmark(message: &str) -> Option<(&'static str, &str, &str)> {
    let mut parts = message.strip_prefix(MARK)?.splitn(3, MARK);
    let (rule, below, text) = (parts.next()?, parts.next()?, parts.next()?);
    Some((RULES.iter().find(|r| **r == rule).copied().unwrap_or("invalid-value"), below, text))
}

fn join(path: &str, field: &str) -> String {
    if field.is_empty() {
        path.to_string()
    } else if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        inner: Option<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        code: String,
    }

    fn refused(json: &str) -> (String, &'static str) {
        let r = decode::<Body>(json.as_bytes()).unwrap_err();
        (r.field, r.rule)
    }

    #[test]
    fn each_refusal_names_its_field_and_rule() {
        assert_eq!(refused("{\"name\": "), ("body".into(), "malformed-json"));
        assert_eq!(refused("{\"name\": \"a\"} x"), ("body".into(), "malformed-json"));
        assert_eq!(refused("{}"), ("name".into(), "required"));
        assert_eq!(refused("{\"name\": \"a\", \"colour\": 1}"), ("colour".into(), "unknown-field"));
        assert_eq!(refused("{\"name\": 5}"), ("name".into(), "invalid-type"));
        assert_eq!(refused("{\"name\": \"a\", \"inner\": {\"code\": 5}}"), ("inner.code".into(), "invalid-type"));
        assert_eq!(refused("{\"name\": \"a\", \"inner\": {}}"), ("inner.code".into(), "required"));
    }
}
