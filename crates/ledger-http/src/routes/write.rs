//! The one path every write takes: run the command and render the reply. With an
//! `Idempotency-Key` the store keeps the first outcome (in the same transaction as the
//! events) and hands it back for the retries of the same request, rendered alike.

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use ledger_store::{Committed, Execution, IdempotencyKey, StoreError};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::consistency;
use crate::problem::ApiError;
use crate::startup::AppState;

/// The longest Idempotency-Key accepted.
pub const IDEMPOTENCY_KEY_MAX_LEN: usize = 255;

/// Set on the answer to a retry that was given the kept outcome of its Idempotency-Key.
pub const REPLAYED_HEADER: HeaderName = HeaderName::from_static("idempotent-replayed");

const IDEMPOTENCY_NAMESPACE: Uuid = Uuid::from_u128(0x6964_656d_706f_7465_6e63_792d_6b65_7901);

/// The response to a write that committed.
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
}

impl From<Reply> for HttpResponse {
    fn from(reply: Reply) -> Self {
        let mut response = HttpResponse::build(reply.status);
        for (name, value) in &reply.headers {
            response.insert_header((name.as_str(), value.as_str()));
        }
        match reply.body {
            Some(body) => response.content_type("application/json").body(body),
            None => response.finish(),
        }
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

fn count_appended(committed: &Committed) {
    if !committed.replayed {
        metrics::counter!("ledger_events_appended_total").increment(committed.events.len() as u64);
    }
}

/// The reply with the token that lets its client read this write back from a replica.
fn with_position(reply: Reply, committed: &Committed) -> Reply {
    match consistency::ledger_position(committed) {
        Some(position) => reply.header(consistency::LEDGER_POSITION_HEADER, position.to_string()),
        None => reply,
    }
}

/// Runs `execution` and answers with `render`'s reply; with an Idempotency-Key, the
/// first outcome for that key (success or refusal) is the outcome of every retry, and
/// its reply is rendered the same way.
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
        return Ok(with_position(render(&committed), &committed).into());
    };
    execution.meta.command_id = Some(idempotency_command_id(execution.site_id, &key));
    let mut fingerprint = Sha256::new();
    fingerprint.update(req.method().as_str().as_bytes());
    fingerprint.update(b" ");
    fingerprint.update(req.path().as_bytes());
    fingerprint.update(b"\n");
    // The body's meaning, not its bytes: a retry that reorders keys or respaces them is the
    // same request. (A decoded body is always JSON; an empty one, as DELETE's, stays empty.)
    fingerprint.update(ledger_wire::json::canonical(raw_body).as_deref().unwrap_or(raw_body));
    let request_hash = hex::encode(fingerprint.finalize());
    let keyed =
        state.store.execute_once(execution, IdempotencyKey { key, request_hash }).await.map_err(|e| match e {
            StoreError::IdempotencyKeyReused => ApiError::Conflict {
                detail: "this Idempotency-Key was already used for a different request".into(),
                rule: "idempotency-key-reused".into(),
            },
            other => other.into(),
        })?;
    let mut response: HttpResponse = match keyed.outcome {
        Ok(committed) => {
            count_appended(&committed);
            with_position(render(&committed), &committed).into()
        }
        Err(refused) => ApiError::from(refused).error_response(),
    };
    if keyed.replayed {
        // As Stripe and the IETF idempotency-key draft do: the client can tell a kept
        // answer from a fresh one, refusals included.
        response.headers_mut().insert(REPLAYED_HEADER.clone(), HeaderValue::from_static("true"));
    }
    Ok(response)
}
