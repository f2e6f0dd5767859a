//! Alerts in the background of a serving process: the alerter (feed → alerts and their
//! outbox rows, see `ledger_store::alerts`), the expiry scan, and the webhook delivery
//! worker. Every replica runs them; the store makes each alert derived once and each
//! delivery attempted by one replica at a time. NATS alert rows are published by
//! `ledger-nats`.

pub mod signature;
#[cfg(feature = "testing")]
pub mod testing;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use ledger_store::alerts::{AlertPolicy, ALERTER_BATCH_EVENTS_DEFAULT, EXPIRING_SCAN_BATCH_CREDITS};
use ledger_store::EventStore;
use tokio::task::JoinHandle;

pub use webhooks::{attempt_lease, deliver_due};

/// Defaults of [`AlertingSettings`], also the CLI's.
pub const ALERT_POLL_INTERVAL_MS: u64 = 1_000;
pub const EXPIRING_SCAN_INTERVAL_S: u64 = 300;
pub const WEBHOOK_TIMEOUT_MS: u64 = 5_000;
pub const WEBHOOK_BACKOFF_BASE_MS: u64 = 1_000;
pub const WEBHOOK_BACKOFF_MAX_MS: u64 = 15 * 60 * 1_000;
pub const WEBHOOK_RETRY_HORIZON_S: u64 = 24 * 3_600;
/// Deliveries one worker claims and sends concurrently per round. All are sent at once
/// (each within the claim's lease), and each records its outcome on a pooled connection
/// of its own, so this also bounds the connections the worker takes.
pub const WEBHOOK_CLAIM_BATCH_DELIVERIES: u32 = 8;

/// How the background alerting runs.
#[derive(Debug, Clone)]
pub struct AlertingSettings {
    /// Default thresholds, the retry horizon, and whether NATS rows are written.
    pub policy: AlertPolicy,
    /// How often an idle alerter and an idle delivery worker look again.
    pub poll_interval: Duration,
    /// How often credits nearing their endDate are looked for.
    pub expiring_scan_interval: Duration,
    /// One webhook attempt's limit (connect, send, answer).
    pub webhook_timeout: Duration,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl Default for AlertingSettings {
    fn default() -> Self {
        AlertingSettings {
            policy: AlertPolicy {
                retry_horizon: chrono::Duration::seconds(WEBHOOK_RETRY_HORIZON_S as i64),
                ..AlertPolicy::default()
            },
            poll_interval: Duration::from_millis(ALERT_POLL_INTERVAL_MS),
            expiring_scan_interval: Duration::from_secs(EXPIRING_SCAN_INTERVAL_S),
            webhook_timeout: Duration::from_millis(WEBHOOK_TIMEOUT_MS),
            backoff_base: Duration::from_millis(WEBHOOK_BACKOFF_BASE_MS),
            backoff_max: Duration::from_millis(WEBHOOK_BACKOFF_MAX_MS),
        }
    }
}

/// The running tasks; dropping this stops them (as a crash would: claimed deliveries
/// are taken over when their lease runs out).
pub struct Alerting {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Alerting {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Takes one alerter step, then starts everything ([`spawn`]). On a new ledger that
/// first step places the alerter's checkpoint at the feed's end; taking it before the
/// API serves means every event written through this process comes after it.
pub async fn start(store: Arc<dyn EventStore>, settings: AlertingSettings) -> Alerting {
    if let Err(e) = store.derive_alerts(&settings.policy, Utc::now(), ALERTER_BATCH_EVENTS_DEFAULT).await {
        tracing::warn!(error = %e, "the first alerter step failed; the alerter retries in the background");
    }
    spawn(store, settings)
}

/// Starts the alerter, the expiry scan and the webhook worker.
pub fn spawn(store: Arc<dyn EventStore>, settings: AlertingSettings) -> Alerting {
    let settings = Arc::new(settings);
    let tasks = vec![
        tokio::spawn(alerter(store.clone(), settings.clone())),
        tokio::spawn(expiry_scan(store.clone(), settings.clone())),
        tokio::spawn(webhooks::worker(store, settings)),
    ];
    Alerting { tasks }
}

/// Derives alerts from the feed: at once while it is behind, every poll interval after.
async fn alerter(store: Arc<dyn EventStore>, settings: Arc<AlertingSettings>) {
    loop {
        match store.derive_alerts(&settings.policy, Utc::now(), ALERTER_BATCH_EVENTS_DEFAULT).await {
            Ok(step) => {
                if step.alerts > 0 {
                    metrics::counter!("ledger_alerts_derived_total").increment(step.alerts as u64);
                    tracing::info!(events = step.events, alerts = step.alerts, "alerts derived");
                }
                if step.more {
                    continue;
                }
            }
            Err(e) => tracing::warn!(error = %e, "alerter step failed; retrying next interval"),
        }
        tokio::time::sleep(settings.poll_interval).await;
    }
}

async fn expiry_scan(store: Arc<dyn EventStore>, settings: Arc<AlertingSettings>) {
    let mut ticker = tokio::time::interval(settings.expiring_scan_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        loop {
            match store.derive_expiring_alerts(&settings.policy, Utc::now(), EXPIRING_SCAN_BATCH_CREDITS).await {
                Ok(n) => {
                    metrics::counter!("ledger_alerts_derived_total").increment(n as u64);
                    if n < EXPIRING_SCAN_BATCH_CREDITS as usize {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "expiry alert scan failed; retrying next interval");
                    break;
                }
            }
        }
    }
}
