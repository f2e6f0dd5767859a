//! JSON bodies with errors that name the field: the content type must be JSON, the size
//! is bounded, and a serde error becomes a 400 with the JSON path and the rule.

use std::future::Future;
use std::pin::Pin;

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest};
use futures::StreamExt;
use serde::de::DeserializeOwned;

use crate::problem::{ApiError, FieldError};

/// The largest request body accepted.
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;

pub struct JsonBody<T> {
    pub value: T,
    /// The body as sent, for idempotency fingerprints.
    pub raw: web::Bytes,
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
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
        Box::pin(async move {
            if !is_json {
                return Err(ApiError::UnsupportedMediaType);
            }
            let mut raw = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|e| ApiError::bad_field("body", "unreadable", e.to_string()))?;
                if raw.len() + chunk.len() > BODY_LIMIT_BYTES {
                    return Err(ApiError::PayloadTooLarge { limit_bytes: BODY_LIMIT_BYTES });
                }
                raw.extend_from_slice(&chunk);
            }
            let raw = raw.freeze();
            let value = parse(&raw)?;
            Ok(JsonBody { value, raw })
        })
    }
}

/// Deserializes, turning serde's message into a field error.
pub fn parse<T: DeserializeOwned>(raw: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(raw);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| field_error(&e))?;
    de.end().map_err(|e| ApiError::bad_field("body", "malformed-json", e.to_string()))?;
    Ok(value)
}

fn field_error(e: &serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let inner = e.inner();
    let message = inner.to_string();
    let mut field = e.path().to_string();
    if field == "." {
        field = String::new();
    }
    let quoted = |prefix: &str| {
        message.strip_prefix(prefix).and_then(|rest| rest.split('`').next()).map(str::to_string)
    };
    let rule = if inner.is_syntax() || inner.is_eof() {
        field = "body".into();
        "malformed-json"
    } else if let Some(missing) = quoted("missing field `") {
        field = join(&field, &missing);
        "required"
    } else if let Some(unknown) = quoted("unknown field `") {
        // serde_path_to_error already ends the path with the unknown key.
        if field.rsplit('.').next() != Some(unknown.as_str()) {
            field = join(&field, &unknown);
        }
        "unknown-field"
    } else if message.starts_with("invalid type") {
        "invalid-type"
    } else {
        "invalid-value"
    };
    if field.is_empty() {
        field = "body".into();
    }
    // serde appends " at line 1 column 5"; the field path says more.
    let message = message.split(" at line ").next().unwrap_or(&message).to_string();
    ApiError::BadRequest {
        detail: format!("{field}: {message}"),
        errors: vec![FieldError { field, rule: rule.into(), message }],
    }
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}
