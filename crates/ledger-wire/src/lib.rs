//! How the ledger's JSON looks on every wire, REST bodies and NATS messages alike:
//! amounts are exact JSON numbers, dates come in as `2025-01-01` or RFC 3339, and a
//! body that does not decode is refused naming the field and the rule it broke.

mod credit;
mod decode;
pub mod json;

pub use credit::{BillingCreditBody, CodingDto};
pub use decode::{decode, FieldRefusal};
