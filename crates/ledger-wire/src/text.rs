//! Text fields: bounded in length, and free of control characters, which Postgres cannot
//! store (NUL), logs and terminals misread, and no caller means to send.
//!
//! Two kinds: a *line* (reference, a code, a coding's system and display, an actor) has
//! no control character at all; *prose* (note, reason) may hold tabs and line breaks.

use serde::{Deserialize, Deserializer};

use crate::decode::ruled;
use crate::limits::TEXT_CHARS_MAX;

/// Which control characters a text may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Line,
    Prose,
}

/// Why `text` is refused as a `kind`, if it is: (rule, message).
pub fn refusal(text: &str, kind: Kind) -> Option<(&'static str, String)> {
    if let Some(c) = text.chars().find(|c| forbidden(*c, kind)) {
        let allowed = match kind {
            Kind::Line => "none is allowed here",
            Kind::Prose => "only tab, line feed and carriage return are allowed here",
        };
        return Some(("control-character", format!("contains the control character U+{:04X}; {allowed}", c as u32)));
    }
    if text.chars().count() > TEXT_CHARS_MAX {
        return Some(("too-long", format!("is longer than {TEXT_CHARS_MAX} characters")));
    }
    None
}

/// Whether `c` is a control character (Unicode Cc: C0, DEL, C1) a `kind` may not hold.
pub fn forbidden(c: char, kind: Kind) -> bool {
    c.is_control() && !(kind == Kind::Prose && matches!(c, '\t' | '\n' | '\r'))
}

/// Refuses `text` as a `kind`, from inside a deserializer, at the field it decodes.
pub(crate) fn check<E: serde::de::Error>(text: String, kind: Kind) -> Result<String, E> {
    match refusal(&text, kind) {
        Some((rule, message)) => Err(ruled(rule, "", message)),
        None => Ok(text),
    }
}

pub fn line<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    check(String::deserialize(d)?, Kind::Line)
}

pub fn optional_line<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<String>::deserialize(d)?.map(|t| check(t, Kind::Line)).transpose()
}

pub fn prose<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    check(String::deserialize(d)?, Kind::Prose)
}

pub fn optional_prose<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<String>::deserialize(d)?.map(|t| check(t, Kind::Prose)).transpose()
}

/// A line as a value of its own, for visitors that decode a map's values one by one.
#[derive(Debug)]
pub(crate) struct Line(pub String);

impl<'de> Deserialize<'de> for Line {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        line(d).map(Line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_hold_no_control_character_and_prose_only_layout() {
        assert_eq!(refusal("visit-42", Kind::Line), None);
        assert_eq!(refusal("a\tb\r\nc", Kind::Prose), None);
        for c in ['\0', '\u{1}', '\u{1b}', '\u{7f}', '\u{85}', '\t', '\n'] {
            assert_eq!(refusal(&format!("a{c}"), Kind::Line).map(|r| r.0), Some("control-character"), "{c:?}");
        }
        for c in ['\0', '\u{1b}', '\u{7f}', '\u{9f}'] {
            assert_eq!(refusal(&format!("a{c}"), Kind::Prose).map(|r| r.0), Some("control-character"), "{c:?}");
        }
        assert_eq!(refusal(&"é".repeat(TEXT_CHARS_MAX), Kind::Line), None);
        assert_eq!(refusal(&"é".repeat(TEXT_CHARS_MAX + 1), Kind::Prose).map(|r| r.0), Some("too-long"));
    }

    #[test]
    fn the_schemas_state_the_length_bound() {
        use utoipa::PartialSchema;
        let bound = format!("\"maxLength\":{TEXT_CHARS_MAX}");
        for schema in [crate::UseBody::schema(), crate::CodingDto::schema(), crate::ReverseBody::schema()] {
            let schema = serde_json::to_string(&schema).unwrap();
            assert!(schema.contains(&bound), "{schema}");
        }
    }
}
