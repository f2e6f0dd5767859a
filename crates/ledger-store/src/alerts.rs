//! Balance alerts: what they are, when one fires, and the outbox that delivers them.
//!
//! The command path does not compute alerts (it must stay fast). The **alerter**
//! ([`Alerts::derive_alerts`](crate::Alerts::derive_alerts)) tails the event feed
//! instead: for every member an event touched it evaluates the member's current balance
//! lines against the site's thresholds and the lines already past them (`alert_state`),
//! and writes each new crossing as an alert plus one outbox row per consumer (every
//! webhook endpoint of the site, and NATS), in the same transaction as its feed
//! checkpoint. Events are durable and the checkpoint moves only with the rows derived
//! from them, so no alert is lost or derived twice, on any number of replicas (steps
//! write under one lock, and only from the checkpoint they read).
//!
//! Expiry alerts depend on time, not events: a periodic scan
//! ([`Alerts::derive_expiring_alerts`](crate::Alerts::derive_expiring_alerts)) finds
//! credits with something left whose endDate falls within the site's window, once per
//! (credit, endDate).
//!
//! Delivery workers claim due outbox rows for a lease
//! ([`AlertOutbox::claim_deliveries`](crate::AlertOutbox::claim_deliveries)), so one replica at a
//! time attempts a row, and record each attempt under the claim's token.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use ledger_domain::{BalanceLine, CreditDetails, CreditType};
use rust_decimal::Decimal;
use serde_json::json;
use uuid::Uuid;

/// Events the alerter reads per transaction.
pub const ALERTER_BATCH_EVENTS_DEFAULT: u32 = 500;
/// Credits the expiry scan alerts about per transaction.
pub const EXPIRING_SCAN_BATCH_CREDITS: u32 = 500;
/// The low threshold of a site that sets none, per unit.
pub const LOW_THRESHOLD_DEFAULT: u32 = 1;
/// Webhook endpoints one site may register.
pub const WEBHOOK_ENDPOINTS_PER_SITE_MAX: u32 = 20;
/// Per-unit thresholds one site may set.
pub const LOW_THRESHOLDS_PER_SITE_MAX: usize = 100;

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AlertKind {
    /// A member's remaining balance of a (creditType, unit) fell to or below the low threshold.
    Low,
    /// A member's remaining balance of a (creditType, unit) reached 0.
    Depleted,
    /// A credit with something left ends within the site's window.
    Expiring,
}

impl AlertKind {
    pub const ALL: [AlertKind; 3] = [AlertKind::Low, AlertKind::Depleted, AlertKind::Expiring];

    /// Its name in subjects, payloads and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Low => "low",
            AlertKind::Depleted => "depleted",
            AlertKind::Expiring => "expiring",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// How the alerter runs: the service's configured defaults, and where alerts go.
#[derive(Debug, Clone)]
pub struct AlertPolicy {
    /// The low threshold of a site (or unit) with none of its own.
    pub low_threshold: Decimal,
    /// The expiry window of a site with none of its own.
    pub expiring_within_days: u32,
    /// Whether an outbox row is written for NATS (only when NATS is configured).
    pub nats: bool,
    /// How long a delivery is retried before it is marked failed.
    pub retry_horizon: Duration,
}

impl Default for AlertPolicy {
    fn default() -> Self {
        AlertPolicy {
            low_threshold: Decimal::from(LOW_THRESHOLD_DEFAULT),
            expiring_within_days: ledger_domain::balance::EXPIRING_WITHIN_DAYS_DEFAULT,
            nats: false,
            retry_horizon: Duration::hours(24),
        }
    }
}

/// A site's own thresholds; what it leaves unset comes from the [`AlertPolicy`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertSettings {
    /// The low threshold of every unit not named in `low_thresholds`.
    pub default_low_threshold: Option<Decimal>,
    /// Low thresholds per unit code (currency or measurement unit).
    pub low_thresholds: BTreeMap<String, Decimal>,
    pub expiring_within_days: Option<u32>,
}

impl AlertSettings {
    pub fn low_threshold(&self, unit_code: &str, policy: &AlertPolicy) -> Decimal {
        self.low_thresholds.get(unit_code).copied().or(self.default_low_threshold).unwrap_or(policy.low_threshold)
    }

    pub fn expiring_within_days(&self, policy: &AlertPolicy) -> u32 {
        self.expiring_within_days.unwrap_or(policy.expiring_within_days)
    }
}

/// One balance line of a member: (creditType, unit code, '' for none).
pub type LineKey = (CreditType, String);

/// Whether a line with `remaining` is past the `kind` threshold.
pub fn crossed(kind: AlertKind, remaining: Decimal, low_threshold: Decimal) -> bool {
    match kind {
        AlertKind::Depleted => remaining <= Decimal::ZERO,
        AlertKind::Low => remaining <= low_threshold,
        AlertKind::Expiring => false,
    }
}

/// A change of one line's state the alerter writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// The line went past the threshold: an alert fires, the state row is written.
    Fire { key: LineKey, kind: AlertKind, remaining: Decimal, low_threshold: Decimal },
    /// The line is back above: the state row goes, the next crossing fires again.
    Rearm { key: LineKey, kind: AlertKind },
}

/// The line a credit with these details counts in.
pub fn line_key(details: &CreditDetails) -> LineKey {
    let unit = match details.credit_type {
        CreditType::Monetary => details.currency.as_ref(),
        CreditType::Quantity => details.measurement_unit.as_ref(),
    };
    (details.credit_type, unit.and_then(|c| c.code.clone()).unwrap_or_default())
}

/// The transitions of a member's lines: `lines` is the balance now, `past` the
/// (line, kind) pairs past their threshold when last evaluated, `left` the lines a
/// credit has just left (it expired, was deleted or deactivated, or changed unit or
/// member). A line with no spendable credit any more counts as 0 left if it was past a
/// threshold or was just left; one that never had any is not alerted about.
pub fn transitions(
    lines: &[BalanceLine],
    past: &[(LineKey, AlertKind)],
    left: &[LineKey],
    low_threshold: impl Fn(&str) -> Decimal,
) -> Vec<Transition> {
    // Ordered by (type name, unit), as the balance orders its lines.
    let mut remaining: BTreeMap<(&'static str, String), (LineKey, Decimal)> = BTreeMap::new();
    for line in lines {
        let key = (line.credit_type, line.unit_code.clone().unwrap_or_default());
        remaining.insert((key.0.as_str(), key.1.clone()), (key, line.remaining_amount));
    }
    for key in past.iter().map(|(key, _)| key).chain(left) {
        remaining.entry((key.0.as_str(), key.1.clone())).or_insert((key.clone(), Decimal::ZERO));
    }
    let mut out = vec![];
    for (key, left) in remaining.into_values() {
        let threshold = low_threshold(&key.1);
        for kind in [AlertKind::Low, AlertKind::Depleted] {
            let was = past.iter().any(|(k, kd)| *k == key && *kd == kind);
            match (was, crossed(kind, left, threshold)) {
                (false, true) => {
                    out.push(Transition::Fire { key: key.clone(), kind, remaining: left, low_threshold: threshold })
                }
                (true, false) => out.push(Transition::Rearm { key: key.clone(), kind }),
                _ => {}
            }
        }
    }
    out
}

const ALERT_NAMESPACE: Uuid = Uuid::from_u128(0x616c_6572_742d_6964_0000_0000_0000_0001);

/// The id of a balance alert: the same for the same crossing on every replica, so it
/// is the deduplication id on every wire (NATS `Nats-Msg-Id`, the payload's `alertId`).
pub fn balance_alert_id(site_id: Uuid, member: Uuid, key: &LineKey, kind: AlertKind, event_id: Uuid) -> Uuid {
    let name = format!("{site_id}/{member}/{}/{}/{}/{event_id}", key.0.as_str(), key.1, kind.as_str());
    Uuid::new_v5(&ALERT_NAMESPACE, name.as_bytes())
}

/// The id of the expiry alert of a credit's endDate: once per (credit, endDate).
pub fn expiring_alert_id(site_id: Uuid, billing_credit_id: Uuid, end_date: DateTime<Utc>) -> Uuid {
    let name = format!("{site_id}/{billing_credit_id}/expiring/{}", end_date.timestamp_micros());
    Uuid::new_v5(&ALERT_NAMESPACE, name.as_bytes())
}

/// An alert as stored and sent: its id, where it goes, and the JSON every consumer gets.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub alert_id: Uuid,
    pub site_id: Uuid,
    pub kind: AlertKind,
    /// Expiring alerts: the credit and its endDate (the scan's once-only key).
    pub credit_end: Option<(Uuid, DateTime<Utc>)>,
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// An amount as an exact JSON number (never a float, never a string).
fn amount(value: Decimal) -> serde_json::Value {
    let number: serde_json::Number = value.normalize().to_string().parse().expect("a decimal's text is a JSON number");
    serde_json::Value::Number(number)
}

fn instant(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A low or depleted alert.
pub fn balance_alert(
    site_id: Uuid,
    member: Uuid,
    transition: &Transition,
    event_id: Uuid,
    now: DateTime<Utc>,
) -> Option<Alert> {
    let Transition::Fire { key, kind, remaining, low_threshold } = transition else { return None };
    let alert_id = balance_alert_id(site_id, member, key, *kind, event_id);
    let payload = json!({
        "alertId": alert_id,
        "kind": kind.as_str(),
        "siteId": site_id,
        "wellnessPlanMembershipId": member,
        "creditType": key.0.as_str(),
        "unit": (!key.1.is_empty()).then_some(key.1.as_str()),
        "remainingAmount": amount(*remaining),
        "lowThreshold": amount(*low_threshold),
        "causedByEventId": event_id,
        "createdAt": instant(now),
    });
    Some(Alert { alert_id, site_id, kind: *kind, credit_end: None, payload, created_at: now })
}

/// The expiry alert of a credit (as the projection holds it) ending within the window.
pub fn expiring_alert(credit: &ledger_domain::Credit, window_days: u32, now: DateTime<Utc>) -> Option<Alert> {
    let end = credit.details.end_date?;
    let alert_id = expiring_alert_id(credit.site_id, credit.billing_credit_id, end);
    let payload = json!({
        "alertId": alert_id,
        "kind": AlertKind::Expiring.as_str(),
        "siteId": credit.site_id,
        "wellnessPlanMembershipId": credit.details.wellness_plan_membership_id,
        "billingCreditId": credit.billing_credit_id,
        "creditType": credit.details.credit_type.as_str(),
        "unit": credit.unit_code(),
        "remainingAmount": amount(credit.remaining_amount()),
        "endDate": instant(end),
        "expiringWithinDays": window_days,
        "createdAt": instant(now),
    });
    Some(Alert {
        alert_id,
        site_id: credit.site_id,
        kind: AlertKind::Expiring,
        credit_end: Some((credit.billing_credit_id, end)),
        payload,
        created_at: now,
    })
}

/// What one alerter step did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlerterStep {
    /// Events read from the feed.
    pub events: usize,
    /// Alerts written (each with its deliveries).
    pub alerts: usize,
    /// Whether the feed may hold more right away (the batch was full).
    pub more: bool,
}

/// A consumer of alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Webhook,
    Nats,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Webhook => "webhook",
            TargetKind::Nats => "nats",
        }
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Not yet delivered; attempted again at `next_attempt_at`.
    Pending,
    Delivered,
    /// Given up after the retry horizon (or its endpoint was deleted).
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [DeliveryStatus::Pending, DeliveryStatus::Delivered, DeliveryStatus::Failed]
            .into_iter()
            .find(|d| d.as_str() == s)
    }
}

/// A registered webhook endpoint. Its secret is read only to sign and is shown to the
/// caller only when created or rotated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    pub endpoint_id: Uuid,
    pub site_id: Uuid,
    pub url: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// One outbox row, as the delivery log shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub delivery_id: Uuid,
    pub alert_id: Uuid,
    pub site_id: Uuid,
    pub kind: AlertKind,
    pub endpoint_id: Option<Uuid>,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub give_up_at: DateTime<Utc>,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// A delivery a worker holds the lease of: what to send, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedDelivery {
    pub delivery_id: Uuid,
    pub alert_id: Uuid,
    pub site_id: Uuid,
    pub kind: AlertKind,
    /// The alert's JSON, sent as is.
    pub payload: String,
    /// Attempts made before this one.
    pub attempts: u32,
    pub give_up_at: DateTime<Utc>,
    /// Proves the lease when the attempt is recorded: a worker whose lease ran out and
    /// was taken over cannot overwrite the new holder's outcome.
    pub claim_token: Uuid,
    /// Webhooks: the endpoint's URL and secret; None if it was deleted meanwhile.
    pub endpoint: Option<(String, String)>,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Delivered {
        status_code: Option<u16>,
    },
    /// Try again at `next_attempt_at`.
    Retry {
        status_code: Option<u16>,
        error: String,
        next_attempt_at: DateTime<Utc>,
    },
    /// Give up.
    Failed {
        status_code: Option<u16>,
        error: String,
    },
}

/// When a failed attempt is tried again: exponential backoff with full jitter, a
/// uniformly random delay in [0, min(max, base * 2^attempts)] (`attempts` that failed
/// before the one just failed), so receivers coming back up are not hit by every sender at once.
/// None when that would pass `give_up_at`: the delivery has failed.
pub fn next_attempt_at(
    attempts: u32,
    base: std::time::Duration,
    max: std::time::Duration,
    now: DateTime<Utc>,
    give_up_at: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let cap_ms = (base.as_millis() as u64).saturating_mul(1u64 << attempts.min(40)).min(max.as_millis() as u64);
    // A v4 uuid's 122 random bits (from the OS) are randomness enough for jitter.
    let random = Uuid::new_v4().as_u128() as u64;
    let delay_ms = if cap_ms == 0 { 0 } else { random % (cap_ms + 1) };
    let at = now + Duration::milliseconds(delay_ms as i64);
    (at <= give_up_at).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(remaining: i64) -> BalanceLine {
        BalanceLine {
            credit_type: CreditType::Quantity,
            unit_code: Some("visit".into()),
            total_amount: Decimal::from(5),
            used_amount: Decimal::from(5 - remaining),
            wasted_amount: Decimal::ZERO,
            remaining_amount: Decimal::from(remaining),
            credit_count: 1,
            expiring_amount: Decimal::ZERO,
            next_expiry: None,
        }
    }

    fn key() -> LineKey {
        (CreditType::Quantity, "visit".into())
    }

    fn kinds(t: &[Transition]) -> Vec<(bool, AlertKind)> {
        t.iter()
            .map(|t| match t {
                Transition::Fire { kind, .. } => (true, *kind),
                Transition::Rearm { kind, .. } => (false, *kind),
            })
            .collect()
    }

    #[test]
    fn fires_once_per_crossing_and_rearms_above() {
        let one = |_: &str| Decimal::ONE;
        assert!(transitions(&[line(3)], &[], &[], one).is_empty());
        assert_eq!(kinds(&transitions(&[line(1)], &[], &[], one)), [(true, AlertKind::Low)]);
        assert!(transitions(&[line(1)], &[(key(), AlertKind::Low)], &[], one).is_empty(), "still low: no second alert");
        assert_eq!(
            kinds(&transitions(&[line(0)], &[(key(), AlertKind::Low)], &[], one)),
            [(true, AlertKind::Depleted)]
        );
        let both = [(key(), AlertKind::Low), (key(), AlertKind::Depleted)];
        assert!(transitions(&[line(0)], &both, &[], one).is_empty());
        assert_eq!(kinds(&transitions(&[line(1)], &both, &[], one)), [(false, AlertKind::Depleted)]);
        assert_eq!(
            kinds(&transitions(&[line(4)], &both, &[], one)),
            [(false, AlertKind::Low), (false, AlertKind::Depleted)]
        );
    }

    #[test]
    fn a_known_line_that_is_gone_counts_as_depleted() {
        let one = |_: &str| Decimal::ONE;
        assert_eq!(
            kinds(&transitions(&[], &[(key(), AlertKind::Low)], &[], one)),
            [(true, AlertKind::Depleted)],
            "its last credit expired"
        );
        assert!(transitions(&[], &[], &[], one).is_empty(), "an unknown line is not alerted about");
        assert_eq!(
            kinds(&transitions(&[], &[], &[key()], one)),
            [(true, AlertKind::Low), (true, AlertKind::Depleted)],
            "its last credit expired with 3 left"
        );
        assert!(transitions(&[line(2)], &[], &[key()], one).is_empty(), "other credits of the line remain");
    }

    #[test]
    fn backoff_grows_within_its_cap_and_stops_at_the_horizon() {
        let now = Utc::now();
        let (base, max) = (std::time::Duration::from_millis(100), std::time::Duration::from_millis(1_000));
        for attempts in 0..20 {
            let at = next_attempt_at(attempts, base, max, now, now + Duration::hours(1)).unwrap();
            let cap = (100i64 << attempts.min(10)).min(1_000);
            assert!(at >= now && at <= now + Duration::milliseconds(cap), "attempt {attempts}: {at}");
        }
        assert_eq!(next_attempt_at(3, base, max, now, now - Duration::seconds(1)), None);
    }

    #[test]
    fn alert_ids_are_deterministic_and_distinct() {
        let (s, m, e) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(
            balance_alert_id(s, m, &key(), AlertKind::Low, e),
            balance_alert_id(s, m, &key(), AlertKind::Low, e)
        );
        assert_ne!(
            balance_alert_id(s, m, &key(), AlertKind::Low, e),
            balance_alert_id(s, m, &key(), AlertKind::Depleted, e)
        );
    }
}
