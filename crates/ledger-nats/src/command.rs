//! The command message: what the wellness-plan engine publishes on
//! `{prefix}.commands.{siteId}`, and how it becomes a domain command.
//!
//! A message is one JSON object. Every command has the common fields
//!
//! | field | | |
//! |---|---|---|
//! | `commandId` | uuid, required | the idempotency key: a command is applied once, however often it is delivered |
//! | `type` | required | `issue`, `replace`, `patch`, `use`, `waste`, `expire`, `reverse`, `consume`, `adjust`, `activate`, `deactivate`, `delete` |
//! | `billingCreditId` | uuid | required, except for `consume` (where it is refused) |
//! | `actor` | string | who asked; default the service's configured actor |
//! | `occurredAt` | date or RFC 3339 | business time the command is judged at; default the time JetStream stored the message; at most 5 minutes ahead (`ledger_wire::check_occurred_at`, as on REST) |
//! | `correlationId`, `causationId` | uuid | carried onto the events |
//!
//! and the fields of its type: the body of the matching REST operation, decoded by the
//! same rules into the same domain command (`ledger_wire::Operation`):
//!
//! - `issue`: the REST create body (creditType, startDate, totalAmount, …).
//! - `replace`: the REST PUT body (the whole credit).
//! - `patch`: the REST PATCH body (the fields that change; `null` clears).
//! - `use`: amount, reference, note?
//! - `waste`: amount, reason
//! - `expire`: reason?
//! - `reverse`: eventId, amount?, reason?
//! - `adjust`: delta, reason?
//! - `activate`, `deactivate`, `delete`: reason?
//! - `consume`: wellnessPlanMembershipId, amount, creditType, currency | measurementUnit
//!   (a code or a coding), creditCategory?, wellnessPlanBenefitId?, reference, allowPartial?
//!
//! Unknown fields are refused, amounts are exact JSON numbers. The JSON Schema is
//! `docs/nats-commands.schema.json`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ledger_domain::{Command, ConsumeRequest};
use ledger_wire::{FieldRefusal, Operation, Request};
use serde::Deserialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::wire;

/// The largest command message accepted, in bytes (the REST body limit).
pub const COMMAND_BYTES_MAX: usize = 64 * 1024;
/// The longest actor name accepted.
pub const ACTOR_CHARS_MAX: usize = 255;

/// Every command type, as the `type` field names it: the operations of `ledger_wire`.
pub const COMMAND_TYPES: [&str; Operation::ALL.len()] = {
    let mut names = [""; Operation::ALL.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = Operation::ALL[i].name();
        i += 1;
    }
    names
};

/// Why a message was refused: the rule it broke, the field at fault, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub rule: String,
    pub field: Option<String>,
    pub message: String,
}

impl Refusal {
    pub fn new(rule: impl Into<String>, field: Option<&str>, message: impl Into<String>) -> Self {
        Refusal { rule: rule.into(), field: field.map(str::to_string), message: message.into() }
    }
}

impl From<FieldRefusal> for Refusal {
    fn from(r: FieldRefusal) -> Self {
        Refusal { rule: r.rule.into(), field: Some(r.field), message: r.message }
    }
}

impl From<&ledger_domain::DomainError> for Refusal {
    fn from(e: &ledger_domain::DomainError) -> Self {
        Refusal::new(e.rule(), e.field(), e.to_string())
    }
}

/// What a command does once parsed.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // one per message in flight: not worth a box
pub enum Action {
    /// One command on one credit.
    OnCredit { billing_credit_id: Uuid, command: Command },
    /// Spend across a member's credits.
    Consume(ConsumeRequest),
}

/// A valid command message.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedCommand {
    pub command_id: Uuid,
    pub site_id: Uuid,
    pub command_type: &'static str,
    pub action: Action,
    pub actor: Option<String>,
    pub occurred_at: Option<DateTime<Utc>>,
    pub correlation_id: Option<Uuid>,
    pub causation_id: Option<Uuid>,
}

/// What could be read of a message, even a refused one, to say which command a
/// rejection answers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    pub command_id: Option<Uuid>,
    pub site_id: Option<Uuid>,
    pub command_type: Option<String>,
    pub billing_credit_id: Option<Uuid>,
}

/// Reads a command message received on `subject` (`{prefix}.commands.{siteId}`).
/// `now` judges occurredAt's skew.
pub fn parse(
    prefix: &str,
    subject: &str,
    payload: &[u8],
    now: DateTime<Utc>,
) -> (Identity, Result<ParsedCommand, Refusal>) {
    let mut identity = Identity::default();
    let result = parse_into(&mut identity, prefix, subject, payload, now);
    (identity, result)
}

fn parse_into(
    identity: &mut Identity,
    prefix: &str,
    subject: &str,
    payload: &[u8],
    now: DateTime<Utc>,
) -> Result<ParsedCommand, Refusal> {
    let site_token = site_token(prefix, subject);
    identity.site_id = Uuid::parse_str(site_token).ok();
    if payload.len() > COMMAND_BYTES_MAX {
        return Err(Refusal::new("too-large", Some("body"), format!("a command is at most {COMMAND_BYTES_MAX} bytes")));
    }
    // Each field as raw JSON text, parsed only when decoded by its rules: a free-form
    // object nested past serde_json's recursion limit is then refused by its own rule
    // (too-deep, naming the field) rather than as malformed JSON.
    let mut fields: Fields = serde_json::from_slice(payload).map_err(|e| {
        if e.is_data() {
            Refusal::new("invalid-type", Some("body"), "a command is a JSON object")
        } else {
            Refusal::new("malformed-json", Some("body"), e.to_string().split(" at line ").next().unwrap_or_default())
        }
    })?;
    // Lenient first look, so that even a refusal names its command.
    let text_of = |key: &str| fields.get(key).and_then(|raw| serde_json::from_str::<String>(raw.get()).ok());
    let uuid_of = |key: &str| text_of(key).and_then(|s| Uuid::parse_str(&s).ok());
    identity.command_id = uuid_of("commandId");
    identity.billing_credit_id = uuid_of("billingCreditId");
    identity.command_type = text_of("type");

    let site_id = identity.site_id.ok_or_else(|| {
        Refusal::new(
            "invalid-site-id",
            Some("subject"),
            format!("{site_token:?} (the subject's last token) is not a site UUID"),
        )
    })?;
    let mut common = Fields::new();
    for key in Common::FIELDS {
        if let Some(v) = fields.remove(*key) {
            common.insert((*key).to_string(), v);
        }
    }
    let common: Common = ledger_wire::decode(&json_bytes(common))?;
    let operation = Operation::from_name(&common.command_type).ok_or_else(|| {
        Refusal::new(
            "unknown-command-type",
            Some("type"),
            format!("{:?} is not a command type; one of {}", common.command_type, COMMAND_TYPES.join(", ")),
        )
    })?;
    if let Some(actor) = &common.actor {
        // The actor is stored with every event: a NUL would fail the write on Postgres
        // (a store error, retried forever) instead of refusing the command.
        if actor.chars().any(char::is_control) {
            return Err(Refusal::new("control-character", Some("actor"), "actor holds a control character"));
        }
        if actor.trim().is_empty() || actor.chars().count() > ACTOR_CHARS_MAX {
            return Err(Refusal::new(
                "invalid-value",
                Some("actor"),
                format!("actor must be 1 to {ACTOR_CHARS_MAX} characters"),
            ));
        }
    }
    ledger_wire::check_occurred_at(common.occurred_at, now)?;
    if operation == Operation::Consume && common.billing_credit_id.is_some() {
        return Err(Refusal::new(
            "unknown-field",
            Some("billingCreditId"),
            "a consume names the membership (wellnessPlanMembershipId), not a credit",
        ));
    }
    let billing_credit_id = match operation {
        Operation::Consume => None,
        _ => Some(
            common
                .billing_credit_id
                .ok_or_else(|| Refusal::new("required", Some("billingCreditId"), "missing field `billingCreditId`"))?,
        ),
    };
    let action = match (operation.decode(&json_bytes(fields), now)?, billing_credit_id) {
        (Request::Consume(request), _) => Action::Consume(request),
        (Request::OnCredit(command), Some(billing_credit_id)) => Action::OnCredit { billing_credit_id, command },
        (Request::OnCredit(_), None) => unreachable!("only a consume has no credit"),
    };
    let command_type = operation.name();
    Ok(ParsedCommand {
        command_id: common.command_id,
        site_id,
        command_type,
        action,
        actor: common.actor,
        occurred_at: common.occurred_at,
        correlation_id: common.correlation_id,
        causation_id: common.causation_id,
    })
}

/// A message's fields, each as the JSON text it was sent as.
type Fields = BTreeMap<String, Box<RawValue>>;

/// A part of the message, to decode by the vocabulary's rules. Through bytes: every
/// value keeps its exact text on this path.
fn json_bytes(fields: Fields) -> Vec<u8> {
    serde_json::to_vec(&fields).expect("a JSON object serializes")
}

/// The subject's part after `{prefix}.commands.`: the site id, when well-formed.
pub fn site_token<'a>(prefix: &str, subject: &'a str) -> &'a str {
    subject
        .strip_prefix(prefix)
        .and_then(|s| s.strip_prefix(".commands."))
        .unwrap_or_else(|| subject.rsplit('.').next().unwrap_or(subject))
}

/// The fields every command has.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Common {
    command_id: Uuid,
    #[serde(rename = "type")]
    command_type: String,
    billing_credit_id: Option<Uuid>,
    actor: Option<String>,
    #[serde(default, deserialize_with = "wire::optional_date")]
    occurred_at: Option<DateTime<Utc>>,
    correlation_id: Option<Uuid>,
    causation_id: Option<Uuid>,
}

impl Common {
    const FIELDS: &'static [&'static str] =
        &["commandId", "type", "billingCreditId", "actor", "occurredAt", "correlationId", "causationId"];
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;

    use super::*;

    const SITE: &str = "11111111-1111-1111-1111-111111111111";
    const CMD: &str = "22222222-2222-2222-2222-222222222222";
    const CREDIT: &str = "33333333-3333-3333-3333-333333333333";

    fn run(body: &str) -> (Identity, Result<ParsedCommand, Refusal>) {
        parse("ahds.billing-credit", &format!("ahds.billing-credit.commands.{SITE}"), body.as_bytes(), Utc::now())
    }

    #[test]
    fn a_use_becomes_a_use_with_an_exact_amount() {
        let body = format!(
            r#"{{"commandId":"{CMD}","type":"use","billingCreditId":"{CREDIT}","amount":0.10,"reference":"visit-1"}}"#
        );
        let parsed = run(&body).1.unwrap();
        assert_eq!(parsed.command_id.to_string(), CMD);
        assert_eq!(parsed.site_id.to_string(), SITE);
        match parsed.action {
            Action::OnCredit { command: Command::Use { amount, reference, .. }, .. } => {
                assert_eq!(amount.to_string(), "0.10");
                assert_eq!(reference.as_deref(), Some("visit-1"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_issue_takes_the_create_body() {
        let body = format!(
            r#"{{"commandId":"{CMD}","type":"issue","billingCreditId":"{CREDIT}","creditType":"monetary","startDate":"2025-01-01",
                "totalAmount":120,"currency":{{"code":"USD"}},"occurredAt":"2025-01-02T00:00:00Z"}}"#
        );
        let parsed = run(&body).1.unwrap();
        let Action::OnCredit { command: Command::Issue(draft), .. } = parsed.action else { panic!() };
        assert_eq!(draft.total_amount, Decimal::from(120));
        assert_eq!(draft.details.currency_code(), Some("USD"));
        assert!(draft.is_active);
        assert_eq!(parsed.occurred_at.unwrap().to_rfc3339(), "2025-01-02T00:00:00+00:00");
    }

    #[test]
    fn refusals_name_the_rule_and_field_and_keep_the_identity() {
        let cases = [
            ("{not json".to_string(), "malformed-json", "body"),
            (
                format!(r#"{{"commandId":"{CMD}","type":"spend","billingCreditId":"{CREDIT}"}}"#),
                "unknown-command-type",
                "type",
            ),
            (
                format!(
                    r#"{{"commandId":"{CMD}","type":"use","billingCreditId":"{CREDIT}","amount":"1","reference":"r"}}"#
                ),
                "invalid-type",
                "amount",
            ),
            (
                format!(r#"{{"commandId":"{CMD}","type":"use","billingCreditId":"{CREDIT}","reference":"r"}}"#),
                "required",
                "amount",
            ),
            (
                format!(
                    r#"{{"commandId":"{CMD}","type":"use","billingCreditId":"{CREDIT}","amount":1,"reference":"r","amout":2}}"#
                ),
                "unknown-field",
                "amout",
            ),
            (
                format!(r#"{{"commandId":"{CMD}","type":"use","amount":1,"reference":"r"}}"#),
                "required",
                "billingCreditId",
            ),
            (
                format!(r#"{{"type":"use","billingCreditId":"{CREDIT}","amount":1,"reference":"r"}}"#),
                "required",
                "commandId",
            ),
            (
                format!(r#"{{"commandId":"{CMD}","type":"consume","billingCreditId":"{CREDIT}"}}"#),
                "unknown-field",
                "billingCreditId",
            ),
            (
                format!(
                    r#"{{"commandId":"{CMD}","type":"expire","billingCreditId":"{CREDIT}","occurredAt":"2999-01-01"}}"#
                ),
                "occurred-at-in-future",
                "occurredAt",
            ),
            (
                format!(
                    r#"{{"commandId":"{CMD}","type":"issue","billingCreditId":"{CREDIT}","creditType":"quantity","startDate":"2025-13-01","totalAmount":1}}"#
                ),
                "invalid-value",
                "startDate",
            ),
        ];
        for (body, rule, field) in cases {
            let (identity, result) = run(&body);
            let refusal = result.expect_err(&body);
            assert_eq!((refusal.rule.as_str(), refusal.field.as_deref()), (rule, Some(field)), "{body}: {refusal:?}");
            assert_eq!(identity.site_id.unwrap().to_string(), SITE);
            if body.contains(CMD) {
                assert_eq!(identity.command_id.unwrap().to_string(), CMD, "{body}");
            }
        }
    }

    #[test]
    fn the_json_schema_examples_parse_and_cover_every_command_type() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../../docs/nats-commands.schema.json")).unwrap();
        assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
        let mut seen = std::collections::BTreeSet::new();
        for example in schema["examples"].as_array().unwrap() {
            let body = example.to_string();
            let parsed = run(&body).1.unwrap_or_else(|r| panic!("{body}: {r:?}"));
            assert_eq!(parsed.command_type, example["type"]);
            seen.insert(parsed.command_type);
            assert!(schema["$defs"][parsed.command_type].is_object(), "a schema for {}", parsed.command_type);
            let mut extra = example.clone();
            extra["unexpected"] = serde_json::json!(1);
            assert_eq!(run(&extra.to_string()).1.unwrap_err().rule, "unknown-field");
        }
        assert_eq!(seen, COMMAND_TYPES.into_iter().collect());
        assert_eq!(schema["oneOf"].as_array().unwrap().len(), COMMAND_TYPES.len());
    }

    #[test]
    fn the_site_comes_from_the_subject() {
        let (identity, result) = parse("p", "p.commands.not-a-uuid", br#"{}"#, Utc::now());
        assert_eq!(result.unwrap_err().rule, "invalid-site-id");
        assert_eq!(identity.site_id, None);
    }

    #[test]
    fn a_replace_and_a_patch_take_the_put_and_patch_bodies() {
        let body = format!(
            r#"{{"commandId":"{CMD}","type":"replace","billingCreditId":"{CREDIT}","creditType":"quantity","startDate":"2025-01-01",
                "totalAmount":4,"measurementUnit":{{"code":"visit"}}}}"#
        );
        let Action::OnCredit { command: Command::Replace(draft), .. } = run(&body).1.unwrap().action else { panic!() };
        assert_eq!(draft.total_amount, Decimal::from(4));
        let body = format!(
            r#"{{"commandId":"{CMD}","type":"patch","billingCreditId":"{CREDIT}","totalAmount":5.0,"endDate":null}}"#
        );
        let Action::OnCredit { command: Command::Patch(patch), .. } = run(&body).1.unwrap().action else { panic!() };
        assert_eq!(patch.total_amount.map(|t| t.to_string()).as_deref(), Some("5.0"));
        assert_eq!(patch.end_date, Some(None));
        assert_eq!(patch.start_date, None);
        let body = format!(r#"{{"commandId":"{CMD}","type":"patch","billingCreditId":"{CREDIT}","totalAmount":"5"}}"#);
        let refusal = run(&body).1.unwrap_err();
        assert_eq!((refusal.rule.as_str(), refusal.field.as_deref()), ("invalid-type", Some("totalAmount")));
    }

    #[test]
    fn a_consume_needs_the_unit_of_its_type() {
        let body = format!(
            r#"{{"commandId":"{CMD}","type":"consume","wellnessPlanMembershipId":"{CREDIT}","amount":2,"creditType":"quantity","measurementUnit":"visit","reference":"inv-1"}}"#
        );
        let Action::Consume(request) = run(&body).1.unwrap().action else { panic!() };
        assert_eq!(request.unit_code, "visit");
        let coded = body.replace(r#""visit""#, r#"{"code":"visit","display":"Visit"}"#);
        let Action::Consume(request) = run(&coded).1.unwrap().action else { panic!() };
        assert_eq!(request.unit_code, "visit");
        let body = body.replace("measurementUnit", "currency");
        assert_eq!(run(&body).1.unwrap_err().field.as_deref(), Some("measurementUnit"));
    }
}
