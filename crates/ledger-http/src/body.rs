//! JSON bodies with errors that name the field: the content type must be JSON, the size
//! is bounded, and a serde error becomes a 400 with the JSON path and the rule.

use std::future::Future;
use std::pin::Pin;

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest};
use chrono::Utc;
use futures::StreamExt;
use ledger_wire::Body;

use crate::problem::ApiError;
use crate::startup::BodyReadTimeout;

/// The largest request body accepted.
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;

pub struct JsonBody<T> {
    pub value: T,
    /// The body as sent, for idempotency fingerprints (of its canonical form).
    pub raw: web::Bytes,
}

impl<T: Body + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let is_json = content_type
            .split(';')
            .next()
            .map(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json" || mime.ends_with("+json")
            })
            .unwrap_or(false);
        let mut payload = payload.take();
        let read_timeout = req.app_data::<BodyReadTimeout>().copied().unwrap_or_default().0;
        Box::pin(async move {
            if !is_json {
                return Err(ApiError::UnsupportedMediaType);
            }
            let raw = tokio::time::timeout(read_timeout, read_all(&mut payload))
                .await
                .map_err(|_| ApiError::RequestTimeout { timeout_ms: read_timeout.as_millis() as u64 })??;
            let value = parse(&raw)?;
            Ok(JsonBody { value, raw })
        })
    }
}

/// The body, at most [`BODY_LIMIT_BYTES`] of it.
async fn read_all(payload: &mut Payload) -> Result<web::Bytes, ApiError> {
    let mut raw = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_field("body", "unreadable", e.to_string()))?;
        if raw.len() + chunk.len() > BODY_LIMIT_BYTES {
            return Err(ApiError::PayloadTooLarge { limit_bytes: BODY_LIMIT_BYTES });
        }
        raw.extend_from_slice(&chunk);
    }
    Ok(raw.freeze())
}

/// Decodes a body of the command vocabulary by its rules (the occurredAt rule included),
/// turning a refusal into a 400 naming the field and the rule.
pub fn parse<T: Body>(raw: &[u8]) -> Result<T, ApiError> {
    Ok(ledger_wire::decode_body(raw, Utc::now())?)
}
