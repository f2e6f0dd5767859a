//! The JSON shapes of the API: the seed's billing credit, and the ledger's operations.

mod credit;
mod ledger;

pub use credit::*;
pub use ledger::*;
