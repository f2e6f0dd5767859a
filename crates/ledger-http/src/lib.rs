//! The AHDS billing-credit REST API (seed 003) over the ledger: routes, DTOs, auth,
//! problem+json errors, OpenAPI, metrics.

pub mod alerts;
pub mod auth;
pub mod body;
pub mod dto;
pub mod openapi;
pub mod openapi_examples;
pub mod problem;
pub mod routes;
pub mod rules;
pub mod startup;
pub mod telemetry;
pub mod wire;

pub use startup::{serve, spawn, spawn_with, AppState, ServerSettings};
