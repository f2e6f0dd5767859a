//! Webhook endpoints, their delivery log, and a site's alert settings.

use std::collections::BTreeMap;

use ledger_store::alerts::{Delivery, WebhookEndpoint};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::PageMeta;
use crate::wire;

/// Registers a webhook endpoint.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookBody {
    /// Where alerts are POSTed: an absolute http or https URL.
    #[serde(deserialize_with = "ledger_wire::text::line")]
    #[schema(example = "https://example.com/ledger-alerts", max_length = 1000)]
    pub url: String,
    /// What the endpoint is for, for people.
    #[serde(default, deserialize_with = "ledger_wire::text::optional_prose")]
    pub description: Option<String>,
}

impl ledger_wire::Body for WebhookBody {}

/// A registered webhook endpoint. Its secret is only shown when created or rotated.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDto {
    pub webhook_id: Uuid,
    pub url: String,
    pub description: Option<String>,
    #[schema(example = "2025-01-01T00:00:00.000Z")]
    pub created_at: String,
}

impl From<&WebhookEndpoint> for WebhookDto {
    fn from(e: &WebhookEndpoint) -> Self {
        WebhookDto {
            webhook_id: e.endpoint_id,
            url: e.url.clone(),
            description: e.description.clone(),
            created_at: wire::format_timestamp(&e.created_at),
        }
    }
}

/// An endpoint with its signing secret: the answer to create and rotate-secret, the
/// only times the secret is shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub webhook: WebhookDto,
    /// The HMAC-SHA256 key of the `Ledger-Signature` header. Keep it: it is not shown again.
    #[schema(example = "whsec_5f0c…")]
    pub secret: String,
}

/// `{data, meta}`: a site's webhook endpoints.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookList {
    pub data: Vec<WebhookDto>,
    pub meta: PageMeta,
}

/// One alert's delivery to one endpoint, as the delivery log shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryDto {
    /// Sent as `Ledger-Delivery-Id`; the same on every retry of this delivery.
    pub delivery_id: Uuid,
    /// The alert's id, its deduplication id on every wire.
    pub alert_id: Uuid,
    /// low, depleted or expiring.
    #[schema(example = "depleted")]
    pub kind: String,
    /// pending, delivered or failed.
    #[schema(example = "delivered")]
    pub status: String,
    pub attempts: u32,
    /// The HTTP status of the last attempt, if it got an answer.
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    /// When a pending delivery is attempted next.
    pub next_attempt_at: Option<String>,
    pub delivered_at: Option<String>,
    pub created_at: String,
}

impl From<&Delivery> for DeliveryDto {
    fn from(d: &Delivery) -> Self {
        let pending = d.status == ledger_store::alerts::DeliveryStatus::Pending;
        DeliveryDto {
            delivery_id: d.delivery_id,
            alert_id: d.alert_id,
            kind: d.kind.as_str().into(),
            status: d.status.as_str().into(),
            attempts: d.attempts,
            last_status_code: d.last_status_code,
            last_error: d.last_error.clone(),
            next_attempt_at: pending.then(|| wire::format_timestamp(&d.next_attempt_at)),
            delivered_at: d.delivered_at.as_ref().map(wire::format_timestamp),
            created_at: wire::format_timestamp(&d.created_at),
        }
    }
}

/// `{data, meta}`: one page of an endpoint's deliveries, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeliveryList {
    pub data: Vec<DeliveryDto>,
    pub meta: PageMeta,
}

/// An exact amount, decoded as the credit bodies decode theirs.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Threshold(#[serde(deserialize_with = "ledger_wire::json::amount")] pub Decimal);

/// A site's alert settings. What it leaves out (or null) takes the service's default.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlertSettingsBody {
    /// A balance line at or below its unit's threshold raises a `low` alert; this is the
    /// threshold of every unit not in `lowThresholds`.
    #[serde(default, deserialize_with = "ledger_wire::json::optional_amount")]
    #[schema(value_type = Option<f64>, example = 1)]
    pub low_threshold: Option<Decimal>,
    /// Thresholds per unit code (currency or measurementUnit code).
    #[serde(default)]
    #[schema(value_type = Object, example = json!({"visit": 1, "USD": 25}))]
    pub low_thresholds: BTreeMap<String, Threshold>,
    /// A credit with something left whose endDate falls within this many days raises an
    /// `expiring` alert (once per credit and endDate).
    #[schema(minimum = 0, maximum = 3660, example = 30)]
    pub expiring_within_days: Option<u32>,
}

impl ledger_wire::Body for AlertSettingsBody {}

/// A site's alert settings in effect: its own where it set them, else the service's.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertSettingsDto {
    #[serde(serialize_with = "wire::serialize_amount")]
    #[schema(value_type = f64, example = 1)]
    pub low_threshold: Decimal,
    #[schema(value_type = Object, example = json!({"visit": 1}))]
    pub low_thresholds: BTreeMap<String, serde_json::Number>,
    pub expiring_within_days: u32,
    /// Whether the site set its own (false: every value is the service's default).
    pub customized: bool,
}
