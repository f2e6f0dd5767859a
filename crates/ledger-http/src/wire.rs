//! The JSON value formats shared with every wire (see `ledger-wire`), under the name
//! the DTOs' serde attributes use.

pub use ledger_wire::json::*;
