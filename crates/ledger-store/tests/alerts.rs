//! The alert outbox on both backends: expiry alerts once per (credit, endDate) within
//! each site's window; two alerters at once derive each alert once; a claim's lease
//! keeps a delivery with one worker, and a lost lease cannot record.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use common::*;
use ledger_store::alerts::*;
use ledger_store::testing::TestDatabase;
use ledger_store::*;
use uuid::Uuid;

ledger_store::backend_tests!(
    expiry_alerts_fire_once_per_credit_within_each_sites_window,
    two_alerters_at_once_derive_each_alert_once,
    a_claimed_delivery_stays_with_its_worker_until_the_lease_ends,
);

fn policy() -> AlertPolicy {
    AlertPolicy { retry_horizon: Duration::hours(1), ..AlertPolicy::default() }
}

async fn endpoint(store: &Arc<dyn EventStore>, site: Uuid) -> Uuid {
    let endpoint = WebhookEndpoint {
        endpoint_id: Uuid::new_v4(),
        site_id: site,
        url: "http://127.0.0.1:9/hooks".into(),
        description: None,
        created_at: Utc::now(),
    };
    assert!(store.create_webhook(&endpoint, "whsec_test", WEBHOOK_ENDPOINTS_PER_SITE_MAX).await.unwrap());
    endpoint.endpoint_id
}

async fn ending(store: &Arc<dyn EventStore>, site: Uuid, total: &str, end: DateTime<Utc>) -> Uuid {
    let mut credit = draft(total);
    credit.details.end_date = Some(end);
    credit.details.wellness_plan_membership_id = Some(Uuid::new_v4());
    issue(store, site, credit).await
}

/// Every due delivery, claimed (and so not due again within the lease).
async fn claim_all(store: &Arc<dyn EventStore>) -> Vec<ClaimedDelivery> {
    let now = Utc::now();
    store.claim_deliveries(TargetKind::Webhook, now, now + Duration::minutes(1), 1_000).await.unwrap()
}

async fn expiry_alerts_fire_once_per_credit_within_each_sites_window(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let (site, wide_site) = (Uuid::new_v4(), Uuid::new_v4());
    endpoint(&store, site).await;
    endpoint(&store, wide_site).await;
    let wide = AlertSettings { expiring_within_days: Some(60), ..AlertSettings::default() };
    store.put_alert_settings(wide_site, &wide, Utc::now()).await.unwrap();
    let now = start() + Duration::days(2);

    let soon = ending(&store, site, "3", now + Duration::days(10)).await;
    let later = ending(&store, site, "3", now + Duration::days(40)).await;
    let later_in_wide_site = ending(&store, wide_site, "3", now + Duration::days(40)).await;
    let spent = ending(&store, site, "3", now + Duration::days(10)).await;
    run(&store, site, spent, use_("3")).await.unwrap();
    let mut inactive = draft("3");
    inactive.details.end_date = Some(now + Duration::days(10));
    inactive.is_active = false;
    issue(&store, site, inactive).await;
    ending(&store, site, "3", now - Duration::days(1)).await; // already ended: the sweep's

    assert_eq!(store.derive_expiring_alerts(&policy(), now, 100).await.unwrap(), 2);
    assert_eq!(store.derive_expiring_alerts(&policy(), now, 100).await.unwrap(), 0, "once per credit and endDate");
    let claimed = claim_all(&store).await;
    let credits: BTreeSet<String> = claimed
        .iter()
        .map(|d| {
            serde_json::from_str::<serde_json::Value>(&d.payload).unwrap()["billingCreditId"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(credits, BTreeSet::from([soon.to_string(), later_in_wide_site.to_string()]));
    for d in &claimed {
        let payload: serde_json::Value = serde_json::from_str(&d.payload).unwrap();
        assert_eq!(
            (d.kind, &payload["kind"], &payload["remainingAmount"]),
            (AlertKind::Expiring, &serde_json::json!("expiring"), &serde_json::json!(3))
        );
        assert_eq!(payload["alertId"], serde_json::json!(d.alert_id));
    }

    // Fifteen days on, the credit ending in 40 days is within the site's 30.
    let now = now + Duration::days(15);
    assert_eq!(store.derive_expiring_alerts(&policy(), now, 100).await.unwrap(), 1);
    let claimed = claim_all(&store).await;
    assert_eq!(claimed.len(), 1);
    assert!(claimed[0].payload.contains(&later.to_string()));
}

async fn two_alerters_at_once_derive_each_alert_once(backend: Backend) {
    const MEMBERS: usize = 60;
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let site = Uuid::new_v4();
    let endpoint_id = endpoint(&store, site).await;
    store.derive_alerts(&policy(), Utc::now(), 10).await.unwrap(); // the checkpoint starts here
    for _ in 0..MEMBERS {
        let mut credit = draft("2");
        credit.details.wellness_plan_membership_id = Some(Uuid::new_v4());
        let id = issue(&store, site, credit).await;
        run(&store, site, id, use_("2")).await.unwrap();
    }

    // Two alerters step at once in small batches until the feed is drained.
    let alerter = |store: Arc<dyn EventStore>| async move {
        let mut derived = 0;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            let step = store.derive_alerts(&policy(), Utc::now(), 7).await.unwrap();
            derived += step.alerts;
            if step.events == 0 {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            if derived_total(&store, site, endpoint_id).await >= 2 * MEMBERS {
                break;
            }
        }
        derived
    };
    let (a, b) = tokio::join!(tokio::spawn(alerter(store.clone())), tokio::spawn(alerter(store.clone())));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a + b, 2 * MEMBERS, "a low and a depleted alert per member, derived once ({a} + {b})");
    assert_eq!(derived_total(&store, site, endpoint_id).await, 2 * MEMBERS);
    let claimed = claim_all(&store).await;
    let alerts: BTreeSet<Uuid> = claimed.iter().map(|d| d.alert_id).collect();
    assert_eq!((claimed.len(), alerts.len()), (2 * MEMBERS, 2 * MEMBERS));
}

async fn derived_total(store: &Arc<dyn EventStore>, site: Uuid, endpoint_id: Uuid) -> usize {
    store.webhook_deliveries(site, endpoint_id, 0, 1).await.unwrap().1 as usize
}

async fn a_claimed_delivery_stays_with_its_worker_until_the_lease_ends(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let site = Uuid::new_v4();
    endpoint(&store, site).await;
    let now = start() + Duration::days(2);
    ending(&store, site, "3", now + Duration::days(1)).await;
    assert_eq!(store.derive_expiring_alerts(&policy(), now, 100).await.unwrap(), 1);

    let t0 = Utc::now();
    let lease = Duration::seconds(30);
    let (first, second) = tokio::join!(
        store.claim_deliveries(TargetKind::Webhook, t0, t0 + lease, 10),
        store.claim_deliveries(TargetKind::Webhook, t0, t0 + lease, 10)
    );
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(first.len() + second.len(), 1, "one worker holds it");
    let held = first.into_iter().chain(second).next().unwrap();
    assert!(store.claim_deliveries(TargetKind::Nats, t0, t0 + lease, 10).await.unwrap().is_empty(), "no NATS rows");

    // The lease runs out (as if the worker died): another worker takes it over, and
    // the first one's late outcome is refused.
    let later = t0 + lease + Duration::seconds(1);
    let taken = store.claim_deliveries(TargetKind::Webhook, later, later + lease, 10).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].delivery_id, held.delivery_id);
    let delivered = Attempt::Delivered { status_code: Some(200) };
    assert!(!store.record_attempt(&held, &delivered, later).await.unwrap(), "a lost lease cannot record");
    let retry =
        Attempt::Retry { status_code: Some(500), error: "boom".into(), next_attempt_at: later + Duration::seconds(5) };
    assert!(store.record_attempt(&taken[0], &retry, later).await.unwrap());
    assert!(
        store.claim_deliveries(TargetKind::Webhook, later, later + lease, 10).await.unwrap().is_empty(),
        "not due yet"
    );
    let due = later + Duration::seconds(6);
    let again = store.claim_deliveries(TargetKind::Webhook, due, due + lease, 10).await.unwrap();
    assert_eq!((again.len(), again[0].attempts), (1, 1));
    assert!(store.record_attempt(&again[0], &delivered, due).await.unwrap());
    let far = due + Duration::hours(2);
    assert!(store.claim_deliveries(TargetKind::Webhook, far, far + lease, 10).await.unwrap().is_empty(), "delivered");
}
