//! The store, written once for every SQL database: commands with group commit and
//! idempotency, reads, the feed, and the auditors' scans. What differs between
//! Postgres and SQLite is a [`Dialect`]: `crate::postgres` and `crate::sqlite`.

mod alerts;
mod build;
mod commands;
mod connect;
mod db;
mod dialect;
mod list;
mod once;
mod outbox;
mod reads;
pub(crate) mod rows;
mod store;

pub use connect::{connect, connect_with, open, open_with, Access, ConnectSettings};
pub(crate) use db::{Arg, Piece};
pub(crate) use dialect::{Dialect, Locked, WriteError};
pub(crate) use list::{PROJECTION_COLUMNS, PROJECTION_SET_EXCLUDED};
pub(crate) use store::SqlStore;
