//! The REST API through the real app, on both backends.

mod credits;
mod errors;
mod helpers;
mod list;
mod ops;
mod seed;
