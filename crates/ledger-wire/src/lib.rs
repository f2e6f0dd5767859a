//! How the ledger's JSON looks on every wire, REST bodies and NATS messages alike:
//! amounts are exact JSON numbers, dates come in as `2025-01-01` or RFC 3339, and a
//! body that does not decode is refused naming the field and the rule it broke.
//!
//! It is also the ledger's one command vocabulary ([`command`]): every operation's body,
//! its decoding rules and the domain command it becomes. REST and NATS adapt it.

pub mod command;
mod credit;
mod decode;
mod exact;
mod free_form;
pub mod json;
pub mod limits;
pub mod text;

pub use command::{
    check_occurred_at, decode_body, AdjustBody, Body, CodeOrCoding, ConsumeBody, ExpireBody, Operation, ReasonBody,
    Request, ReverseBody, UseBody, WasteBody, OCCURRED_AT_SKEW_MAX_S,
};
pub use credit::{BillingCredit, BillingCreditBody, BillingCreditPatchBody, CodingDto};
pub use decode::{decode, FieldRefusal, RULES};
