//! Every problem type and rule name the API can return, with its meaning: the catalogue
//! behind the `type` URI of every problem (`/problems/{name}`, see `routes::problems`).
//! A test below reads the sources and fails when a rule is returned that is not listed.

/// Where the problem-type pages are served; a problem's `type` is this plus its name.
pub const PROBLEMS_PATH: &str = "/problems";

/// How a client meets a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// The problem's `type` names it (`/problems/{status}` or `/problems/{rule}`).
    ProblemType,
    /// In `errors[].rule` of a 400 (type `/problems/400`) or 412 (type `/problems/412`).
    FieldRule,
    /// Only on the NATS rejection subject (REST answers it otherwise, as said).
    NatsOnly,
}

/// One entry of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub name: &'static str,
    pub status: u16,
    pub channel: Channel,
    pub meaning: &'static str,
}

const fn rule(name: &'static str, status: u16, channel: Channel, meaning: &'static str) -> Rule {
    Rule { name, status, channel, meaning }
}

use Channel::*;

/// The problem types named by status: their `errors[].rule` (if any) says more.
pub const STATUS_TYPES: &[Rule] = &[
    rule("400", 400, ProblemType, "Malformed input: a field, query parameter or header broke a decoding rule; `errors` names each field and its rule (below)."),
    rule("401", 401, ProblemType, "The bearer token is missing, expired, not yet valid, forged, or fails the audience/issuer checks; `detail` says which."),
    rule("403", 403, ProblemType, "The token is valid but does not grant this site or the scope this endpoint needs (billing-credit:read, :write or :audit)."),
    rule("404", 404, ProblemType, "No such credit in this site (or it was deleted), or no such path."),
    rule("408", 408, ProblemType, "The request line, headers or body did not arrive in time; the connection is closed."),
    rule("412", 412, ProblemType, "If-Match named another version than the credit's current one; `errors[0].rule` is version-mismatch."),
    rule("413", 413, ProblemType, "The request body is larger than the API accepts."),
    rule("415", 415, ProblemType, "The request body is not application/json."),
    rule("500", 500, ProblemType, "An internal error (logged with the request id), or stored data of this credit that cannot be read back (named, for an operator to repair)."),
    rule("503", 503, ProblemType, "The store is unavailable; retry after Retry-After seconds."),
];

/// Every rule name, by the status it comes with.
pub const RULES: &[Rule] = &[
    // 400: decoding rules, in errors[].rule (ledger-wire and the query parsers).
    rule("malformed-json", 400, FieldRule, "The body is not well-formed JSON."),
    rule("required", 400, FieldRule, "A required field or query parameter is missing."),
    rule("unknown-field", 400, FieldRule, "The body has a field this endpoint does not know (input is strict)."),
    rule("invalid-type", 400, FieldRule, "A field has the wrong JSON type (a string where a number is expected, …)."),
    rule("invalid-value", 400, FieldRule, "A field's value is not acceptable: not an exact amount (over 28 decimal places or 96 bits), a bad date, an unknown enum value, …"),
    rule("not-nullable", 400, FieldRule, "null was given for a field that cannot be cleared (creditType, startDate, isActive, an amount)."),
    rule("too-long", 400, FieldRule, "A text field is longer than 1000 characters."),
    rule("too-many", 400, FieldRule, "A list holds more entries than allowed (the message says how many)."),
    rule("invalid-url", 400, FieldRule, "A webhook url is not an absolute http or https URL with a host."),
    rule("out-of-range", 400, FieldRule, "A number is outside its allowed range (the message gives the bounds)."),
    rule("invalid-unit", 400, FieldRule, "A unit code is empty, too long or holds a control character."),
    rule("too-deep", 400, FieldRule, "A free-form object (appliedTo, availableTo, expiry, extensions) nests more than 32 levels."),
    rule("too-large", 400, FieldRule, "A free-form object takes more than 16384 bytes as compact JSON."),
    rule("control-character", 400, FieldRule, "A text, free-form value or query parameter holds a control character (note and reason may hold tabs and line breaks)."),
    rule("occurred-at-in-future", 400, FieldRule, "occurredAt lies more than 300 s ahead of the ledger's clock."),
    rule("unreadable", 400, FieldRule, "The request body could not be read from the connection."),
    rule("path-mismatch", 400, FieldRule, "The body's billingCreditId differs from the one in the path."),
    rule("invalid-uuid", 400, FieldRule, "A path segment or parameter is not a UUID."),
    rule("invalid-instant", 400, FieldRule, "A date or instant parameter is not RFC 3339 (or a date, midnight UTC; year 0001 to 9999, no leap second)."),
    rule("invalid-cursor", 400, FieldRule, "A cursor parameter is not one this API returned."),
    rule("invalid-etag", 400, FieldRule, "If-Match is not an ETag of this API (\"<version>\")."),
    rule("invalid-idempotency-key", 400, FieldRule, "Idempotency-Key is empty, too long, or holds characters other than visible ASCII."),
    rule("invalid-read-after", 400, FieldRule, "Read-After is not a Ledger-Position this API returned (a positive integer)."),
    rule("malformed-query", 400, FieldRule, "The query string cannot be decoded."),
    rule("unknown-parameter", 400, FieldRule, "A query parameter this endpoint does not take."),
    rule("repeated", 400, FieldRule, "A query parameter given more than once (where only one is allowed)."),
    rule("one-of", 400, FieldRule, "A parameter must be one of a fixed set (sortBy, sortOrder, creditType, type); the message lists them."),
    rule("boolean", 400, FieldRule, "A parameter must be true or false."),
    rule("range", 400, FieldRule, "A number parameter is not a whole number within its bounds (page, pageSize, limit, …)."),
    rule("exclusive", 400, FieldRule, "Two parameters that exclude each other were both given (measurementUnit and currency)."),
    // 412
    rule("version-mismatch", 412, FieldRule, "If-Match named a version the credit is no longer (or not yet) at: read it again and retry."),
    // 409: the problem type is the rule.
    rule("credit-already-exists", 409, ProblemType, "A credit with this id exists with a different body (the same body again returns the existing credit)."),
    rule("credit-already-expired", 409, ProblemType, "The credit was expired already; expiry happens once."),
    rule("idempotency-key-reused", 409, ProblemType, "This Idempotency-Key was used for a different request body."),
    rule("concurrent-change", 409, ProblemType, "The credit was changed concurrently; retry."),
    rule("too-many-credits", 409, ProblemType, "The member has more credits than one request may fold at once."),
    rule("too-many-webhooks", 409, ProblemType, "The site has as many webhook endpoints as it may have; delete one first."),
    // 422: business rules, the problem type is the rule.
    rule("amount-negative", 422, ProblemType, "An amount must not be negative."),
    rule("amount-not-positive", 422, ProblemType, "An amount must be greater than zero."),
    rule("amount-too-large", 422, ProblemType, "An amount exceeds the largest the ledger accepts."),
    rule("amount-not-whole-units", 422, ProblemType, "A quantity credit counts whole units only."),
    rule("amount-finer-than-minor-unit", 422, ProblemType, "A monetary amount has more decimal places than its currency's minor unit."),
    rule("currency-required", 422, ProblemType, "A monetary credit needs a currency with an ISO 4217 code."),
    rule("currency-unknown", 422, ProblemType, "The currency code is not a supported ISO 4217 code."),
    rule("used-plus-wasted-exceeds-total", 422, ProblemType, "usedAmount + wastedAmount must not exceed totalAmount."),
    rule("remaining-mismatch", 422, ProblemType, "remainingAmount, when given, must equal totalAmount − usedAmount − wastedAmount."),
    rule("end-before-start", 422, ProblemType, "endDate must not be before startDate."),
    rule("credit-inactive", 422, ProblemType, "The credit is not active, so it cannot be spent."),
    rule("credit-not-started", 422, ProblemType, "The credit cannot be used before its startDate."),
    rule("credit-ended", 422, ProblemType, "The credit cannot be used at or after its endDate."),
    rule("credit-expired", 422, ProblemType, "The credit has expired; what remained was written off."),
    rule("insufficient-balance", 422, ProblemType, "More was requested than remains (consume: across the member's credits, unless allowPartial)."),
    rule("event-not-reversible", 422, ProblemType, "The event named is not a use or waste of this credit with anything left to reverse."),
    rule("reversal-exceeds-movement", 422, ProblemType, "The reversal is larger than what is left to reverse of that event."),
    rule("adjustment-zero", 422, ProblemType, "A total adjustment's delta must not be zero."),
    // The NATS rejection subject only.
    rule("credit-not-found", 404, NatsOnly, "The command names a credit that does not exist (REST answers 404, type /problems/404)."),
    rule("invalid-site-id", 400, NatsOnly, "The command's subject does not end in a site UUID."),
    rule("unknown-command-type", 400, NatsOnly, "The command's `type` is not one of the command types."),
    rule("append-rejected", 409, NatsOnly, "The store rejected the append (a stream moved on or an event id is taken)."),
    rule("version-conflict", 409, NatsOnly, "The command's expected version is not the credit's (REST: 412 version-mismatch)."),
    rule("stored-data-corrupt", 500, NatsOnly, "Stored data of this credit cannot be read back; an operator repairs it (REST: 500)."),
    rule("store-unavailable", 503, NatsOnly, "The store stayed unavailable through the command's last delivery; the intake gave up on it (REST: 503)."),
    rule("store-refused", 422, NatsOnly, "The database itself refused the command (a rule of its own); not retried."),
];

/// The entry a problem-type name (a status or a rule) stands for.
pub fn find(name: &str) -> Option<&'static Rule> {
    STATUS_TYPES.iter().chain(RULES).find(|r| r.name == name)
}

/// The `type` URI of a problem: a path on this server, resolvable against the request.
pub fn type_uri(name: &str) -> String {
    format!("{PROBLEMS_PATH}/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// String literals that follow `needle` (after `skip_args` arguments), in every Rust
    /// file under `dir`.
    fn literals_after(dir: &Path, needle: &str, skip_args: usize, found: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                literals_after(&path, needle, skip_args, found);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // Unit tests at the end of a file assert on rules; only the code above counts.
            let code = text.split("#[cfg(test)]").next().unwrap();
            for (at, _) in code.match_indices(needle) {
                let mut rest = &code[at + needle.len()..];
                for _ in 0..skip_args {
                    rest = &rest[rest.find(',').map_or(rest.len(), |i| i + 1)..];
                }
                let rest = rest.trim_start();
                if let Some(literal) = rest.strip_prefix('"').and_then(|r| r.split('"').next()) {
                    found.push((literal.to_string(), path.display().to_string()));
                }
            }
        }
    }

    #[test]
    fn every_rule_the_code_returns_is_listed_once() {
        let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut found = Vec::new();
        for krate in ["ledger-http", "ledger-wire", "ledger-domain", "ledger-nats", "ledger-store"] {
            let src = crates.join(krate).join("src");
            literals_after(&src, "bad_field(", 1, &mut found);
            literals_after(&src, "rule: \"", 0, &mut found);
            literals_after(&src, "Refusal::new(", 0, &mut found);
            literals_after(&src, "ruled(", 0, &mut found);
        }
        for name in ledger_wire::RULES.iter().chain(&["required", "unknown-field", "invalid-type", "invalid-value"]) {
            found.push((name.to_string(), "ledger-wire decode".into()));
        }
        assert!(found.len() > 30, "the scan finds the rules: {found:?}");
        for (name, file) in &found {
            if name.is_empty() || name.contains('{') {
                continue;
            }
            assert!(find(name).is_some(), "rule {name:?} (returned in {file}) is not in the catalogue");
        }
        for (i, r) in STATUS_TYPES.iter().chain(RULES).enumerate() {
            assert!(
                STATUS_TYPES.iter().chain(RULES).skip(i + 1).all(|other| other.name != r.name),
                "{} is listed twice",
                r.name
            );
        }
    }

    #[test]
    fn every_domain_rule_is_listed() {
        use ledger_domain::DomainError as E;
        let (d, id, t) = (rust_decimal::Decimal::ONE, uuid::Uuid::nil(), chrono::Utc::now());
        let all = [
            E::NotFound,
            E::AlreadyExists,
            E::NegativeAmount { field: "a" },
            E::AmountNotPositive { field: "a" },
            E::AmountTooLarge { field: "a", max: d },
            E::NotWholeUnits { field: "a" },
            E::TooPrecise { field: "a", max_decimal_places: 2 },
            E::CurrencyRequired,
            E::UnknownCurrency { code: "X".into() },
            E::OverCommitted { committed: d, total: d },
            E::RemainingMismatch { given: d, expected: d },
            E::EndBeforeStart,
            E::Inactive,
            E::NotStarted { start_date: t },
            E::Ended { end_date: t },
            E::Expired,
            E::InsufficientBalance { requested: d, remaining: d },
            E::AlreadyExpired,
            E::NotReversible { event_id: id },
            E::ReversalExceeds { event_id: id, requested: d, left: d },
            E::ZeroAdjustment,
        ];
        for e in &all {
            // A new variant must be added above (and to the catalogue): this match is exhaustive.
            match e {
                E::NotFound | E::AlreadyExists | E::NegativeAmount { .. } | E::AmountNotPositive { .. } => {}
                E::AmountTooLarge { .. } | E::NotWholeUnits { .. } | E::TooPrecise { .. } | E::CurrencyRequired => {}
                E::UnknownCurrency { .. } | E::OverCommitted { .. } | E::RemainingMismatch { .. } => {}
                E::EndBeforeStart | E::Inactive | E::NotStarted { .. } | E::Ended { .. } | E::Expired => {}
                E::InsufficientBalance { .. } | E::AlreadyExpired | E::NotReversible { .. } => {}
                E::ReversalExceeds { .. } | E::ZeroAdjustment => {}
            }
            assert!(find(e.rule()).is_some(), "{} is not in the catalogue", e.rule());
        }
    }
}
