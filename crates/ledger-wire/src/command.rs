//! The command vocabulary: every operation a caller may ask of the ledger, its body, the
//! rules its body is decoded by, and the domain command it becomes. The REST routes and
//! the NATS intake are adapters over this module: REST takes the body of a request,
//! NATS the fields of a message other than its envelope (commandId, type, …).
//!
//! | operation | REST | body |
//! |---|---|---|
//! | `issue` | `POST /billing-credit` | [`BillingCreditBody`] |
//! | `replace` | `PUT /billing-credit/{id}` | [`BillingCreditBody`] |
//! | `patch` | `PATCH /billing-credit/{id}` | [`BillingCreditPatchBody`] |
//! | `use` | `POST …/{id}/use` | [`UseBody`] |
//! | `waste` | `POST …/{id}/waste` | [`WasteBody`] |
//! | `expire` | `POST …/{id}/expire` | [`ExpireBody`] |
//! | `reverse` | `POST …/{id}/reverse` | [`ReverseBody`] |
//! | `consume` | `POST /billing-credit/consume` | [`ConsumeBody`] |
//! | `adjust` | (NATS only) | [`AdjustBody`] |
//! | `activate`, `deactivate` | (NATS only) | [`ReasonBody`] |
//! | `delete` | `DELETE /billing-credit/{id}` (no body) | [`ReasonBody`] |

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use ledger_domain::event::StatusChange;
use ledger_domain::{Command, ConsumeRequest, CreditType};
use rust_decimal::Decimal;
use serde::de::{self, DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::json as wire;
use crate::text::{self, Kind, Line};
use crate::{decode, BillingCreditBody, BillingCreditPatchBody, CodingDto, FieldRefusal};

/// How far ahead of the ledger's clock an occurredAt may lie (clock skew between services).
pub const OCCURRED_AT_SKEW_MAX_S: i64 = 300;

/// The occurredAt rule, for every command that carries one (REST and NATS alike): at
/// most [`OCCURRED_AT_SKEW_MAX_S`] ahead of `now`.
pub fn check_occurred_at(occurred_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Result<(), FieldRefusal> {
    match occurred_at {
        Some(at) if at > now + Duration::seconds(OCCURRED_AT_SKEW_MAX_S) => Err(FieldRefusal {
            field: "occurredAt".into(),
            rule: "occurred-at-in-future",
            message: format!(
                "occurredAt {} is more than {OCCURRED_AT_SKEW_MAX_S} s ahead of the ledger's clock",
                wire::format_timestamp(&at)
            ),
        }),
        _ => Ok(()),
    }
}

/// A body of the vocabulary.
pub trait Body: DeserializeOwned {
    /// The business time the body names, if it has that field.
    fn occurred_at(&self) -> Option<DateTime<Utc>> {
        None
    }
}

/// Decodes a body by its rules, the occurredAt rule included (judged against `now`).
pub fn decode_body<T: Body>(bytes: &[u8], now: DateTime<Utc>) -> Result<T, FieldRefusal> {
    let body: T = decode(bytes)?;
    check_occurred_at(body.occurred_at(), now)?;
    Ok(body)
}

/// Every operation, named as the NATS `type` field names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    Issue,
    Replace,
    Patch,
    Use,
    Waste,
    Expire,
    Reverse,
    Consume,
    Adjust,
    Activate,
    Deactivate,
    Delete,
}

impl Operation {
    pub const ALL: [Operation; 12] = [
        Operation::Issue,
        Operation::Use,
        Operation::Waste,
        Operation::Expire,
        Operation::Reverse,
        Operation::Consume,
        Operation::Adjust,
        Operation::Activate,
        Operation::Deactivate,
        Operation::Delete,
        Operation::Patch,
        Operation::Replace,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Operation::Issue => "issue",
            Operation::Replace => "replace",
            Operation::Patch => "patch",
            Operation::Use => "use",
            Operation::Waste => "waste",
            Operation::Expire => "expire",
            Operation::Reverse => "reverse",
            Operation::Consume => "consume",
            Operation::Adjust => "adjust",
            Operation::Activate => "activate",
            Operation::Deactivate => "deactivate",
            Operation::Delete => "delete",
        }
    }

    /// The operation a name names, if any.
    pub fn from_name(name: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|op| op.name() == name)
    }

    /// Decodes `bytes` as this operation's body (the occurredAt rule judged against
    /// `now`), into what it asks of the ledger.
    pub fn decode(self, bytes: &[u8], now: DateTime<Utc>) -> Result<Request, FieldRefusal> {
        let command = match self {
            Operation::Consume => return Ok(Request::Consume(decode_body::<ConsumeBody>(bytes, now)?.into_request()?)),
            Operation::Issue => Command::Issue(decode_body::<BillingCreditBody>(bytes, now)?.into_draft()),
            Operation::Replace => Command::Replace(decode_body::<BillingCreditBody>(bytes, now)?.into_draft()),
            Operation::Patch => Command::Patch(decode_body::<BillingCreditPatchBody>(bytes, now)?.into_patch()),
            Operation::Use => decode_body::<UseBody>(bytes, now)?.into_command(),
            Operation::Waste => decode_body::<WasteBody>(bytes, now)?.into_command(),
            Operation::Expire => decode_body::<ExpireBody>(bytes, now)?.into_command(),
            Operation::Reverse => decode_body::<ReverseBody>(bytes, now)?.into_command(),
            Operation::Adjust => decode_body::<AdjustBody>(bytes, now)?.into_command(),
            Operation::Activate => Command::Activate(decode_body::<ReasonBody>(bytes, now)?.into_status_change()),
            Operation::Deactivate => Command::Deactivate(decode_body::<ReasonBody>(bytes, now)?.into_status_change()),
            Operation::Delete => Command::Delete(decode_body::<ReasonBody>(bytes, now)?.into_status_change()),
        };
        Ok(Request::OnCredit(command))
    }
}

/// What a decoded body asks of the ledger.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // one per request in flight: not worth a box
pub enum Request {
    /// One command on one credit (which credit: the path, or the message's billingCreditId).
    OnCredit(Command),
    /// Spend across a member's credits.
    Consume(ConsumeRequest),
}

impl Body for BillingCreditBody {}
impl Body for BillingCreditPatchBody {}

/// Spend part of a credit.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UseBody {
    #[serde(deserialize_with = "wire::amount")]
    #[schema(value_type = f64, example = 1)]
    pub amount: Decimal,
    /// What the credit paid for: a visit, an invoice, a benefit redemption. At most 1000
    /// characters, no control characters.
    #[serde(deserialize_with = "text::line")]
    #[schema(max_length = 1000, example = "visit-2025-0042")]
    pub reference: String,
    /// When it happened (business time); defaults to now. Judged against the credit's
    /// startDate/endDate; never in the future.
    #[serde(default, deserialize_with = "wire::optional_date")]
    #[schema(value_type = Option<String>, example = "2025-03-01T10:00:00Z")]
    pub occurred_at: Option<DateTime<Utc>>,
    /// At most 1000 characters; of the control characters only tab and line breaks.
    #[serde(default, deserialize_with = "text::optional_prose")]
    #[schema(max_length = 1000)]
    pub note: Option<String>,
}

impl Body for UseBody {
    fn occurred_at(&self) -> Option<DateTime<Utc>> {
        self.occurred_at
    }
}

impl UseBody {
    pub fn into_command(self) -> Command {
        Command::Use { amount: self.amount, reference: Some(self.reference), note: self.note }
    }
}

/// Write part of a credit off.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WasteBody {
    #[serde(deserialize_with = "wire::amount")]
    #[schema(value_type = f64, example = 1)]
    pub amount: Decimal,
    /// At most 1000 characters; of the control characters only tab and line breaks.
    #[serde(deserialize_with = "text::prose")]
    #[schema(max_length = 1000, example = "missed appointment")]
    pub reason: String,
}

impl Body for WasteBody {}

impl WasteBody {
    pub fn into_command(self) -> Command {
        Command::Waste { amount: self.amount, reason: Some(self.reason) }
    }
}

/// Write off everything that remains (once).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExpireBody {
    /// At most 1000 characters; of the control characters only tab and line breaks.
    #[serde(default, deserialize_with = "text::optional_prose")]
    #[schema(max_length = 1000)]
    pub reason: Option<String>,
}

/// The body of a status change (activate, deactivate, delete): an optional reason.
pub type ReasonBody = ExpireBody;

impl Body for ExpireBody {}

impl ExpireBody {
    pub fn into_command(self) -> Command {
        Command::Expire { reason: self.reason }
    }

    pub fn into_status_change(self) -> StatusChange {
        StatusChange { reason: self.reason }
    }
}

/// Undo a use or a waste, in full or in part.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReverseBody {
    /// The CreditUsed or CreditWasted event to undo.
    pub event_id: Uuid,
    /// How much to undo; all that is left of it when absent.
    #[serde(default, deserialize_with = "wire::optional_amount")]
    #[schema(value_type = Option<f64>)]
    pub amount: Option<Decimal>,
    /// At most 1000 characters; of the control characters only tab and line breaks.
    #[serde(default, deserialize_with = "text::optional_prose")]
    #[schema(max_length = 1000)]
    pub reason: Option<String>,
}

impl Body for ReverseBody {}

impl ReverseBody {
    pub fn into_command(self) -> Command {
        Command::Reverse { event_id: self.event_id, amount: self.amount, reason: self.reason }
    }
}

/// Grow (delta > 0) or shrink (delta < 0) the total.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdjustBody {
    #[serde(deserialize_with = "wire::amount")]
    #[schema(value_type = f64, example = 1)]
    pub delta: Decimal,
    /// At most 1000 characters; of the control characters only tab and line breaks.
    #[serde(default, deserialize_with = "text::optional_prose")]
    #[schema(max_length = 1000)]
    pub reason: Option<String>,
}

impl Body for AdjustBody {}

impl AdjustBody {
    pub fn into_command(self) -> Command {
        Command::AdjustTotal { delta: self.delta, reason: self.reason }
    }
}

/// Spend an amount across a member's matching credits, soonest endDate first.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsumeBody {
    pub wellness_plan_membership_id: Uuid,
    #[serde(deserialize_with = "wire::amount")]
    #[schema(value_type = f64, example = 1)]
    pub amount: Decimal,
    #[schema(value_type = String, example = "quantity")]
    pub credit_type: CreditType,
    /// ISO 4217 code, or the credit's currency coding (`{"code": "USD"}`); required for
    /// monetary credits.
    #[serde(default, deserialize_with = "optional_code")]
    #[schema(value_type = Option<CodeOrCoding>, example = "USD")]
    pub currency: Option<String>,
    /// Unit code, or the credit's measurementUnit coding (`{"code": "visit"}`); required
    /// for quantity credits.
    #[serde(default, deserialize_with = "optional_code")]
    #[schema(value_type = Option<CodeOrCoding>, example = "visit")]
    pub measurement_unit: Option<String>,
    /// Only credits of this category: its code, or the coding (`{"code": "dental"}`).
    #[serde(default, deserialize_with = "optional_code")]
    #[schema(value_type = Option<CodeOrCoding>)]
    pub credit_category: Option<String>,
    pub wellness_plan_benefit_id: Option<Uuid>,
    /// At most 1000 characters, no control characters.
    #[serde(deserialize_with = "text::line")]
    #[schema(max_length = 1000, example = "invoice-7781")]
    pub reference: String,
    /// Spend what there is when it is not enough (default false: refuse and write nothing).
    pub allow_partial: Option<bool>,
}

impl Body for ConsumeBody {}

impl ConsumeBody {
    /// The request, once the unit fits the credit type: a monetary consume names its
    /// currency, a quantity consume its measurementUnit, never both.
    pub fn into_request(self) -> Result<ConsumeRequest, FieldRefusal> {
        let unit_code = match (self.credit_type, self.currency, self.measurement_unit) {
            (CreditType::Monetary, Some(code), None) | (CreditType::Quantity, None, Some(code)) => code,
            (CreditType::Monetary, ..) => {
                return Err(FieldRefusal {
                    field: "currency".into(),
                    rule: "required",
                    message: "a monetary consume names its currency (and no measurementUnit)".into(),
                })
            }
            (CreditType::Quantity, ..) => {
                return Err(FieldRefusal {
                    field: "measurementUnit".into(),
                    rule: "required",
                    message: "a quantity consume names its measurementUnit (and no currency)".into(),
                })
            }
        };
        Ok(ConsumeRequest {
            wellness_plan_membership_id: self.wellness_plan_membership_id,
            amount: self.amount,
            credit_type: self.credit_type,
            unit_code,
            credit_category_code: self.credit_category,
            wellness_plan_benefit_id: self.wellness_plan_benefit_id,
            reference: Some(self.reference),
            allow_partial: self.allow_partial.unwrap_or(false),
        })
    }
}

/// A code as a consume names it: the bare code (`"visit"`) or a coding with a code, the
/// shape the credit has (`{"code": "visit"}`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum CodeOrCoding {
    Code(String),
    Coding(CodingDto),
}

/// Decodes an optional [`CodeOrCoding`] into its code.
fn optional_code<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct CodeVisitor;

    impl<'de> Visitor<'de> for CodeVisitor {
        type Value = Option<String>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(r#"a code ("visit") or a coding ({"code": "visit"})"#)
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }

        fn visit_str<E: de::Error>(self, code: &str) -> Result<Self::Value, E> {
            text::check(code.to_string(), Kind::Line).map(Some)
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            const FIELDS: &[&str] = &["code", "system", "display"];
            let mut code = None;
            while let Some(key) = map.next_key::<String>()? {
                match key.as_str() {
                    "code" => code = map.next_value::<Option<Line>>()?.map(|line| line.0),
                    "system" | "display" => {
                        map.next_value::<Option<Line>>()?;
                    }
                    // How serde_json (arbitrary_precision) hands over a number.
                    "$serde_json::private::Number" => {
                        return Err(de::Error::invalid_type(de::Unexpected::Other("number"), &self))
                    }
                    other => return Err(de::Error::unknown_field(other, FIELDS)),
                }
            }
            code.map(Some).ok_or_else(|| de::Error::missing_field("code"))
        }
    }

    d.deserialize_option(CodeVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consume(unit: &str) -> Result<ConsumeRequest, FieldRefusal> {
        let body = format!(
            r#"{{"wellnessPlanMembershipId":"33333333-3333-3333-3333-333333333333","amount":2,"creditType":"quantity","measurementUnit":{unit},"reference":"inv-1"}}"#
        );
        match Operation::Consume.decode(body.as_bytes(), Utc::now())? {
            Request::Consume(request) => Ok(request),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_consume_takes_a_code_or_a_coding() {
        assert_eq!(consume(r#""visit""#).unwrap().unit_code, "visit");
        assert_eq!(consume(r#"{"code":"visit"}"#).unwrap().unit_code, "visit");
        assert_eq!(consume(r#"{"code":"visit","system":"urn:u","display":"Visit"}"#).unwrap().unit_code, "visit");
        let refused = |unit: &str| consume(unit).map(|_| ()).unwrap_err();
        let r = refused(r#"{"display":"Visit"}"#);
        assert_eq!((r.field.as_str(), r.rule), ("measurementUnit.code", "required"));
        let r = refused(r#"{"code":"visit","colour":1}"#);
        assert_eq!((r.field.as_str(), r.rule), ("measurementUnit.colour", "unknown-field"));
        let r = refused(r#"{"code":5}"#);
        assert_eq!((r.field.as_str(), r.rule), ("measurementUnit.code", "invalid-type"));
        let r = refused("5");
        assert_eq!((r.field.as_str(), r.rule), ("measurementUnit", "invalid-type"));
        let r = refused("true");
        assert_eq!((r.field.as_str(), r.rule), ("measurementUnit", "invalid-type"));
        let r = refused("null");
        assert_eq!((r.field.as_str(), r.rule), ("measurementUnit", "required"));
    }

    #[test]
    fn occurred_at_is_judged_by_one_rule() {
        let now = Utc::now();
        assert!(check_occurred_at(None, now).is_ok());
        assert!(check_occurred_at(Some(now + Duration::seconds(OCCURRED_AT_SKEW_MAX_S)), now).is_ok());
        let r = check_occurred_at(Some(now + Duration::seconds(OCCURRED_AT_SKEW_MAX_S + 1)), now).unwrap_err();
        assert_eq!((r.field.as_str(), r.rule), ("occurredAt", "occurred-at-in-future"));
        let body = br#"{"amount":1,"reference":"r","occurredAt":"2999-01-01"}"#;
        let r = Operation::Use.decode(body, now).unwrap_err();
        assert_eq!((r.field.as_str(), r.rule), ("occurredAt", "occurred-at-in-future"));
    }

    #[test]
    fn every_operation_has_a_name() {
        for op in Operation::ALL {
            assert_eq!(Operation::from_name(op.name()), Some(op));
        }
        assert_eq!(Operation::from_name("spend"), None);
    }
}
