//! The alert administration API (scope `billing-credit:admin`): a site's webhook
//! endpoints (create, list, get, delete, rotate secret), their delivery log and
//! redelivery, and the site's alert thresholds.

use std::collections::BTreeMap;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use ledger_store::alerts::{
    AlertPolicy, AlertSettings, WebhookEndpoint, LOW_THRESHOLDS_PER_SITE_MAX, WEBHOOK_ENDPOINTS_PER_SITE_MAX,
};
use ledger_store::{PAGE_MAX, PAGE_SIZE_MAX};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::query::{number, query_pairs, unknown};
use crate::auth::{Admin, SiteAccess};
use crate::body::JsonBody;
use crate::dto::{
    AlertSettingsBody, AlertSettingsDto, DeliveryDto, DeliveryList, PageMeta, WebhookBody, WebhookDto, WebhookList,
    WebhookWithSecret,
};
use crate::problem::{ApiError, ReadProblems, WriteProblems};
use crate::startup::AppState;

pub const WEBHOOKS_PATH: &str = "/site/{siteId}/ahds/v1/billing-credit-webhooks";
pub const WEBHOOK_PATH: &str = "/site/{siteId}/ahds/v1/billing-credit-webhooks/{webhookId}";
pub const ALERT_SETTINGS_PATH: &str = "/site/{siteId}/ahds/v1/billing-credit-alert-settings";

/// The longest webhook URL accepted: the wire's bound on any line of text.
pub const WEBHOOK_URL_LENGTH_MAX_CHARS: usize = ledger_wire::limits::TEXT_CHARS_MAX;
/// The longest unit code a threshold may name.
pub const UNIT_CODE_LENGTH_MAX_CHARS: usize = 64;
/// The prefix of a webhook secret, so a leaked one is recognizable.
pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes in a webhook secret.
pub const SECRET_RANDOM_BYTES: usize = 32;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource(WEBHOOKS_PATH).route(web::post().to(create)).route(web::get().to(list)))
        .service(web::resource(format!("{WEBHOOK_PATH}/rotate-secret")).route(web::post().to(rotate_secret)))
        .service(web::resource(format!("{WEBHOOK_PATH}/deliveries")).route(web::get().to(deliveries)))
        .service(
            web::resource(format!("{WEBHOOK_PATH}/deliveries/{{deliveryId}}/redeliver"))
                .route(web::post().to(redeliver)),
        )
        .service(web::resource(WEBHOOK_PATH).route(web::get().to(get_one)).route(web::delete().to(delete)))
        .service(
            web::resource(ALERT_SETTINGS_PATH).route(web::get().to(get_settings)).route(web::put().to(put_settings)),
        );
}

fn path_uuid(req: &HttpRequest, name: &str) -> Result<Uuid, ApiError> {
    let raw = req.match_info().get(name).unwrap_or_default();
    Uuid::parse_str(raw).map_err(|_| ApiError::bad_field(name, "invalid-uuid", format!("{raw:?} is not a UUID")))
}

fn policy(req: &HttpRequest) -> AlertPolicy {
    req.app_data::<web::Data<AlertPolicy>>().map(|p| p.get_ref().clone()).unwrap_or_default()
}

/// An absolute http(s) URL with a host and no credentials (the URL is shown in
/// listings; the secret signs instead).
fn check_url(url: &str) -> Result<(), ApiError> {
    let bad = |rule: &str, message: String| ApiError::bad_field("url", rule, message);
    if url.chars().count() > WEBHOOK_URL_LENGTH_MAX_CHARS {
        return Err(bad("too-long", format!("url is longer than {WEBHOOK_URL_LENGTH_MAX_CHARS} characters")));
    }
    let parsed = reqwest::Url::parse(url).map_err(|e| bad("invalid-url", format!("{url:?} is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("invalid-url", format!("url must be http or https, not {}", parsed.scheme())));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("invalid-url", "url must name a host".into()));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("invalid-url", "url must not carry credentials; deliveries are signed instead".into()));
    }
    Ok(())
}

fn new_secret() -> Result<String, ApiError> {
    let mut bytes = [0u8; SECRET_RANDOM_BYTES];
    getrandom::getrandom(&mut bytes).map_err(|e| ApiError::Internal(anyhow::anyhow!("no randomness: {e}")))?;
    Ok(format!("{SECRET_PREFIX}{}", hex::encode(bytes)))
}

/// `page` and `pageSize` (0-based, 1..=100, default 0 and 20).
fn paging(req: &HttpRequest) -> Result<(u32, u32), ApiError> {
    let (mut page, mut page_size) = (0, 20);
    for (key, value) in query_pairs(req)? {
        match key.as_str() {
            "page" => page = number(&key, &value, 0, PAGE_MAX)?,
            "pageSize" => page_size = number(&key, &value, 1, PAGE_SIZE_MAX)?,
            _ => return Err(unknown(&key)),
        }
    }
    Ok((page, page_size))
}

#[utoipa::path(
    operation_id = "create_webhook",
    post, path = "/site/{siteId}/ahds/v1/billing-credit-webhooks", tag = "Alerts",
    summary = "Register a webhook endpoint for the site's balance alerts (needs billing-credit:admin)",
    description = "Alerts (low, depleted, expiring) are POSTed as JSON, signed: `Ledger-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, \"<t>.<Ledger-Delivery-Id>.<body>\")>`. \
                   The answer carries the signing secret, shown only this once. A site has at most 20 endpoints.",
    params(("siteId" = Uuid, Path)),
    request_body = WebhookBody,
    responses(
        (status = 201, body = WebhookWithSecret),
        (status = 409, description = "The site has the most endpoints it may have", body = crate::problem::Problem,
         content_type = "application/problem+json"),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
pub async fn create(
    access: SiteAccess<Admin>,
    body: JsonBody<WebhookBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = body.value;
    check_url(&body.url)?;
    let endpoint = WebhookEndpoint {
        endpoint_id: Uuid::new_v4(),
        site_id: access.site_id,
        url: body.url,
        description: body.description,
        created_at: Utc::now(),
    };
    let secret = new_secret()?;
    if !state.store.create_webhook(&endpoint, &secret, WEBHOOK_ENDPOINTS_PER_SITE_MAX).await? {
        return Err(ApiError::Conflict {
            detail: format!("the site has {WEBHOOK_ENDPOINTS_PER_SITE_MAX} webhook endpoints, the most it may have"),
            rule: "too-many-webhooks".into(),
        });
    }
    Ok(HttpResponse::Created().json(WebhookWithSecret { webhook: WebhookDto::from(&endpoint), secret }))
}

#[utoipa::path(
    operation_id = "list_webhooks",
    get, path = "/site/{siteId}/ahds/v1/billing-credit-webhooks", tag = "Alerts",
    summary = "The site's webhook endpoints, oldest first (needs billing-credit:admin)",
    params(("siteId" = Uuid, Path),
           ("page" = Option<u32>, Query, description = "0-based page"),
           ("pageSize" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Default 20")),
    responses((status = 200, body = WebhookList), ReadProblems),
    security(("bearer" = []))
)]
pub async fn list(
    access: SiteAccess<Admin>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (page, page_size) = paging(&req)?;
    let all = state.store.webhooks(access.site_id).await?;
    let data =
        all.iter().skip(page as usize * page_size as usize).take(page_size as usize).map(WebhookDto::from).collect();
    Ok(HttpResponse::Ok().json(WebhookList { data, meta: PageMeta::new(page, page_size, all.len() as u64) }))
}

#[utoipa::path(
    operation_id = "get_webhook",
    get, path = "/site/{siteId}/ahds/v1/billing-credit-webhooks/{webhookId}", tag = "Alerts",
    summary = "A webhook endpoint (needs billing-credit:admin)",
    params(("siteId" = Uuid, Path), ("webhookId" = Uuid, Path)),
    responses((status = 200, body = WebhookDto), ReadProblems),
    security(("bearer" = []))
)]
pub async fn get_one(
    access: SiteAccess<Admin>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = path_uuid(&req, "webhookId")?;
    let endpoint = state.store.webhook(access.site_id, id).await?.ok_or(ApiError::Missing("webhook endpoint"))?;
    Ok(HttpResponse::Ok().json(WebhookDto::from(&endpoint)))
}

#[utoipa::path(
    operation_id = "delete_webhook",
    delete, path = "/site/{siteId}/ahds/v1/billing-credit-webhooks/{webhookId}", tag = "Alerts",
    summary = "Delete a webhook endpoint; its pending deliveries fail (needs billing-credit:admin)",
    params(("siteId" = Uuid, Path), ("webhookId" = Uuid, Path)),
    responses((status = 204, description = "Deleted"), WriteProblems),
    security(("bearer" = []))
)]
pub async fn delete(
    access: SiteAccess<Admin>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = path_uuid(&req, "webhookId")?;
    match state.store.delete_webhook(access.site_id, id).await? {
        true => Ok(HttpResponse::NoContent().finish()),
        false => Err(ApiError::Missing("webhook endpoint")),
    }
}

#[utoipa::path(
    operation_id = "rotate_webhook_secret",
    post, path = "/site/{siteId}/ahds/v1/billing-credit-webhooks/{webhookId}/rotate-secret", tag = "Alerts",
    summary = "Replace an endpoint's signing secret; the new one is shown only in this answer (needs billing-credit:admin)",
    description = "Attempts from now on are signed with the new secret only.",
    params(("siteId" = Uuid, Path), ("webhookId" = Uuid, Path)),
    responses((status = 200, body = WebhookWithSecret), WriteProblems),
    security(("bearer" = []))
)]
pub async fn rotate_secret(
    access: SiteAccess<Admin>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = path_uuid(&req, "webhookId")?;
    let secret = new_secret()?;
    if !state.store.rotate_webhook_secret(access.site_id, id, &secret).await? {
        return Err(ApiError::Missing("webhook endpoint"));
    }
    let endpoint = state.store.webhook(access.site_id, id).await?.ok_or(ApiError::Missing("webhook endpoint"))?;
    Ok(HttpResponse::Ok().json(WebhookWithSecret { webhook: WebhookDto::from(&endpoint), secret }))
}

#[utoipa::path(
    operation_id = "list_webhook_deliveries",
    get, path = "/site/{siteId}/ahds/v1/billing-credit-webhooks/{webhookId}/deliveries", tag = "Alerts",
    summary = "An endpoint's delivery log, newest first (needs billing-credit:admin)",
    params(("siteId" = Uuid, Path), ("webhookId" = Uuid, Path),
           ("page" = Option<u32>, Query, description = "0-based page"),
           ("pageSize" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Default 20")),
    responses((status = 200, body = DeliveryList), ReadProblems),
    security(("bearer" = []))
)]
pub async fn deliveries(
    access: SiteAccess<Admin>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = path_uuid(&req, "webhookId")?;
    let (page, page_size) = paging(&req)?;
    // Deleted endpoints keep their log.
    let (rows, total) = state.store.webhook_deliveries(access.site_id, id, page, page_size).await?;
    if total == 0 && state.store.webhook(access.site_id, id).await?.is_none() {
        return Err(ApiError::Missing("webhook endpoint"));
    }
    Ok(HttpResponse::Ok().json(DeliveryList {
        data: rows.iter().map(DeliveryDto::from).collect(),
        meta: PageMeta::new(page, page_size, total),
    }))
}

#[utoipa::path(
    operation_id = "redeliver_webhook_delivery",
    post, path = "/site/{siteId}/ahds/v1/billing-credit-webhooks/{webhookId}/deliveries/{deliveryId}/redeliver",
    tag = "Alerts",
    summary = "Send a delivery's alert to the endpoint again (needs billing-credit:admin)",
    description = "A new delivery (new id, same alertId), due now and retried like any other.",
    params(("siteId" = Uuid, Path), ("webhookId" = Uuid, Path), ("deliveryId" = Uuid, Path)),
    responses((status = 202, body = DeliveryDto), WriteProblems),
    security(("bearer" = []))
)]
pub async fn redeliver(
    access: SiteAccess<Admin>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = path_uuid(&req, "webhookId")?;
    let delivery_id = path_uuid(&req, "deliveryId")?;
    let now = Utc::now();
    let give_up_at = now + policy(&req).retry_horizon;
    let delivery = state
        .store
        .redeliver(access.site_id, id, delivery_id, now, give_up_at)
        .await?
        .ok_or(ApiError::Missing("delivery of this webhook endpoint"))?;
    Ok(HttpResponse::Accepted().json(DeliveryDto::from(&delivery)))
}

fn settings_dto(settings: Option<AlertSettings>, policy: &AlertPolicy) -> AlertSettingsDto {
    let customized = settings.is_some();
    let settings = settings.unwrap_or_default();
    let number = |d: &Decimal| d.normalize().to_string().parse().expect("a decimal is a JSON number");
    AlertSettingsDto {
        low_threshold: settings.default_low_threshold.unwrap_or(policy.low_threshold),
        low_thresholds: settings.low_thresholds.iter().map(|(unit, t)| (unit.clone(), number(t))).collect(),
        expiring_within_days: settings.expiring_within_days(policy),
        customized,
    }
}

#[utoipa::path(
    operation_id = "get_alert_settings",
    get, path = "/site/{siteId}/ahds/v1/billing-credit-alert-settings", tag = "Alerts",
    summary = "The site's alert thresholds in effect (needs billing-credit:admin)",
    params(("siteId" = Uuid, Path)),
    responses((status = 200, body = AlertSettingsDto), ReadProblems),
    security(("bearer" = []))
)]
pub async fn get_settings(
    access: SiteAccess<Admin>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let settings = state.store.alert_settings(access.site_id).await?;
    Ok(HttpResponse::Ok().json(settings_dto(settings, &policy(&req))))
}

#[utoipa::path(
    operation_id = "put_alert_settings",
    put, path = "/site/{siteId}/ahds/v1/billing-credit-alert-settings", tag = "Alerts",
    summary = "Set the site's alert thresholds (needs billing-credit:admin)",
    description = "Replaces the site's settings; what the body leaves out takes the service's default. \
                   Takes effect at the next evaluation of each member (no alert is raised by the change itself).",
    params(("siteId" = Uuid, Path)),
    request_body = AlertSettingsBody,
    responses((status = 200, body = AlertSettingsDto), WriteProblems),
    security(("bearer" = []))
)]
pub async fn put_settings(
    access: SiteAccess<Admin>,
    req: HttpRequest,
    body: JsonBody<AlertSettingsBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = body.value;
    let negative = |field: String| ApiError::bad_field(field, "amount-negative", "a threshold must be 0 or more");
    if body.low_threshold.is_some_and(|t| t < Decimal::ZERO) {
        return Err(negative("lowThreshold".into()));
    }
    if body.low_thresholds.len() > LOW_THRESHOLDS_PER_SITE_MAX {
        return Err(ApiError::bad_field(
            "lowThresholds",
            "too-many",
            format!("at most {LOW_THRESHOLDS_PER_SITE_MAX} unit thresholds"),
        ));
    }
    let mut per_unit = BTreeMap::new();
    for (unit, threshold) in body.low_thresholds {
        let field = format!("lowThresholds.{unit}");
        if unit.is_empty() || unit.chars().count() > UNIT_CODE_LENGTH_MAX_CHARS || unit.chars().any(char::is_control) {
            return Err(ApiError::bad_field(
                field,
                "invalid-unit",
                format!("a unit code is 1 to {UNIT_CODE_LENGTH_MAX_CHARS} characters, no control characters"),
            ));
        }
        if threshold.0 < Decimal::ZERO {
            return Err(negative(field));
        }
        per_unit.insert(unit, threshold.0);
    }
    if let Some(days) = body.expiring_within_days {
        let max = ledger_domain::balance::EXPIRING_WITHIN_DAYS_MAX;
        if days > max {
            return Err(ApiError::bad_field("expiringWithinDays", "out-of-range", format!("at most {max} days")));
        }
    }
    let settings = AlertSettings {
        default_low_threshold: body.low_threshold,
        low_thresholds: per_unit,
        expiring_within_days: body.expiring_within_days,
    };
    state.store.put_alert_settings(access.site_id, &settings, Utc::now()).await?;
    Ok(HttpResponse::Ok().json(settings_dto(Some(settings), &policy(&req))))
}
