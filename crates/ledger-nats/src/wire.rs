//! The JSON value formats shared with the REST API (see `ledger-wire`), under the name
//! the message types' serde attributes use.

pub use ledger_wire::json::*;
