//! # The event store
//!
//! An append-only event store with its projections, on Postgres (production) or SQLite
//! (the embedded zero-setup default). The flow is written once ([`sql`]); each database
//! supplies only what differs ([`postgres`], [`sqlite`]). Callers ask for the role they
//! use ([`Commands`], [`Reads`], [`Feed`], [`Audit`], [`Upkeep`], [`Alerts`],
//! [`AlertOutbox`], [`Health`]);
//! [`sql::connect`] opens a store that plays them all ([`EventStore`]).
//!
//! - `events` is append-only (the database itself refuses UPDATE and DELETE).
//! - Unique (stream, version) gives optimistic concurrency; unique event id makes a
//!   retried append harmless.
//! - The `billing_credits` projection is written in the same transaction as the events,
//!   so a read after a write sees it, and it can be rebuilt from `events` at any time.
//! - [`Commands::execute`] locks the credits it touches, runs the pure `decide` on what
//!   it found, and appends the result, all in one transaction: concurrent commands on one
//!   credit queue on its lock instead of overspending it.

pub mod alerts;
pub mod audit;
pub mod audit_credit;
pub mod balance;
pub mod chain;
pub mod commands;
mod error;
mod group;
pub mod history;
mod migrate;
pub mod model;
mod ports;
pub mod postgres;
mod prepare;
pub mod sql;
pub mod sqlite;
pub mod statement;
pub mod sweep;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::StoreError;
pub use model::*;
pub use ports::*;
pub use prepare::{command_event_id, EVENTS_PER_APPEND_MAX};
