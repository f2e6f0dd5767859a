//! Errors as `application/problem+json` (RFC 9457): a status, a title, what went wrong,
//! and for input errors the field and the rule it broke.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use ledger_domain::{DomainError, Refusal, RefusalKind};
use ledger_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// One thing wrong with the input.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FieldError {
    /// The field at fault, as a JSON path (`totalAmount`, `currency.code`), or the
    /// query parameter or header name.
    pub field: String,
    /// The rule it broke, stable and machine-readable (`required`, `amount-negative`).
    pub rule: String,
    pub message: String,
}

/// The body of every error response.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the kind of problem: a page of this server (`/problems/{status}`
    /// or `/problems/{rule}`) that explains it and lists every rule the API returns.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// The request id to quote when reporting a problem (also in `X-Request-Id`).
    #[serde(rename = "requestId", skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed input: bad JSON, a wrong type, an unknown field or parameter.
    #[error("{detail}")]
    BadRequest { detail: String, errors: Vec<FieldError> },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("billing credit not found")]
    NotFound,
    /// Something other than a credit is not there (a webhook endpoint, a delivery).
    #[error("{0} not found")]
    Missing(&'static str),
    #[error("{detail}")]
    Conflict { detail: String, rule: String },
    #[error("the credit changed since you read it: it is at version {actual}, If-Match asked for {expected}")]
    PreconditionFailed { expected: String, actual: u64 },
    #[error("the request body exceeds {limit_bytes} bytes")]
    PayloadTooLarge { limit_bytes: usize },
    #[error("the request body must be application/json")]
    UnsupportedMediaType,
    /// The client stopped sending its body; the connection is closed after this answer.
    #[error("the request body did not arrive within {timeout_ms} ms")]
    RequestTimeout { timeout_ms: u64 },
    /// Well-formed input that breaks a business rule.
    #[error("{}", .0.message)]
    Unprocessable(Refusal),
    #[error("the store is unavailable; retry shortly")]
    Unavailable,
    /// Stored data of this credit or site cannot be read back: named, for the operator to
    /// repair (docs/operations.md); other credits are unaffected.
    #[error("{0}")]
    StoredDataCorrupt(String),
    /// Anything else. The cause is logged, never shown.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// How long clients should wait before retrying a 503.
pub const RETRY_AFTER_S: u32 = 2;

/// A body refused by its decoding rules (`ledger-wire`): a 400 naming the field and the rule.
impl From<ledger_wire::FieldRefusal> for ApiError {
    fn from(r: ledger_wire::FieldRefusal) -> Self {
        ApiError::BadRequest {
            detail: format!("{}: {}", r.field, r.message),
            errors: vec![FieldError { field: r.field, rule: r.rule.into(), message: r.message }],
        }
    }
}

impl ApiError {
    pub fn bad_field(field: impl Into<String>, rule: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        ApiError::BadRequest {
            detail: message.clone(),
            errors: vec![FieldError { field: field.into(), rule: rule.into(), message }],
        }
    }

    fn title(&self) -> &'static str {
        match self {
            ApiError::BadRequest { .. } => "Bad request",
            ApiError::Unauthorized(_) => "Unauthorized",
            ApiError::Forbidden(_) => "Forbidden",
            ApiError::NotFound | ApiError::Missing(_) => "Not found",
            ApiError::Conflict { .. } => "Conflict",
            ApiError::PreconditionFailed { .. } => "Precondition failed",
            ApiError::PayloadTooLarge { .. } => "Payload too large",
            ApiError::UnsupportedMediaType => "Unsupported media type",
            ApiError::RequestTimeout { .. } => "Request timeout",
            ApiError::Unprocessable(_) => "Business rule violated",
            ApiError::Unavailable => "Service unavailable",
            ApiError::StoredDataCorrupt(_) => "Stored data is corrupt",
            ApiError::Internal(_) => "Internal server error",
        }
    }

    fn kind_uri(&self) -> String {
        let slug = match self {
            ApiError::Unprocessable(e) => e.rule.as_str(),
            ApiError::Conflict { rule, .. } => rule.as_str(),
            other => return crate::rules::type_uri(other.status_code().as_str()),
        };
        crate::rules::type_uri(slug)
    }

    fn field_errors(&self) -> Vec<FieldError> {
        match self {
            ApiError::BadRequest { errors, .. } => errors.clone(),
            ApiError::Unprocessable(e) => vec![FieldError {
                field: e.field.clone().unwrap_or_default(),
                rule: e.rule.clone(),
                message: e.message.clone(),
            }],
            ApiError::PreconditionFailed { .. } => vec![FieldError {
                field: "If-Match".into(),
                rule: "version-mismatch".into(),
                message: self.to_string(),
            }],
            _ => vec![],
        }
    }

    /// The problem document for this error, stamped with the request id.
    pub fn problem(&self, request_id: Option<String>) -> Problem {
        Problem {
            kind: self.kind_uri(),
            title: self.title().into(),
            status: self.status_code().as_u16(),
            detail: self.to_string(),
            errors: self.field_errors(),
            request_id,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound | ApiError::Missing(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::StoredDataCorrupt(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        // The request id is added by the telemetry middleware, which also logs 5xx causes.
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, "application/problem+json"));
        match self {
            ApiError::Unauthorized(_) => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            ApiError::Unavailable => {
                response.insert_header((header::RETRY_AFTER, RETRY_AFTER_S.to_string()));
            }
            ApiError::RequestTimeout { .. } => {
                // The rest of a stalled body may still come; the connection cannot be reused.
                response.insert_header((header::CONNECTION, "close"));
            }
            _ => {}
        }
        response.body(serde_json::to_string(&self.problem(None)).expect("problems serialize"))
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        match refusal.kind {
            RefusalKind::NotFound => ApiError::NotFound,
            RefusalKind::Conflict => ApiError::Conflict { detail: refusal.message, rule: refusal.rule },
            RefusalKind::Unprocessable => ApiError::Unprocessable(refusal),
        }
    }
}

/// A member read model over more credits than it reads at once: refused whole (409), never
/// answered in part.
impl From<ledger_store::balance::MemberCreditsError> for ApiError {
    fn from(e: ledger_store::balance::MemberCreditsError) -> Self {
        match e {
            ledger_store::balance::MemberCreditsError::TooMany => {
                ApiError::Conflict { detail: e.to_string(), rule: "too-many-credits".into() }
            }
            ledger_store::balance::MemberCreditsError::Store(e) => e.into(),
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        Refusal::from(&e).into()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Domain(e) => e.into(),
            StoreError::Refused(refusal) => refusal.into(),
            StoreError::VersionConflict { expected, actual, .. } => {
                ApiError::PreconditionFailed { expected: expected.to_string(), actual }
            }
            StoreError::ConcurrentWrite => ApiError::Conflict {
                detail: "the credit was changed concurrently; retry".into(),
                rule: "concurrent-change".into(),
            },
            // A busy or unreachable database: a retry may succeed, so 503 with Retry-After.
            // Any other database refusal would fail again: a 500, never a 503.
            e if e.is_transient() => ApiError::Unavailable,
            e @ (StoreError::Corrupt(_) | StoreError::Undecodable(_)) => ApiError::StoredDataCorrupt(e.to_string()),
            other => ApiError::Internal(other.into()),
        }
    }
}

/// The error responses of every read endpoint, for the OpenAPI document.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum ReadProblems {
    #[response(status = 400, description = "Malformed parameter", content_type = "application/problem+json")]
    BadRequest(Problem),
    #[response(
        status = 401,
        description = "Missing, expired or forged token",
        content_type = "application/problem+json"
    )]
    Unauthorized(Problem),
    #[response(status = 403, description = "Site or scope not granted", content_type = "application/problem+json")]
    Forbidden(Problem),
    #[response(status = 404, description = "No such credit", content_type = "application/problem+json")]
    NotFound(Problem),
    #[response(
        status = 503,
        description = "Store unavailable; retry after Retry-After",
        content_type = "application/problem+json"
    )]
    Unavailable(Problem),
}

/// The error responses of every write endpoint, for the OpenAPI document.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum WriteProblems {
    #[response(
        status = 400,
        description = "Malformed body, parameter or header",
        content_type = "application/problem+json"
    )]
    BadRequest(Problem),
    #[response(
        status = 401,
        description = "Missing, expired or forged token",
        content_type = "application/problem+json"
    )]
    Unauthorized(Problem),
    #[response(status = 403, description = "Site or scope not granted", content_type = "application/problem+json")]
    Forbidden(Problem),
    #[response(status = 404, description = "No such credit", content_type = "application/problem+json")]
    NotFound(Problem),
    #[response(
        status = 409,
        description = "Conflict: id taken, already expired, Idempotency-Key reused",
        content_type = "application/problem+json"
    )]
    Conflict(Problem),
    #[response(
        status = 412,
        description = "If-Match does not match the credit's version",
        content_type = "application/problem+json"
    )]
    PreconditionFailed(Problem),
    #[response(
        status = 408,
        description = "The body did not arrive within the body read timeout",
        content_type = "application/problem+json"
    )]
    RequestTimeout(Problem),
    #[response(status = 413, description = "Body over the size limit", content_type = "application/problem+json")]
    PayloadTooLarge(Problem),
    #[response(status = 415, description = "Body is not application/json", content_type = "application/problem+json")]
    UnsupportedMediaType(Problem),
    #[response(
        status = 422,
        description = "A business rule refused the command; nothing was written",
        content_type = "application/problem+json"
    )]
    Unprocessable(Problem),
    #[response(
        status = 503,
        description = "Store unavailable; retry after Retry-After",
        content_type = "application/problem+json"
    )]
    Unavailable(Problem),
}
