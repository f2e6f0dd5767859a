//! The REST API through the real app, on both backends.

mod alerts;
mod auth;
mod balance;
mod consistency;
mod credits;
mod entries;
mod errors;
mod helpers;
mod ledger;
mod list;
mod ops;
mod pages;
mod poison;
mod seed;
mod strict;
mod transport;
mod verify;
