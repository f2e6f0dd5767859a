//! The JSON shapes of the API: the seed's billing credit, the ledger's operations and the
//! member balance.

mod alerts;
mod balance;
mod credit;
mod ledger;

pub use alerts::*;
pub use balance::*;
pub use credit::*;
pub use ledger::*;
