//! The webhook delivery worker: claims due webhook deliveries, POSTs each signed, and
//! records the outcome: delivered on a 2xx, otherwise retried with backoff until the
//! delivery's retry horizon, then failed.
//!
//! At least once: a worker killed after the receiver answered but before recording it
//! leaves the delivery claimed; when the lease runs out another worker sends it again
//! with the same `Ledger-Delivery-Id`, which receivers use to deduplicate.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::future::join_all;
use ledger_store::alerts::{next_attempt_at, Attempt, ClaimedDelivery, TargetKind};
use ledger_store::EventStore;

use super::signature::{sign, DELIVERY_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use super::{AlertingSettings, WEBHOOK_CLAIM_BATCH_DELIVERIES};

/// What a claim's lease adds to the attempt's timeout, for recording the outcome.
pub const LEASE_MARGIN_MS: u64 = 2_000;

/// How long a claimed delivery stays with its worker.
pub fn attempt_lease(timeout: Duration) -> Duration {
    timeout + Duration::from_millis(LEASE_MARGIN_MS)
}

pub(super) async fn worker(store: Arc<dyn EventStore>, settings: Arc<AlertingSettings>) {
    let client = match client(&settings) {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the webhook HTTP client; webhooks are not delivered");
            return;
        }
    };
    loop {
        match deliver_due(store.as_ref(), &client, &settings).await {
            Ok(0) => tokio::time::sleep(settings.poll_interval).await,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "claiming webhook deliveries failed; retrying next interval");
                tokio::time::sleep(settings.poll_interval).await;
            }
        }
    }
}

fn client(settings: &AlertingSettings) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(settings.webhook_timeout)
        // A redirect is an answer that is not a 2xx: the endpoint is registered as is.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("billing-credit-ledger-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// One round: claims the due deliveries, attempts them concurrently, records each;
/// returns how many were attempted.
pub async fn deliver_due(
    store: &dyn EventStore,
    client: &reqwest::Client,
    settings: &AlertingSettings,
) -> Result<usize, ledger_store::StoreError> {
    let now = Utc::now();
    let lease = chrono::Duration::from_std(attempt_lease(settings.webhook_timeout)).unwrap_or(chrono::Duration::MAX);
    let claimed = store.claim_deliveries(TargetKind::Webhook, now, now + lease, WEBHOOK_CLAIM_BATCH_DELIVERIES).await?;
    let attempted = claimed.len();
    join_all(claimed.into_iter().map(|delivery| async move {
        let attempt = attempt(client, &delivery, settings).await;
        let outcome = match &attempt {
            Attempt::Delivered { .. } => "delivered",
            Attempt::Retry { .. } => "retry",
            Attempt::Failed { .. } => "failed",
        };
        metrics::counter!("ledger_webhook_attempts_total", "outcome" => outcome).increment(1);
        match store.record_attempt(&delivery, &attempt, Utc::now()).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(delivery = %delivery.delivery_id, "lease lost before recording the attempt"),
            Err(e) => tracing::warn!(delivery = %delivery.delivery_id, error = %e, "recording the attempt failed"),
        }
    }))
    .await;
    Ok(attempted)
}

async fn attempt(client: &reqwest::Client, d: &ClaimedDelivery, settings: &AlertingSettings) -> Attempt {
    let Some((url, secret)) = &d.endpoint else {
        return Attempt::Failed { status_code: None, error: "the endpoint was deleted".into() };
    };
    let timestamp = Utc::now().timestamp();
    let response = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(DELIVERY_ID_HEADER, d.delivery_id.to_string())
        .header(TIMESTAMP_HEADER, timestamp.to_string())
        .header(SIGNATURE_HEADER, sign(secret, timestamp, d.delivery_id, d.payload.as_bytes()))
        .body(d.payload.clone())
        .send()
        .await;
    let (status_code, error) = match response {
        Ok(r) if r.status().is_success() => return Attempt::Delivered { status_code: Some(r.status().as_u16()) },
        Ok(r) => (Some(r.status().as_u16()), format!("the endpoint answered {}", r.status())),
        Err(e) if e.is_timeout() => (None, format!("no answer within {} ms", settings.webhook_timeout.as_millis())),
        Err(e) => (None, format!("cannot reach the endpoint: {}", error_chain(&e))),
    };
    match next_attempt_at(d.attempts, settings.backoff_base, settings.backoff_max, Utc::now(), d.give_up_at) {
        Some(next_attempt_at) => Attempt::Retry { status_code, error, next_attempt_at },
        None => Attempt::Failed { status_code, error: format!("{error}; retried until the horizon, giving up") },
    }
}

/// An error and its causes, `: `-separated (reqwest's Display names only the outermost).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
