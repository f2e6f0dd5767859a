//! Which database answers a read, and the token that lets a client read its own writes.
//!
//! With a read replica configured, the read endpoints that serve lists, the site feed, a
//! credit's history and a member's balance and statement are answered by the replica
//! while it is fresh (see `ledger_store::postgres::replica`); everything else by the
//! primary. A write's answer carries `Ledger-Position`, the position of the last event it
//! appended; a read that sends it back as `Read-After` is answered from data that holds
//! that event: the replica's if it has replayed it, else the primary's.

use actix_web::{HttpRequest, ResponseError};
use ledger_store::postgres::replica::Route;
use ledger_store::{Committed, ReadModels};

use crate::problem::ApiError;
use crate::startup::AppState;

/// On a write's answer: the position of the last event it appended.
pub const LEDGER_POSITION_HEADER: &str = "Ledger-Position";
/// On a read: a `Ledger-Position` the answer must include.
pub const READ_AFTER_HEADER: &str = "Read-After";

/// The token a write's answer carries, if it appended (or replayed) any event.
pub fn ledger_position(committed: &Committed) -> Option<i64> {
    committed.events.iter().map(|e| e.position).max()
}

/// The `Read-After` a read sent, if any.
pub fn read_after(req: &HttpRequest) -> Result<Option<i64>, ApiError> {
    let Some(value) = req.headers().get(READ_AFTER_HEADER) else { return Ok(None) };
    let text = value.to_str().unwrap_or_default().trim();
    text.parse::<i64>().ok().filter(|p| *p > 0).map(Some).ok_or_else(|| {
        ApiError::bad_field(
            READ_AFTER_HEADER,
            "invalid-read-after",
            format!("{text:?} is not a {LEDGER_POSITION_HEADER} this API returned (a positive integer)"),
        )
    })
}

/// Runs `read` on the read models that should answer it: the replica's or the primary's.
/// A read the replica fails with a server error (it died, or no connection of its pool
/// came free) is run again on the primary, and the replica serves nothing more until its
/// probe finds it fresh again. A refusal (a 4xx, such as too many credits) is the answer.
pub async fn read<T, E: Into<ApiError>>(
    state: &AppState,
    req: &HttpRequest,
    read: impl AsyncFn(&dyn ReadModels) -> Result<T, E>,
) -> Result<T, ApiError> {
    let after = read_after(req)?;
    let Some(replica) = &state.replica else {
        count("primary", "no-replica");
        return read(state.store.as_ref()).await.map_err(Into::into);
    };
    let route = replica.route(after).await;
    count(route.pool(), route.reason());
    if route == Route::Replica {
        match read(replica.reads()).await {
            Ok(value) => return Ok(value),
            Err(e) => {
                let e: ApiError = e.into();
                if !e.status_code().is_server_error() {
                    return Err(e);
                }
                tracing::warn!(error = ?e, "a read failed on the read replica; the primary answers it");
                replica.distrust();
                count("primary", "replica-failed");
            }
        }
    }
    read(state.store.as_ref()).await.map_err(Into::into)
}

fn count(pool: &'static str, reason: &'static str) {
    metrics::counter!("ledger_reads_total", "pool" => pool, "reason" => reason).increment(1);
}
