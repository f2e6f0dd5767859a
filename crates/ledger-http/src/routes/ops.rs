//! Operational endpoints: liveness, readiness, metrics, the OpenAPI document; the pages (`pages`).

use actix_web::{web, HttpResponse};
use utoipa::OpenApi;

use crate::openapi::ApiDoc;
use crate::startup::AppState;
use crate::telemetry::metrics_handle;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics))
        .route("/openapi.json", web::get().to(openapi));
    super::pages::configure(cfg);
}

/// The process is up.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// The store answers: the instance can take traffic.
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match state.store.ping().await {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            HttpResponse::ServiceUnavailable()
                .insert_header(("Retry-After", crate::problem::RETRY_AFTER_S.to_string()))
                .json(serde_json::json!({ "status": "store unavailable" }))
        }
    }
}

async fn metrics() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(metrics_handle().render())
}

async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
