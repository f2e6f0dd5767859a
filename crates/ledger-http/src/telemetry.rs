//! Per-request tracing span and request id, Prometheus metrics, and problem bodies
//! stamped with the request id. A 5xx is logged here with its cause; clients see none of it.

use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, ResponseError};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing::Instrument;
use uuid::Uuid;

use crate::problem::ApiError;

pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// A client-sent request id longer than this is replaced, not trusted.
pub const REQUEST_ID_MAX_LEN: usize = 64;

/// The request id, available to handlers through request extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The process-wide Prometheus recorder (installed once, shared by every app instance).
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("http_request_duration_seconds".into()),
                &[0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5],
            )
            .expect("static buckets are valid")
            .install_recorder()
            .expect("no other metrics recorder is installed")
    })
}

fn request_id_of(req: &ServiceRequest) -> String {
    req.headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= REQUEST_ID_MAX_LEN && v.chars().all(|c| c.is_ascii_graphic()))
        .map_or_else(|| Uuid::new_v4().to_string(), str::to_string)
}

pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let request_id = request_id_of(&req);
    let method = req.method().to_string();
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let span =
        tracing::info_span!("request", request_id = %request_id, method = %method, route = tracing::field::Empty);
    let response = next.call(req).instrument(span.clone()).await?;
    // Asked once routing is done, the router's own match answers; asked before, every
    // route's pattern would be tried against the path again (a tenth of the CPU a
    // request costs).
    let route = response.request().match_pattern().unwrap_or_else(|| "unmatched".into());
    span.record("route", route.as_str());
    let mut response = restamp_problem(response, &request_id, &span);
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    span.in_scope(|| tracing::info!(status, latency_ms = elapsed.as_secs_f64() * 1e3, "request done"));
    metrics::counter!("http_requests_total", "route" => route.clone(), "method" => method.clone(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "route" => route, "method" => method)
        .record(elapsed.as_secs_f64());
    response.headers_mut().insert(
        HeaderName::from_static(REQUEST_ID_HEADER),
        HeaderValue::from_str(&request_id).expect("request ids are visible ASCII"),
    );
    Ok(response)
}

/// Rebuilds an ApiError response with the request id in its problem body, and logs
/// the hidden cause of a 5xx.
fn restamp_problem(
    response: ServiceResponse<impl MessageBody + 'static>,
    request_id: &str,
    span: &tracing::Span,
) -> ServiceResponse<BoxBody> {
    let Some(error) = response.response().error().and_then(|e| e.as_error::<ApiError>()) else {
        return response.map_into_boxed_body();
    };
    match error {
        ApiError::Internal(cause) => span.in_scope(|| tracing::error!(error = ?cause, "request failed")),
        ApiError::StoredDataCorrupt(problem) => span.in_scope(|| tracing::error!(%problem, "stored data is corrupt")),
        _ => {}
    }
    let mut rebuilt: HttpResponse = error.error_response();
    let body = serde_json::to_string(&error.problem(Some(request_id.to_string()))).expect("problems serialize");
    rebuilt.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    let (req, _) = response.into_parts();
    ServiceResponse::new(req, rebuilt.set_body(BoxBody::new(body)))
}
