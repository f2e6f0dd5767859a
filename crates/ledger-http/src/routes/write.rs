//! The one path every write takes: run the command, render the reply, and with an
//! `Idempotency-Key` keep that reply (in the same transaction as the events) for the
//! retries of the same request.

use actix_web::http::StatusCode;
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use ledger_store::{Committed, Execution, IdempotencyKey, StoreError, StoredResponse};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::problem::ApiError;
use crate::startup::AppState;
use crate::telemetry::RequestId;

/// The longest Idempotency-Key accepted.
pub const IDEMPOTENCY_KEY_MAX_LEN: usize = 255;

const IDEMPOTENCY_NAMESPACE: Uuid = Uuid::from_u128(0x6964_656d_706f_7465_6e63_792d_6b65_7901);

/// A response of a write, in a form that can be kept and replayed.
pub struct Reply {
    pub status: StatusCode,
    pub body: Option<String>,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub fn json(status: StatusCode, body: &impl serde::Serialize) -> Self {
        Reply { status, body: Some(serde_json::to_string(body).expect("replies serialize")), headers: vec![] }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    fn stored(self) -> StoredResponse {
        StoredResponse { status: self.status.as_u16(), body: self.body.unwrap_or_default(), headers: self.headers }
    }
}

fn http(stored: StoredResponse, content_type: &str) -> HttpResponse {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    for (name, value) in &stored.headers {
        response.insert_header((name.as_str(), value.as_str()));
    }
    if stored.body.is_empty() {
        response.finish()
    } else {
        response.content_type(content_type).body(stored.body)
    }
}

impl From<Reply> for HttpResponse {
    fn from(reply: Reply) -> Self {
        http(reply.stored(), "application/json")
    }
}

/// Renders what a command committed.
pub type Render = Box<dyn FnOnce(&Committed) -> Reply + Send>;

fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get("Idempotency-Key") else { return Ok(None) };
    let key = value.to_str().unwrap_or_default().trim();
    if key.is_empty() || key.len() > IDEMPOTENCY_KEY_MAX_LEN || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ApiError::bad_field(
            "Idempotency-Key",
            "invalid-idempotency-key",
            format!("Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX_LEN} visible ASCII characters"),
        ));
    }
    Ok(Some(key.to_string()))
}

/// The command id of a keyed request: its events carry it, so auditors can match
/// a client's log of keys with what was written.
pub fn idempotency_command_id(site_id: Uuid, key: &str) -> Uuid {
    let mut name = site_id.as_bytes().to_vec();
    name.extend_from_slice(key.as_bytes());
    Uuid::new_v5(&IDEMPOTENCY_NAMESPACE, &name)
}

/// Refusals are part of a request's outcome and are kept; faults are not, so a retry
/// after an outage can still succeed.
fn kept_refusal(error: &StoreError) -> bool {
    matches!(error, StoreError::Domain(_) | StoreError::VersionConflict { .. } | StoreError::ConcurrentWrite)
}

fn count_appended(committed: &Committed) {
    if !committed.replayed {
        metrics::counter!("ledger_events_appended_total").increment(committed.events.len() as u64);
    }
}

/// Runs `execution` and answers with `render`'s reply; with an Idempotency-Key, the
/// first reply to that key (success or refusal) is the reply to every retry.
pub async fn perform(
    state: &AppState,
    req: &HttpRequest,
    raw_body: &[u8],
    mut execution: Execution,
    render: Render,
) -> Result<HttpResponse, ApiError> {
    let Some(key) = idempotency_key(req)? else {
        let committed = state.store.execute(execution).await?;
        count_appended(&committed);
        return Ok(render(&committed).into());
    };
    execution.meta.command_id = Some(idempotency_command_id(execution.site_id, &key));
    let mut fingerprint = Sha256::new();
    fingerprint.update(req.method().as_str().as_bytes());
    fingerprint.update(b" ");
    fingerprint.update(req.path().as_bytes());
    fingerprint.update(b"\n");
    fingerprint.update(raw_body);
    let request_hash = hex::encode(fingerprint.finalize());
    let request_id = req.extensions().get::<RequestId>().map(|r| r.0.clone());
    let respond: ledger_store::Responder = Box::new(move |outcome| match outcome {
        Ok(committed) => {
            count_appended(committed);
            Some(render(committed).stored())
        }
        Err(error) if kept_refusal(error) => {
            let api: ApiError = clone_refusal(error).into();
            let problem = api.problem(request_id);
            Some(Reply::json(actix_web::ResponseError::status_code(&api), &problem).stored())
        }
        Err(_) => None,
    });
    let stored =
        state.store.execute_idempotent(execution, IdempotencyKey { key, request_hash }, respond).await.map_err(
            |e| match e {
                StoreError::IdempotencyKeyReused => ApiError::Conflict {
                    detail: "this Idempotency-Key was already used for a different request".into(),
                    rule: "idempotency-key-reused",
                },
                other => other.into(),
            },
        )?;
    let content_type = if stored.status >= 400 { "application/problem+json" } else { "application/json" };
    Ok(http(stored, content_type))
}

fn clone_refusal(error: &StoreError) -> StoreError {
    match error {
        StoreError::Domain(e) => StoreError::Domain(e.clone()),
        StoreError::VersionConflict { billing_credit_id, expected, actual } => {
            StoreError::VersionConflict { billing_credit_id: *billing_credit_id, expected: *expected, actual: *actual }
        }
        _ => StoreError::ConcurrentWrite,
    }
}
