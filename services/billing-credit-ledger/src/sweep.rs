//! The expiry sweep in the background of `serve`: see `ledger_store::sweep`.

use std::sync::Arc;
use std::time::Duration;

use ledger_store::EventStore;
use tokio::task::JoinHandle;

/// Starts sweeping every `interval`; None when the interval is zero (disabled).
pub fn spawn(store: Arc<dyn EventStore>, interval: Duration) -> Option<JoinHandle<()>> {
    if interval.is_zero() {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match ledger_store::sweep::expire_due(store.as_ref(), chrono::Utc::now()).await {
                Ok(0) => {}
                Ok(expired) => tracing::info!(expired, "expiry sweep"),
                Err(e) => tracing::warn!(error = %e, "expiry sweep failed; retrying next interval"),
            }
        }
    }))
}
