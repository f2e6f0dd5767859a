//! # Wellness-plan billing credits: the business rules
//!
//! A **billing credit** is a balance a clinic grants a pet owner under a wellness plan:
//! "3 dental cleanings this cycle" (a *quantity* credit) or "$120 of diagnostics" (a
//! *monetary* credit). It has a **total**; **used** grows as the credit is spent,
//! **wasted** grows when part of it is written off; **remaining = total − used − wasted**
//! is always derived, never stored as truth.
//!
//! Every change is an immutable [`Event`]. A caller asks with a [`Command`];
//! [`decide`] judges it against the current [`Credit`] and answers with events or a
//! [`DomainError`]; [`evolve`] folds events into the credit. Nothing here does IO.
//!
//! ## The rules
//! - Amounts are exact decimals, never floats, and never above [`money::AMOUNT_MAX`].
//! - used ≥ 0, wasted ≥ 0 and used + wasted ≤ total, after every event.
//! - A quantity credit counts whole units. A monetary credit has a currency with an
//!   ISO 4217 code, and no amount finer than that currency's minor unit.
//! - A credit can be *used* only while it is active, not expired, not deleted, at or
//!   after its startDate and before its endDate (endDate is exclusive).
//! - Using or wasting more than remains is refused; nothing is ever overdrawn.
//! - Expiry writes the remaining balance off as wasted, once.
//! - A use or waste can be reversed, in full or in part, never by more than it moved.
//! - PATCH/PUT of amounts become delta events (usedAmount 3 → 5 is a use of 2); a
//!   remainingAmount that disagrees with total − used − wasted is refused.
//! - A deleted credit is a tombstone: not found for every command, history kept.
//! - endDate may not be before startDate.
//! - A consume spends across a member's matching credits, soonest endDate first (none
//!   last), then oldest; all or nothing unless partial spending is allowed.
//!
//! A refused command writes nothing: `decide` is all or nothing.

pub mod balance;
pub mod command;
pub mod consume;
pub mod credit;
pub mod decide;
pub mod error;
pub mod event;
pub mod money;
pub mod statement;

pub use balance::{balance, BalanceFilter, BalanceLine};
pub use command::{Command, CreditDraft, CreditPatch};
pub use consume::{allocate, decide_consume, Allocation, ConsumeRequest};
pub use credit::{evolve, Coding, Credit, CreditDetails, CreditType, EventPosition, JsonObject, Movement, Reversible};
pub use decide::decide;
pub use error::{DomainError, Refusal, RefusalKind};
pub use event::{read_stored, upcast, Event, UpcastError, EVENT_SCHEMA_VERSION};
